"""The ETL of one tenant's landing date, without Dagster: files in, three Parquet outputs and counts out.

Each input file goes through `parse.parse_export_file`, then, in file order, one merge keeps the first of
each group of duplicates, pseudonymises listeners and streams listening_events out in row groups. Memory
stays bounded by one file's records plus the compact per-play arrays the daily statistics and the duplicate
check need (about 130 bytes per clean record). One process: on a shared 2-core machine two spawned parser
processes were slower and needed about twice the memory.

Rules beyond the ones in parse.py:
* Input files: `Streaming_History_Audio_*.json` anywhere under the landing date folder, read in path order;
  other files (video history, the PDF) are ignored and listed. An unreadable file counts as one input record
  and one quarantine row (`file_unreadable`, record_index -1), so conservation holds.
* Duplicates: records equal on (listener key, ts, content URI, ms_played); the first in (file path, array
  position) order is kept, the others are counted.
* Pseudonyms: `listener_id` = HMAC-SHA256(listener key) in hex under the tenant's own key, which is
  HMAC-SHA256(platform pseudonymisation secret, tenant id): the same listener gets unrelated ids in two tenants,
  and only the platform secret has to be managed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotify_jobs.etl.files import InputFile, NoLandingData, directory_files, parse_input_file, peak_rss_bytes
from spotify_jobs.etl.parse import CONTENT_TYPES, MUSIC, TEXT_FIELDS, ParsedFile, QuarantineRow
from spotify_jobs.etl.schema import (
    ETL_OUTPUTS,
    LISTENING_EVENT_COLUMNS,
    QUARANTINE_COLUMNS,
    arrow_schema,
    output_key,
)
from spotify_jobs.etl.stats import daily_track_stats, day_strings, event_days
from spotify_jobs.tenancy.registry import validate_tenant_id

if TYPE_CHECKING:
    from spotify_jobs.storage.tenant_storage import TenantStorage

_ROW_GROUP_ROWS = 64_000
_PREVIEW_ROWS = 10
_DEDUP_KEY = np.dtype([("listener", "<i4"), ("content", "<i4"), ("ts", "<i8"), ("ms", "<i8")])


def tenant_key(pseudonym_secret: str, tenant_id: str) -> bytes:
    """A tenant's pseudonymisation key: HMAC-SHA256(platform secret, tenant id)."""
    return hmac.new(pseudonym_secret.encode(), tenant_id.encode(), hashlib.sha256).digest()


def listener_id(key: bytes, listener_key: str) -> str:
    """The pseudonym of a listener key under a tenant key: HMAC-SHA256 in hex."""
    return hmac.new(key, listener_key.encode(), hashlib.sha256).hexdigest()


# --- outputs -----------------------------------------------------------------------------------------------


class OutputSink(Protocol):
    """Where the three outputs go; each is written whole and replaces any previous version."""

    def open(self, name: str) -> pa.NativeFile: ...
    def commit(self, name: str, stream: pa.NativeFile) -> str: ...


