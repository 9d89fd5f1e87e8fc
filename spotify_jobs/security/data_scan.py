"""Scan every file under a tenant's data prefix for personal data, secrets and other tenants' objects.

Where a file lies decides what a hit means: clean outputs (`assets/...`) and any other tenant file must
hold no personal data or secrets, so a hit there is a control failure; raw landing files
(`landing/<date>/...`) hold the exports as delivered, personal data included, so hits there are reported
as risk, not failure. The scan's own reports (`reports/security/`) are not scanned.

Scale: Parquet is read batch by batch (`iter_batches`) and only the distinct values of each batch's
string columns are examined; JSON is decoded with msgspec; values already examined in a file are not
examined again (a bounded memo). Files with more rows than `ScanLimits.max_rows_per_file` are sampled
(evenly spread row groups, or every n-th record or line) and say so in the coverage section; below that
every row is examined.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotify_jobs.security.detectors import (
    CARD,
    EMAIL,
    IDENTIFIER,
    IP,
    PHONE,
    SECRET,
    TENANT_FIELDS,
    Detection,
    detect_card_number,
    detect_field,
    detect_value,
)
from spotify_jobs.security.findings import Ledger, ObjectRef, Status
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage

DATA_CONTROLS = (EMAIL, IP, PHONE, IDENTIFIER, CARD, SECRET)
CROSS_TENANT = "TEN-CROSS-TENANT-OBJECT"
CLEAN_PREFIX = "assets/"
LANDING_PREFIX = "landing/"
OWN_REPORTS_PREFIX = "reports/security/"
TEXT_SUFFIXES = (".txt", ".log", ".md", ".yaml", ".yml", ".env", ".ini", ".cfg", ".conf", ".toml", ".html")
_SNIFF_BYTES = 8192
MIN_CARD_NUMBER = 10**12  # the smallest 13-digit number: shorter integers cannot be card numbers
Location = str | Callable[[], str]  # where a value was found; computed only for findings


@dataclass(frozen=True)
class ScanLimits:
    max_rows_per_file: int = 2_000_000  # rows, records or lines examined per file before sampling
    batch_rows: int = 65_536
    memo_values: int = 200_000  # distinct (field, value) pairs remembered per file


DEFAULT_LIMITS = ScanLimits()


@dataclass
class FileCoverage:
    key: str
    format: str
    zone: str
    rows_total: int = 0
    rows_scanned: int = 0
    note: str = ""

    @property
    def sampled(self) -> bool:
        return self.rows_scanned < self.rows_total


@dataclass
class DataScanResult:
    ledger: Ledger
    files: list[FileCoverage] = field(default_factory=list)

    def coverage(self) -> dict:
        scanned = [f for f in self.files if f.format != "binary"]
        return {
            "files_scanned": len(scanned),
            "files_skipped": [{"key": f.key, "reason": f.note} for f in self.files if f.format == "binary"],
            "rows_total": sum(f.rows_total for f in scanned),
            "rows_scanned": sum(f.rows_scanned for f in scanned),
            "sampled_files": [
                {"key": f.key, "rows_total": f.rows_total, "rows_scanned": f.rows_scanned}
                for f in scanned
                if f.sampled
            ],
            "notes": [f"{f.key}: {f.note}" for f in scanned if f.note],
        }


def zone_of(relative_key: str) -> str:
    """clean, landing, own-report or other, by where the file lies under the tenant prefix."""
    if relative_key.startswith(CLEAN_PREFIX):
        return "clean"
    if relative_key.startswith(LANDING_PREFIX):
        return "landing"
    if relative_key.startswith(OWN_REPORTS_PREFIX):
        return "own-report"
    return "other"


class _FileFindings:
    """Detections in one file, aggregated per (control, field path): distinct values, an example, where."""

    def __init__(self, tenant: str, limits: ScanLimits):
        self.tenant = tenant
        self.limits = limits
        self.hits: dict[tuple[str, str], list] = {}  # (control, path) -> [count, example, location]
        self.other_tenants: dict[tuple[str, str], str] = {}  # (path, tenant) -> location
        self._memo: set[tuple[str, str]] = set()

    def _first_time(self, path: str, value: str) -> bool:
        key = (path, value)
        if key in self._memo:
            return False
        if len(self._memo) < self.limits.memo_values:
            self._memo.add(key)
        return True

    def string(self, path: str, name: str | None, value: str, location: Location) -> None:
        """Examine one string value found at `path` (in field `name`, if it has one)."""
        if not value or not self._first_time(path, value):
            return
        self._record(detect_value(value), path, location)
        if name is None:
            return
        self.field_value(path, name, value, location)
        if value[:1] in "{[" and value[-1:] in "}]":
            # A JSON document inside a string cell (e.g. quarantine's redacted_record): walk its fields too.
            try:
                nested = msgspec.json.decode(value)
            except msgspec.DecodeError:
                return
            self.walk(nested, path, _where(location))

    def field_value(self, path: str, name: str, value: str, location: Location) -> None:
        """What the field's name makes of its value: raw identifiers, credentials, another tenant's id."""
        self._record(detect_field(name, value), path, location)
        if name.lower() in TENANT_FIELDS and value != self.tenant:
            self.other_tenants.setdefault((path, value), _where(location))

    def _record(self, detections: list[Detection], path: str, location: Location) -> None:
        for detection in detections:
            hit = self.hits.setdefault((detection.control, path), [0, detection.redacted, _where(location)])
            hit[0] += 1

    def integer(self, path: str, value: int, location: Location) -> None:
        # Card numbers stored as numbers; shorter integers (counts, durations) cannot be one.
        if abs(value) >= MIN_CARD_NUMBER and self._first_time(path, str(value)):
            self._record(detect_card_number(value), path, location)

    def walk(self, node: object, path: str, location: str, name: str | None = None) -> None:
        """Every string (and long integer) in a decoded JSON document, with its field path."""
        if isinstance(node, dict):
            for key, child in node.items():
                # Scalars inline: records are flat and this loop runs once per field of every record.
                if isinstance(child, str):
                    self.string(f"{path}.{key}", key, child, location)
                elif child is not None and not isinstance(child, bool | float):
                    self.walk(child, f"{path}.{key}", location, str(key))
        elif isinstance(node, list):
            for child in node:
                self.walk(child, f"{path}[*]", location, name)
        elif isinstance(node, str):
            self.string(path, name, node, location)
        elif isinstance(node, int) and not isinstance(node, bool):
            self.integer(path, node, location)

    def into(self, ledger: Ledger, ref: ObjectRef, zone: str) -> None:
        status = Status.RISK if zone == "landing" else Status.FAIL
        for control_id in DATA_CONTROLS:
            ledger.check(control_id, ref)
        for (control_id, path), (count, example, location) in sorted(self.hits.items()):
            what = "value" if count == 1 else "distinct values"
            ledger.fail(control_id, ref, path, f"{count} {what} at {path} (first at {location}, e.g. {example})",
                        status=status, count=count)  # fmt: skip
        ledger.check(CROSS_TENANT, ref)
        for (path, other), location in sorted(self.other_tenants.items()):
            ledger.fail(CROSS_TENANT, ref, path, f"{path} names tenant {other!r} (first at {location})")


def _where(location: Location) -> str:
    return location if isinstance(location, str) else location()


def _sample_indices(total: int, budget: int) -> range:
    step = max(1, math.ceil(total / budget)) if budget > 0 else 1
    return range(0, total, step)


def _string_arrays(name: str, array: pa.Array) -> Iterator[tuple[str, str, pa.Array]]:
    """(path, leaf name, array) for every string array inside a column (nested structs and lists too)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        yield from _string_arrays(name, array.dictionary_decode())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        yield name, name.rsplit(".", 1)[-1].removesuffix("[*]"), array
    elif pa.types.is_struct(kind):
        for index in range(kind.num_fields):
            child = kind.field(index).name
            yield from _string_arrays(f"{name}.{child}", array.field(index))
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _string_arrays(f"{name}[*]", pc.list_flatten(array))


