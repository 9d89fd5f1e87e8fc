"""The ETL of one tenant's landing date, without Dagster: files in, three Parquet outputs and counts out.

Each input file goes through `parse.parse_export_file`, loses the records equal to an earlier one of the same
file and becomes a listening_events batch (pseudonyms included). With more than one usable CPU and enough
input on local disk, helper processes forked from this one prepare files too (`forked.OrderedMap`: no
re-import, the inputs inherited, not pickled). In file order, one merge then drops the records
equal to one of an earlier file, gathers the per-play arrays of the daily statistics and hands listening_events
row groups to a writer thread (Parquet encoding and compression release the GIL). Memory stays bounded by a
few files' records per process plus about 60 bytes per clean record (duplicate-check keys, per-play arrays).

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
import itertools
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotify_jobs.cpu_limits import available_cpus, cgroup_cpu_limit, cpu_threads
from spotify_jobs.etl.files import InputFile, NoLandingData, directory_files, parse_input_file, peak_rss_bytes
from spotify_jobs.etl.forked import OrderedMap
from spotify_jobs.etl.parse import CONTENT_TYPES, MUSIC, ParsedFile, QuarantineRow
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
# Below this much input, forking parser processes costs more than it saves.
PARALLEL_MIN_BYTES = 32 * 2**20


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
    processes: int = 1  # parser processes, this one included
    helper_peak_rss: int = 0  # bytes: the sum of the forked helper processes' own peaks

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
    """Distinct values with int32 codes in order of first appearance; codes are not dense (a number offered
    to a value already known is skipped), so that numbering a file's values is one `dict.setdefault` each, in C."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self._numbers = itertools.count()

    def codes_of(self, values: list[str]) -> np.ndarray:
        return np.fromiter(map(self.codes.setdefault, values, self._numbers), np.int32, len(values))

    def __len__(self) -> int:
        return len(self.codes)

    def by_code(self) -> pa.Array:
        """The values as an array indexed by code (null where a code was skipped)."""
        size = max(self.codes.values(), default=-1) + 1
        values = np.full(size, None, object)
        values[np.fromiter(self.codes.values(), np.int64, len(self.codes))] = list(self.codes)
        return pa.array(values, pa.string())


_HASH_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))


def _key_hashes(keys: np.ndarray) -> np.ndarray:
    """64-bit hashes of int64 key rows (content, ts, ms)."""
    k1, k2, k3 = _HASH_MULTIPLIERS
    words = keys.view(np.uint64)
    h = words[:, 0] * k1 ^ words[:, 1] * k2 ^ words[:, 2] * k3
    return (h ^ (h >> np.uint64(31))) * k1