class DirectorySink:
    """`<dir>/<output>.parquet`, each replaced atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._temps: dict[str, str] = {}

    def open(self, name: str) -> pa.NativeFile:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.")
        os.close(fd)
        self._temps[name] = tmp
        return pa.OSFile(tmp, "wb")

    def commit(self, name: str, stream: pa.NativeFile) -> str:
        stream.close()
        final = self.directory / f"{name}.parquet"
        os.replace(self._temps.pop(name), final)
        return str(final)


class TenantStorageSink:
    """`output_key(output, date)` in tenant storage (the IO manager's layout), local or S3."""

    def __init__(self, storage: TenantStorage, date: str):
        self.storage = storage
        self.date = date

    def open(self, name: str) -> pa.NativeFile:
        return pa.BufferOutputStream()

    def commit(self, name: str, stream: pa.NativeFile) -> str:
        return self.storage.write_bytes(stream.getvalue().to_pybytes(), output_key(name, self.date))


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class OutputInfo:
    uri: str
    rows: int
    bytes: int


@dataclass
class EtlResult:
    """Counts of one run. records_in = clean + quarantined + duplicates (conservation)."""

    files: int = 0
    ignored_files: list[str] = field(default_factory=list)
    unreadable_files: int = 0
    records_in: int = 0
    clean: int = 0
    quarantined: int = 0
    duplicates: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    content_types: dict[str, int] = field(default_factory=dict)
    listeners: int = 0
    outputs: dict[str, OutputInfo] = field(default_factory=dict)
    seconds: float = 0.0
    previews: dict[str, pa.Table] = field(default_factory=dict)  # a few rows of each output

    @property
    def conserved(self) -> bool:
        return self.records_in == self.clean + self.quarantined + self.duplicates

    def counts(self) -> dict[str, object]:
        return {
            "files": self.files,
            "ignored_files": len(self.ignored_files),
            "unreadable_files": self.unreadable_files,
            "records_in": self.records_in,
            "clean": self.clean,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "conserved": self.conserved,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "content_types": dict(self.content_types),
            "listeners": self.listeners,
            "rows": {name: info.rows for name, info in self.outputs.items()},
        }


class _Numbering:
    """Distinct values numbered in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def codes_of(self, values: list[str]) -> np.ndarray:
        out = np.empty(len(values), np.int32)
        for i, value in enumerate(values):
            code = self.codes.get(value)
            if code is None:
                code = self.codes[value] = len(self.values)
                self.values.append(value)
            out[i] = code
        return out


class _Merger:
    """Merges parsed files in order: duplicates, pseudonyms, listening_events batches, per-play stats arrays."""

    def __init__(self, key: bytes, events_writer: pq.ParquetWriter | None):
        self.key = key
        self.events_writer = events_writer
        self.events_schema = arrow_schema(LISTENING_EVENT_COLUMNS)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.listeners = _Numbering()
        self.listener_ids: list[str] = []  # aligned with self.listeners.values
        self.contents = _Numbering()
        self.seen: set[bytes] = set()
        self.plays: list[tuple[np.ndarray, ...]] = []
        self.quarantine: list[QuarantineRow] = []
        self.content_types: Counter = Counter()
        self.records_in = self.clean = self.duplicates = self.unreadable = 0
        self.preview: pa.Table | None = None

    def _listener_codes(self, keys: list[str]) -> np.ndarray:
        codes = self.listeners.codes_of(keys)
        for new_key in self.listeners.values[len(self.listener_ids) :]:
            self.listener_ids.append(listener_id(self.key, new_key))
        return codes

    def add_unreadable(self, row: QuarantineRow) -> None:
        self.records_in += 1
        self.unreadable += 1
        self.quarantine.append(row)

    def add(self, parsed: ParsedFile) -> None:
        self.records_in += parsed.records
        self.quarantine.extend(parsed.quarantine)
        if not parsed.clean:
            return
        listener_map = self._listener_codes(parsed.listener_keys)
        content_map = self.contents.codes_of(parsed.content_uris)
        listener = listener_map[parsed.listener_idx]
        content = content_map[parsed.content_idx]

        keys = np.empty(parsed.clean, _DEDUP_KEY)
        keys["listener"], keys["content"], keys["ts"], keys["ms"] = (
            listener,
            content,
            parsed.ts_ns,
            parsed.ms_played,
        )
        seen, seen_add = self.seen, self.seen.add
        # Exact keys (24 bytes each): a record is a duplicate when an earlier one had the same key.
        duplicate = np.array([k in seen or seen_add(k) for k in keys.view("V24").tolist()], dtype=bool)
        kept = ~duplicate
        n_kept = int(kept.sum())
        self.duplicates += parsed.clean - n_kept
        self.clean += n_kept
        content_type = parsed.content_type[kept]
        self.content_types.update(dict(zip(*np.unique(content_type, return_counts=True), strict=True)))

        days = event_days(parsed.ts_ns[kept])
        music = content_type == MUSIC
        self.plays.append(
            (days[music], content[kept][music], listener[kept][music], parsed.ms_played[kept][music],
             parsed.skipped[kept][music])
        )  # fmt: skip
        if self.events_writer is not None:
            self._add_events(parsed, kept, listener_map, days, content_type)

    def _add_events(
        self, parsed: ParsedFile, kept: np.ndarray, listener_map: np.ndarray, days: np.ndarray, content_type
    ) -> None:
        take = pa.array(np.flatnonzero(kept).astype(np.int32))
        ids = pa.array([self.listener_ids[c] for c in listener_map.tolist()], pa.string())
        content_uri = pa.array(parsed.content_uris, pa.string()).take(pa.array(parsed.content_idx[kept]))
        is_music = pa.array(content_type == MUSIC)
        columns = {
            "listener_id": ids.take(pa.array(parsed.listener_idx[kept])),
            "ts": pa.array(parsed.ts_ns[kept], pa.int64()).view(pa.timestamp("ns", tz="UTC")),
            "event_date": day_strings(days),
            "content_type": pa.array(CONTENT_TYPES, pa.string()).take(pa.array(content_type)),
            "content_uri": content_uri,
            "track_uri": pc.if_else(is_music, content_uri, pa.scalar(None, pa.string())),
            "ms_played": pa.array(parsed.ms_played[kept]),
            "skipped": pa.array(parsed.skipped[kept]),
        }
        for column in (*TEXT_FIELDS.values(), "shuffle", "offline", "incognito_mode"):
            columns[column] = parsed.event_columns[column].take(take)
        batch = pa.RecordBatch.from_pydict(
            {name: columns[name] for name in self.events_schema.names}, schema=self.events_schema
        )
        if self.preview is None:
            self.preview = pa.Table.from_batches([batch.slice(0, _PREVIEW_ROWS)])
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows >= _ROW_GROUP_ROWS:
            self.flush_events()

    def flush_events(self) -> None:
        if self.pending and self.events_writer is not None:
            self.events_writer.write_table(
                pa.Table.from_batches(self.pending), row_group_size=_ROW_GROUP_ROWS
            )
        self.pending, self.pending_rows = [], 0

    def quarantine_table(self) -> pa.Table:
        rows = self.quarantine
        return pa.table(
            {
                "reason": [r.reason for r in rows],
                "source_file": [r.source_file for r in rows],
                "record_index": pa.array([r.record_index for r in rows], pa.int64()),
                "detail": [r.detail for r in rows],
                "redacted_record": [r.redacted_record for r in rows],
            },
            schema=arrow_schema(QUARANTINE_COLUMNS),
        )

    def stats_table(self) -> pa.Table:
        if self.plays:
            day, track, listener, ms, skipped = (
                np.concatenate(part) for part in zip(*self.plays, strict=True)
            )
        else:
            day = track = listener = ms = np.zeros(0, np.int64)
            skipped = np.zeros(0, bool)
        return daily_track_stats(
            day, track, listener, ms, skipped, pa.array(self.contents.values, pa.string())
        )


def _write_table(sink: OutputSink, name: str, table: pa.Table) -> OutputInfo:
    stream = sink.open(name)
    pq.write_table(table, stream, compression="zstd")
    size = stream.tell()
    return OutputInfo(sink.commit(name, stream), table.num_rows, size)


def run_etl(
    files: list[InputFile],
    key: bytes,
    sink: OutputSink,
    *,
    outputs: Iterable[str] = ETL_OUTPUTS,
    ignored_files: Iterable[str] = (),
) -> EtlResult:
    """Run the ETL over `files` (in path order) and write the selected outputs to `sink`.

    `key` is the tenant key (see `tenant_key`). Without listening_events among `outputs` only the fields
    the rules and the statistics need are decoded; every count is the same either way.
    """
    selected = set(outputs)
    unknown = selected - set(ETL_OUTPUTS)
    if unknown:
        raise ValueError(f"unknown ETL outputs {sorted(unknown)}; known: {', '.join(ETL_OUTPUTS)}")
    if not files:
        raise NoLandingData("no Streaming_History_Audio_*.json files to load")
    started = time.perf_counter()
    with_events = "listening_events" in selected
    events_stream = sink.open("listening_events") if with_events else None
    writer = (
        pq.ParquetWriter(events_stream, arrow_schema(LISTENING_EVENT_COLUMNS), compression="zstd")
        if with_events
        else None
    )
    merger = _Merger(key, writer)
    for file in files:
        parsed = parse_input_file(file, with_events)
        if isinstance(parsed, QuarantineRow):
            merger.add_unreadable(parsed)
        else:
            merger.add(parsed)

    merger.seen.clear()  # the duplicate check's memory is not needed for the outputs below
    result = EtlResult(files=len(files), ignored_files=list(ignored_files))
    if writer is not None and events_stream is not None:
        merger.flush_events()
        writer.close()
        size = events_stream.tell()
        result.outputs["listening_events"] = OutputInfo(
            sink.commit("listening_events", events_stream), merger.clean, size
        )
        empty_events = arrow_schema(LISTENING_EVENT_COLUMNS).empty_table()
        result.previews["listening_events"] = merger.preview if merger.preview is not None else empty_events
    if "quarantined_events" in selected:
        quarantine = merger.quarantine_table()
        result.outputs["quarantined_events"] = _write_table(sink, "quarantined_events", quarantine)
        result.previews["quarantined_events"] = quarantine.slice(0, _PREVIEW_ROWS)
    if "daily_track_stats" in selected:
        stats = merger.stats_table()
        result.outputs["daily_track_stats"] = _write_table(sink, "daily_track_stats", stats)
        most_played = pc.sort_indices(stats, [("plays", "descending"), ("track_uri", "ascending")])
        result.previews["daily_track_stats"] = stats.take(most_played[:_PREVIEW_ROWS])

    result.unreadable_files = merger.unreadable
    result.records_in = merger.records_in
    result.clean = merger.clean
    result.quarantined = len(merger.quarantine)
    result.duplicates = merger.duplicates
    reasons = Counter(row.reason for row in merger.quarantine)
    result.quarantine_reasons = dict(sorted(reasons.items()))
    result.content_types = {CONTENT_TYPES[int(t)]: int(n) for t, n in sorted(merger.content_types.items())}
    result.listeners = len(merger.listener_ids)
    result.seconds = time.perf_counter() - started
    return result


def run_directory(
    input_dir: Path,
    out_dir: Path,
    tenant_id: str,
    pseudonym_secret: str,
    *,
    outputs: Iterable[str] = ETL_OUTPUTS,
) -> dict[str, object]:
    """`bench etl`: the ETL on a local folder laid out like a landing date folder, outputs as
    `<out_dir>/<output>.parquet`; returns the one-line summary (counts, seconds, peak memory)."""
    files, ignored = directory_files(input_dir)
    result = run_etl(
        files,
        tenant_key(pseudonym_secret, validate_tenant_id(tenant_id)),
        DirectorySink(out_dir),
        outputs=outputs,
        ignored_files=ignored,
    )
    return {
        "tenant": tenant_id,
        **result.counts(),
        "outputs": {name: info.uri for name, info in result.outputs.items()},
        "seconds": round(result.seconds, 3),
        "records_per_s": round(result.records_in / result.seconds) if result.seconds else None,
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
    }