def _scan_parquet(path: Path, findings: _FileFindings, coverage: FileCoverage, limits: ScanLimits) -> None:
    parquet = pq.ParquetFile(path)
    metadata = parquet.metadata
    coverage.rows_total = metadata.num_rows
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    groups = list(range(len(sizes)))
    if metadata.num_rows > limits.max_rows_per_file and len(groups) > 1:
        wanted = max(1, int(limits.max_rows_per_file / (metadata.num_rows / len(groups))))
        groups = [groups[i] for i in _sample_indices(len(groups), wanted)]
        coverage.note = f"sampled {len(groups)} of {len(sizes)} row groups"
    for group in groups:
        offset = starts[group]
        for batch in parquet.iter_batches(batch_size=limits.batch_rows, row_groups=[group]):
            _scan_batch(batch, offset, findings)
            offset += batch.num_rows
            coverage.rows_scanned += batch.num_rows


def _scan_batch(batch: pa.RecordBatch, offset: int, findings: _FileFindings) -> None:
    """The distinct values of every column of one batch; rows are only looked up for findings."""
    for column_name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_integer(column.type):
            long_values = pc.filter(column, pc.greater_equal(pc.abs(column), MIN_CARD_NUMBER))
            for value in pc.unique(long_values).to_pylist():
                findings.integer(column_name, value, functools.partial(_row_of, column, value, offset))
            continue
        for field_path, leaf, array in _string_arrays(column_name, column):
            nested = array is not column
            for value in pc.unique(array).to_pylist():
                if value is not None:
                    where = f"a row of rows {offset}-{offset + batch.num_rows - 1}" if nested else (
                        functools.partial(_row_of, array, value, offset)
                    )  # fmt: skip
                    findings.string(field_path, leaf, value, where)