class _SeenKeys:
    """An exact set of duplicate-check keys (listener code, content code, ts, ms_played). Per listener: the keys'
    64-bit hashes, sorted, and the keys (content, ts, ms) beside them to confirm a match, about 32 bytes a key.
    A file's keys are one listener's or a few, so each batch is a few sorted searches and inserts."""

    def __init__(self) -> None:
        self.by_listener: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def first_seen(
        self, listener: np.ndarray, content: np.ndarray, ts: np.ndarray, ms: np.ndarray
    ) -> np.ndarray:
        """Insert a batch of keys; True where no earlier key (of an earlier batch or earlier in this one) was equal."""
        new = np.zeros(len(listener), bool)
        codes = np.unique(listener)
        for code in codes.tolist():
            rows = np.flatnonzero(listener == code) if len(codes) > 1 else np.arange(len(listener))
            keys = np.stack([content[rows].astype(np.int64), ts[rows], ms[rows]], axis=1)
            new[rows] = self._insert(code, keys)
        return new

    def _insert(self, code: int, keys: np.ndarray) -> np.ndarray:
        hashes = _key_hashes(keys)
        order = np.argsort(hashes, kind="stable")
        hashes, keys = hashes[order], keys[order]
        known_hashes, known_keys = self.by_listener.get(
            code, (np.zeros(0, np.uint64), np.zeros((0, 3), np.int64))
        )
        at = np.searchsorted(known_hashes, hashes)
        found = at < len(known_hashes)
        found[found] = known_hashes[at[found]] == hashes[found]
        seen = np.zeros(len(keys), bool)
        seen[found] = (known_keys[at[found]] == keys[found]).all(axis=1)
        # Keys whose hash another key of the batch shares, or a known key that differs: compare them in full.
        shared = np.zeros(len(keys), bool)
        shared[1:] = hashes[1:] == hashes[:-1]
        shared[:-1] |= shared[1:]
        unsure = shared | (found & ~seen)
        if unsure.any():
            seen[unsure] = self._exact(keys[unsure], hashes[unsure], known_hashes, known_keys)
        fresh = ~seen
        self.by_listener[code] = (
            np.insert(known_hashes, at[fresh], hashes[fresh]),
            np.insert(known_keys, at[fresh], keys[fresh], axis=0),
        )
        new = np.empty(len(keys), bool)
        new[order] = fresh
        return new

    @staticmethod
    def _exact(
        keys: np.ndarray, hashes: np.ndarray, known_hashes: np.ndarray, known_keys: np.ndarray
    ) -> np.ndarray:
        """Which keys (sorted by hash, in batch order among equal hashes) equal a known key or an earlier one."""
        first = np.searchsorted(known_hashes, hashes, "left").tolist()
        last = np.searchsorted(known_hashes, hashes, "right").tolist()
        groups: dict[int, set[tuple]] = {}
        seen = np.zeros(len(keys), bool)
        for i, (h, key) in enumerate(zip(hashes.tolist(), map(tuple, keys.tolist()), strict=True)):
            group = groups.get(h)
            if group is None:
                group = groups[h] = set(map(tuple, known_keys[first[i] : last[i]].tolist()))
            seen[i] = key in group
            group.add(key)
        return seen

    def release(self) -> None:
        self.by_listener = {}


class _RowGroupWriter:
    """Writes listening_events row groups on a thread of its own (Parquet encoding and compression release the
    GIL, so they overlap the parsing), one row group at a time."""

    def __init__(self, stream: pa.NativeFile):
        self.writer = pq.ParquetWriter(stream, _EVENTS_SCHEMA, **_parquet_options(_EVENTS_SCHEMA))
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="etl-parquet")
        self.writing: Future | None = None

    def write(self, table: pa.Table) -> None:
        self._wait()
        self.writing = self.thread.submit(self._write, table)

    def _write(self, table: pa.Table) -> None:
        self.writer.write_table(table.cast(_EVENTS_SCHEMA), row_group_size=_ROW_GROUP_ROWS)

    def _wait(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self.thread.shutdown()
        self.writer.close()


class _Merger:
    """Merges prepared files in order: duplicates, listening_events batches, per-play stats arrays."""

    def __init__(self, events_writer: _RowGroupWriter | None):
        self.events_writer = events_writer
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.listeners = _Numbering()
        self.contents = _Numbering()
        self.seen = _SeenKeys()
        self.plays: list[tuple[np.ndarray, ...]] = []
        self.quarantine: list[QuarantineRow] = []
        self.content_types = np.zeros(len(CONTENT_TYPES), np.int64)
        self.records_in = self.clean = self.duplicates = self.unreadable = 0
        self.preview: pa.Table | None = None

    def add_unreadable(self, row: QuarantineRow) -> None:
        self.records_in += 1
        self.unreadable += 1
        self.quarantine.append(row)

    def add(self, parsed: ParsedFile, events: pa.RecordBatch | None, repeats: int) -> None:
        """`repeats`: records of the file already dropped as equal to an earlier one of the same file."""
        self.records_in += parsed.records
        self.quarantine.extend(parsed.quarantine)
        self.duplicates += repeats
        if not parsed.clean:
            return
        listener = self.listeners.codes_of(parsed.listener_keys)[parsed.listener_idx]
        content = self.contents.codes_of(parsed.content_uris)[parsed.content_idx]

        duplicate = ~self.seen.first_seen(listener, content, parsed.ts_ns, parsed.ms_played)
        n_duplicates = int(duplicate.sum())
        self.duplicates += n_duplicates
        self.clean += parsed.clean - n_duplicates
        content_type, ts_ns, ms_played, skipped = (
            parsed.content_type, parsed.ts_ns, parsed.ms_played, parsed.skipped
        )  # fmt: skip
        if n_duplicates:
            kept = ~duplicate
            content_type, ts_ns, ms_played, skipped, listener, content = (
                a[kept] for a in (content_type, ts_ns, ms_played, skipped, listener, content)
            )
            if events is not None:
                events = events.filter(pa.array(kept))
        self.content_types += np.bincount(content_type, minlength=len(CONTENT_TYPES))

        music = content_type == MUSIC
        self.plays.append(
            (event_days(ts_ns[music]), content[music], listener[music], ms_played[music], skipped[music])
        )
        if self.events_writer is not None and events is not None:
            self._add_events(events)

    def _add_events(self, batch: pa.RecordBatch) -> None:
        if self.preview is None:
            self.preview = pa.Table.from_batches([batch.slice(0, _PREVIEW_ROWS)]).cast(_EVENTS_SCHEMA)
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows >= _ROW_GROUP_ROWS:
            self.flush_events()

    def flush_events(self) -> None:
        if self.pending and self.events_writer is not None:
            self.events_writer.write(pa.Table.from_batches(self.pending))
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
        columns = [np.zeros(0, np.int64)] * 4 + [np.zeros(0, bool)]
        if self.plays:
            parts = list(zip(*self.plays, strict=True))
            self.plays = []  # each column's pieces go as soon as it is joined
            for i in range(len(parts)):
                columns[i] = np.concatenate(parts[i])
                parts[i] = ()
        day, track, listener, ms, skipped = columns
        del columns
        return daily_track_stats(day, track, listener, ms, skipped, self.contents.by_code())


# --- parsing, in this process or in forked helpers ------------------------------------------------------------

_EVENTS_SCHEMA = arrow_schema(LISTENING_EVENT_COLUMNS)
# The columns a file repeats a few values in travel dictionary-encoded, by the file's own dictionary (less to
# send from a helper process); the writer decodes them.
_FILE_DICTIONARY_COLUMNS = ("listener_id", "event_date", "content_type", "content_uri", "track_uri")
_BATCH_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in _FILE_DICTIONARY_COLUMNS else f
        for f in _EVENTS_SCHEMA
    ]
)
_CONTENT_TYPE_NAMES = pa.array(CONTENT_TYPES, pa.string())