def _row_of(array: pa.Array, value: object, offset: int) -> str:
    return f"row {offset + pc.index(array, value).as_py()}"


def _scan_json(data: bytes, findings: _FileFindings, coverage: FileCoverage, limits: ScanLimits) -> None:
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        coverage.note = f"not valid JSON ({exc}); scanned as text"
        coverage.format = "text"
        _scan_text(data, findings, coverage, limits)
        return
    if isinstance(document, list):
        coverage.rows_total = len(document)
        for index in _sample_indices(len(document), limits.max_rows_per_file):
            findings.walk(document[index], "$[*]", f"record {index}")
            coverage.rows_scanned += 1
    else:
        coverage.rows_total = coverage.rows_scanned = 1
        findings.walk(document, "$", "document")


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines()


def _scan_json_lines(
    data: bytes, findings: _FileFindings, coverage: FileCoverage, limits: ScanLimits
) -> None:
    lines = _lines(data)
    coverage.rows_total = len(lines)
    for index in _sample_indices(len(lines), limits.max_rows_per_file):
        line = lines[index].strip()
        coverage.rows_scanned += 1
        if not line:
            continue
        try:
            findings.walk(msgspec.json.decode(line), "$", f"line {index + 1}")
        except msgspec.DecodeError:
            findings.string("text", None, line, f"line {index + 1}")


def _scan_csv(data: bytes, findings: _FileFindings, coverage: FileCoverage, limits: ScanLimits) -> None:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    coverage.rows_total = len(body)
    for index in _sample_indices(len(body), limits.max_rows_per_file):
        for column, value in zip(header, body[index], strict=False):
            findings.string(f"column {column}", column, value, f"row {index + 1}")
        coverage.rows_scanned += 1


_JSON_PAIR = re.compile(r'"([A-Za-z_][\w-]*)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _scan_text(data: bytes, findings: _FileFindings, coverage: FileCoverage, limits: ScanLimits) -> None:
    lines = _lines(data)
    coverage.rows_total = len(lines)
    for index in _sample_indices(len(lines), limits.max_rows_per_file):
        line = lines[index]
        findings.string("text", None, line, f"line {index + 1}")
        # "field": "value" pairs (e.g. a truncated JSON export) keep their field rules.
        for match in _JSON_PAIR.finditer(line):
            findings.field_value(
                f"text.{match.group(1)}", match.group(1), match.group(2), f"line {index + 1}"
            )
        coverage.rows_scanned += 1


def _format_of(key: str, head: bytes) -> str:
    name = key.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(TEXT_SUFFIXES) or b"\0" not in head:
        return "text"
    return "binary"


def _local_parquet(storage: TenantStorage, full_key: str, workdir: Path) -> Path:
    if isinstance(storage.store, LocalObjectStore):
        return Path(storage.store.uri(full_key))
    dest = workdir / "file.parquet"
    storage.store.download(full_key, dest)
    return dest


def scan_file(
    storage: TenantStorage,
    relative_key: str,
    registered: Iterable[str] = (),
    limits: ScanLimits = DEFAULT_LIMITS,
) -> tuple[Ledger, FileCoverage]:
    """Scan one file of the tenant (key relative to its prefix) and return its findings and coverage."""
    ledger = Ledger()
    zone = zone_of(relative_key)
    full_key = f"{storage.prefix}/{relative_key}"
    ref = ObjectRef("File", storage.tenant_id, relative_key)
    coverage = FileCoverage(relative_key, "", zone)
    findings = _FileFindings(storage.tenant_id, limits)
    _path_markers(relative_key, storage.tenant_id, set(registered), findings)
    if relative_key.lower().endswith(".parquet"):
        coverage.format = "parquet"
        with tempfile.TemporaryDirectory(prefix="security-scan-") as workdir:
            _scan_parquet(_local_parquet(storage, full_key, Path(workdir)), findings, coverage, limits)
    else:
        data = storage.store.read_bytes(full_key)
        coverage.format = _format_of(relative_key, data[:_SNIFF_BYTES])
        scanner = {"json": _scan_json, "jsonl": _scan_json_lines, "csv": _scan_csv, "text": _scan_text}
        if coverage.format == "binary":
            coverage.note = "binary file (not parquet, JSON, CSV or text): content not scanned"
        else:
            scanner[coverage.format](data, findings, coverage, limits)
    findings.into(ledger, ref, zone)
    return ledger, coverage


def _path_markers(relative_key: str, tenant: str, registered: set[str], findings: _FileFindings) -> None:
    """A key segment `tenant=<other>`, or one equal to another registered tenant's id, marks a foreign object."""
    for segment in relative_key.split("/"):
        name, sep, value = segment.partition("=")
        if sep and name.lower() in TENANT_FIELDS and value != tenant:
            findings.other_tenants.setdefault(("key", value), "its key")
        elif segment in registered and segment != tenant:
            findings.other_tenants.setdefault(("key", segment), "its key")


def scan_tenant_files(
    storage: TenantStorage, registered: Iterable[str] = (), limits: ScanLimits = DEFAULT_LIMITS
) -> DataScanResult:
    """Scan every file under the tenant's prefix except the scan's own reports."""
    result = DataScanResult(Ledger())
    registered = list(registered)
    for info in storage.list():
        if zone_of(info.key) == "own-report":
            continue
        ledger, coverage = scan_file(storage, info.key, registered, limits)
        result.ledger.merge(ledger)
        result.files.append(coverage)
    if not result.files:
        result.ledger.notes.append(
            f"tenant {storage.tenant_id} has no files under {storage.store.uri(storage.prefix)}"
        )
    return result