def _event_batch(parsed: ParsedFile, key: bytes) -> pa.RecordBatch:
    """listening_events rows of a file's clean records (with `_BATCH_SCHEMA`)."""
    ids = pa.array([listener_id(key, k) for k in parsed.listener_keys], pa.string())
    uris = pa.array(parsed.content_uris, pa.string())
    days, day_index = np.unique(event_days(parsed.ts_ns), return_inverse=True)
    encoded = pa.DictionaryArray.from_arrays
    columns = {
        "listener_id": encoded(parsed.listener_idx, ids),
        "ts": pa.array(parsed.ts_ns).view(_EVENTS_SCHEMA.field("ts").type),
        "event_date": encoded(day_index.astype(np.int32), day_strings(days)),
        "content_type": encoded(parsed.content_type.astype(np.int32), _CONTENT_TYPE_NAMES),
        "content_uri": encoded(parsed.content_idx, uris),
        "track_uri": encoded(parsed.content_idx, uris, mask=parsed.content_type != MUSIC),
        "ms_played": pa.array(parsed.ms_played),
        "skipped": pa.array(parsed.skipped),
        **parsed.event_columns,
    }
    return pa.RecordBatch.from_arrays([columns[name] for name in _BATCH_SCHEMA.names], schema=_BATCH_SCHEMA)


# (parsed file or its unreadable row, listening_events batch, records dropped as repeats within the file)
Prepared = tuple[ParsedFile | QuarantineRow, pa.RecordBatch | None, int]


def _drop_repeats(parsed: ParsedFile) -> int:
    """Drop the clean records equal to an earlier one of the same file (the merge finds those equal to one of an
    earlier file); returns how many. Most duplicates are repeats within a file, and dropping them here keeps
    that work off the merge."""
    keep = _SeenKeys().first_seen(parsed.listener_idx, parsed.content_idx, parsed.ts_ns, parsed.ms_played)
    repeats = parsed.clean - int(keep.sum())
    if repeats:
        for name in ("listener_idx", "ts_ns", "content_type", "content_idx", "ms_played", "skipped"):
            setattr(parsed, name, getattr(parsed, name)[keep])
        mask = pa.array(keep)
        parsed.event_columns = {name: array.filter(mask) for name, array in parsed.event_columns.items()}
    return repeats


def _prepare(file: InputFile, key: bytes, with_events: bool) -> Prepared:
    """A file parsed, without repeats, with its listening_events batch when those are wanted."""
    parsed = parse_input_file(file, with_events)
    if isinstance(parsed, QuarantineRow) or not parsed.clean:
        return parsed, None, 0
    repeats = _drop_repeats(parsed)
    if not with_events:
        return parsed, None, repeats
    events = _event_batch(parsed, key)
    parsed.event_columns = {}  # in the batch now; not sent twice
    return parsed, events, repeats


def etl_processes(files: list[InputFile]) -> int:
    """Parser processes for `files`, this one included: one per usable CPU (affinity and cgroup quota); just
    this one for small inputs, and for files a forked process cannot read safely (an S3 client must not be
    shared across a fork)."""
    cpus = cpu_threads(cgroup_cpu_limit(), available_cpus())
    if cpus < 2 or len(files) < 2 or sum(f.size for f in files) < PARALLEL_MIN_BYTES:
        return 1
    if not all(f.reader.fork_safe for f in files):
        return 1
    return min(cpus, len(files))


def _parquet_options(schema: pa.Schema) -> dict[str, object]:
    """zstd; dictionaries for strings only; min/max statistics for event_date and non-string columns only
    (strings' cost about a third of the writing and prune nothing: no output is sorted by such a column)."""
    strings = [f.name for f in schema if f.type == pa.string()]
    return {
        "compression": "zstd",
        "use_dictionary": strings,
        "write_statistics": [f.name for f in schema if f.name not in strings or f.name == "event_date"],
    }


def _write_table(sink: OutputSink, name: str, table: pa.Table) -> OutputInfo:
    stream = sink.open(name)
    pq.write_table(table, stream, **_parquet_options(table.schema))
    size = stream.tell()
    return OutputInfo(sink.commit(name, stream), table.num_rows, size)


def run_etl(
    files: list[InputFile],
    key: bytes,
    sink: OutputSink,
    *,
    outputs: Iterable[str] = ETL_OUTPUTS,
    ignored_files: Iterable[str] = (),
    processes: int | None = None,
) -> EtlResult:
    """Run the ETL over `files` (in path order) and write the selected outputs to `sink`.

    `key` is the tenant key (see `tenant_key`). Without listening_events among `outputs` only the fields
    the rules and the statistics need are decoded; every count is the same either way. `processes`: parser
    processes, this one included (default: `etl_processes(files)`); the outputs are the same for any number.
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
    writer = _RowGroupWriter(events_stream) if events_stream is not None else None
    merger = _Merger(writer)
    prepared = OrderedMap(
        partial(_prepare, key=key, with_events=with_events),
        files,
        etl_processes(files) if processes is None else processes,
    )
    try:
        with closing(iter(prepared)) as items:  # on an error, the helpers stop now, not with the traceback
            for parsed, events, repeats in items:
                if isinstance(parsed, QuarantineRow):
                    merger.add_unreadable(parsed)
                else:
                    merger.add(parsed, events, repeats)
        merger.flush_events()
    finally:
        if writer is not None:
            writer.close()

    merger.seen.release()  # the duplicate check's memory is not needed for the outputs below
    result = EtlResult(files=len(files), ignored_files=list(ignored_files), processes=prepared.processes)
    result.helper_peak_rss = sum(prepared.helper_peaks.values())
    if events_stream is not None:
        size = events_stream.tell()
        result.outputs["listening_events"] = OutputInfo(
            sink.commit("listening_events", events_stream), merger.clean, size
        )
        empty_events = _EVENTS_SCHEMA.empty_table()
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
    result.content_types = {
        name: int(n) for name, n in zip(CONTENT_TYPES, merger.content_types, strict=True) if n
    }
    result.listeners = len(merger.listeners)
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
        "processes": result.processes,
        # This process's peak plus each helper's: an upper bound (pages shared since the fork count twice).
        "peak_rss_mb": round((peak_rss_bytes() + result.helper_peak_rss) / 2**20, 1),
    }
