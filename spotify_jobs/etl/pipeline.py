"""The ETL of one tenant's landing date, without Dagster: files in, three Parquet outputs and counts out.

Files go in batches of about `BATCH_BYTES` to `parse.parse_files` (the C reader, then the rules column-wise),
on one thread per usable CPU (reading, parsing and most of the column work release the GIL); each batch then
loses the records equal to an earlier one of the same batch and becomes listening_events rows (pseudonyms
included). In batch order, one merge drops the records equal to one of an earlier batch, gathers the per-play
arrays of the daily statistics and hands listening_events row groups to a writer thread (Parquet encoding and
compression release the GIL too). Memory stays bounded by a few batches in flight plus about 60 bytes per clean
record (duplicate-check keys, per-play arrays).

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
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotify_jobs.cpu_limits import available_cpus, cgroup_cpu_limit, cpu_threads
from spotify_jobs.etl.files import InputFile, NoLandingData, directory_files, peak_rss_bytes
from spotify_jobs.etl.parse import (
    CONTENT_TYPES,
    MUSIC,
    ExportFile,
    ParsedBatch,
    QuarantineRow,
    parse_files,
    unreadable_row,
)
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
# Input per batch: large enough that per-batch costs (a few dozen numpy and Arrow calls) vanish, small enough
# that a few batches in flight stay a small share of a step's memory.
BATCH_BYTES = 16 * 2**20
BATCH_FILES = 2048


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
    threads: int = 1  # parser threads

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
    to a value already known is skipped), so that numbering a batch's values is one `dict.setdefault` each, in
    C. Every value first numbered after `next_code` was read has a code >= it."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.next_code = 0

    def codes_of(self, values: list[str]) -> np.ndarray:
        numbers = itertools.count(self.next_code)
        codes = np.fromiter(map(self.codes.setdefault, values, numbers), np.int32, len(values))
        self.next_code += len(values)
        return codes

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
    """64-bit hashes of int64 key rows (listener and content, ts, ms)."""
    k1, k2, k3 = _HASH_MULTIPLIERS
    words = keys.view(np.uint64)
    h = words[:, 0] * k1 ^ words[:, 1] * k2 ^ words[:, 2] * k3
    return (h ^ (h >> np.uint64(31))) * k1


_RUN_KEYS = 2**18  # runs this long merge no more: a merge's memory stays small beside a step's


class _SeenKeys:
    """An exact set of duplicate-check keys (listener code, content code, ts, ms_played), 32 bytes a key: runs of
    the keys' 64-bit hashes, each run sorted, with the keys beside them to confirm a match (listener and content
    in one word). Each batch adds a run; runs merge like a binary counter, so a lookup searches a few runs and
    each key is merged a few times (runs of _RUN_KEYS merge no further, which bounds a merge's temporary
    memory). Only the keys of listeners seen in an earlier batch are looked up."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def first_seen(
        self,
        listener: np.ndarray,
        content: np.ndarray,
        ts: np.ndarray,
        ms: np.ndarray,
        returning: np.ndarray | None = None,
    ) -> np.ndarray:
        """Insert a batch of keys; True where no earlier key (of an earlier batch or earlier in this one) was
        equal. `returning`: where an earlier batch may hold an equal key (default: everywhere)."""
        who = listener.astype(np.int64) << 32 | content.astype(np.int64)
        keys = np.stack([who, ts, ms], axis=1)
        hashes = _key_hashes(keys)
        order = np.argsort(hashes, kind="stable")
        hashes, keys = hashes[order], keys[order]
        # Keys whose hash another key of the batch shares: compare them in full.
        unsure = np.zeros(len(keys), bool)
        unsure[1:] = hashes[1:] == hashes[:-1]
        unsure[:-1] |= unsure[1:]
        seen = np.zeros(len(keys), bool)
        look = np.arange(len(keys)) if returning is None else np.flatnonzero(returning[order])
        for run_hashes, run_keys in self.runs if len(look) else ():
            at = np.searchsorted(run_hashes, hashes[look])
            found = at < len(run_hashes)
            found[found] = run_hashes[at[found]] == hashes[look[found]]
            equal = np.zeros(len(look), bool)
            equal[found] = (run_keys[at[found]] == keys[look[found]]).all(axis=1)
            seen[look[equal]] = True
            unsure[look[found & ~equal]] = True  # the same hash, another key: maybe a second key shares it
        if unsure.any():
            seen[unsure] = self._exact(keys[unsure], hashes[unsure])
        fresh = ~seen
        self._add_run(hashes[fresh], keys[fresh])
        new = np.empty(len(keys), bool)
        new[order] = fresh
        return new

    def _add_run(self, hashes: np.ndarray, keys: np.ndarray) -> None:
        self.runs.append((hashes, keys))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= min(2 * len(self.runs[-1][0]), _RUN_KEYS):
            (h1, k1), (h2, k2) = self.runs.pop(-2), self.runs.pop()
            hashes, keys = np.concatenate([h1, h2]), np.concatenate([k1, k2])
            order = np.argsort(hashes, kind="stable")  # two sorted runs: a linear merge
            self.runs.append((hashes[order], keys[order]))

    def _exact(self, keys: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Which keys (sorted by hash, in batch order among equal hashes) equal a known key or an earlier one."""
        groups: dict[int, set[tuple]] = {}
        seen = np.zeros(len(keys), bool)
        for i, (h, key) in enumerate(zip(hashes.tolist(), map(tuple, keys.tolist()), strict=True)):
            group = groups.get(h)
            if group is None:
                group = groups[h] = set()
                for run_hashes, run_keys in self.runs:
                    first = int(np.searchsorted(run_hashes, np.uint64(h), "left"))
                    last = int(np.searchsorted(run_hashes, np.uint64(h), "right"))
                    group.update(map(tuple, run_keys[first:last].tolist()))
            seen[i] = key in group
            group.add(key)
        return seen

    def release(self) -> None:
        self.runs = []


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
        self.writer.write_table(table, row_group_size=_ROW_GROUP_ROWS)
        # Arrow's allocator (mimalloc) keeps the pages it freed for reuse; given back after each row group,
        # the step's peak memory was about 60 MB lower for 1M records, at no measurable cost.
        pa.default_memory_pool().release_unused()

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

    def add(self, parsed: ParsedBatch, events: pa.RecordBatch | None, repeats: int) -> None:
        """`repeats`: records of the batch already dropped as equal to an earlier one of the same batch. An
        unreadable file counts as one record in (and one quarantine row)."""
        self.records_in += parsed.records + parsed.unreadable
        self.unreadable += parsed.unreadable
        self.quarantine.extend(parsed.quarantine)
        self.duplicates += repeats
        if not parsed.clean:
            return
        known_listeners = self.listeners.next_code
        listener = self.listeners.codes_of(parsed.listener_keys)[parsed.listener_idx]
        content = self.contents.codes_of(parsed.content_uris)[parsed.content_idx]
        returning = listener < known_listeners  # listeners of an earlier batch: their keys are looked up

        duplicate = ~self.seen.first_seen(listener, content, parsed.ts_ns, parsed.ms_played, returning)
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
        if self.preview is None:  # a copy: a slice would keep the whole batch
            self.preview = pa.Table.from_batches([batch]).take(np.arange(min(_PREVIEW_ROWS, batch.num_rows)))
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


# --- batches, parsed on threads -----------------------------------------------------------------------------

_EVENTS_SCHEMA = arrow_schema(LISTENING_EVENT_COLUMNS)
_CONTENT_TYPE_NAMES = pa.array(CONTENT_TYPES, pa.string())


def _event_batch(parsed: ParsedBatch, key: bytes) -> pa.RecordBatch:
    """listening_events rows of a batch's clean records."""
    ids = pa.array([listener_id(key, k) for k in parsed.listener_keys], pa.string())
    content_uri = pa.array(parsed.content_uris, pa.string()).take(pa.array(parsed.content_idx))
    columns = {
        "listener_id": ids.take(pa.array(parsed.listener_idx)),
        "ts": pa.array(parsed.ts_ns).view(_EVENTS_SCHEMA.field("ts").type),
        "event_date": day_strings(event_days(parsed.ts_ns)),
        "content_type": _CONTENT_TYPE_NAMES.take(pa.array(parsed.content_type)),
        "content_uri": content_uri,
        "track_uri": pc.if_else(pa.array(parsed.content_type == MUSIC), content_uri, None),
        "ms_played": pa.array(parsed.ms_played),
        "skipped": pa.array(parsed.skipped),
        **parsed.clean_event_columns(),
    }
    return pa.RecordBatch.from_arrays([columns[name] for name in _EVENTS_SCHEMA.names], schema=_EVENTS_SCHEMA)


# (parsed batch, its listening_events rows, records dropped as repeats within the batch)
Prepared = tuple[ParsedBatch, pa.RecordBatch | None, int]


def _drop_repeats(parsed: ParsedBatch) -> int:
    """Drop the clean records equal to an earlier one of the same batch (the merge finds those equal to one of
    an earlier batch); returns how many. Most duplicates are repeats within a file, and dropping them here, on
    a parser thread, keeps that work off the merge."""
    keep = _SeenKeys().first_seen(parsed.listener_idx, parsed.content_idx, parsed.ts_ns, parsed.ms_played)
    repeats = parsed.clean - int(keep.sum())
    if repeats:
        for name in ("listener_idx", "ts_ns", "content_type", "content_idx", "ms_played", "skipped"):
            setattr(parsed, name, getattr(parsed, name)[keep])
        parsed.event_rows = parsed.event_rows[keep]
    return repeats


def _read(file: InputFile) -> ExportFile | QuarantineRow:
    try:
        return ExportFile(file.source_file, file.export_id, file.reader.read())
    except ValueError as exc:  # a name tenant storage refuses to address (spaces, odd characters)
        return unreadable_row(file.source_file, f"cannot be read: {exc}")


def _prepare(batch: list[InputFile], key: bytes, with_events: bool) -> Prepared:
    """A batch read and parsed, without repeats, with its listening_events rows when those are wanted."""
    read = [_read(file) for file in batch]
    failed = [row for row in read if isinstance(row, QuarantineRow)]
    parsed = parse_files([f for f in read if isinstance(f, ExportFile)], with_event_fields=with_events)
    del read  # the files' bytes go as soon as they are parsed
    if failed:  # in file (path) order among the batch's other rows
        parsed.unreadable += len(failed)
        parsed.quarantine = sorted(parsed.quarantine + failed, key=lambda r: (r.source_file, r.record_index))
    repeats = _drop_repeats(parsed) if parsed.clean else 0
    events = _event_batch(parsed, key) if with_events else None
    parsed.event_columns = {}  # in `events` now
    return parsed, events, repeats


def batches(files: list[InputFile]) -> list[list[InputFile]]:
    """Consecutive files, about BATCH_BYTES (as listed) or BATCH_FILES a batch."""
    result: list[list[InputFile]] = [[]]
    size = 0
    for file in files:
        if result[-1] and (size >= BATCH_BYTES or len(result[-1]) >= BATCH_FILES):
            result.append([])
            size = 0
        result[-1].append(file)
        size += file.size
    return result


def etl_threads() -> int:
    """Parser threads: one per usable CPU (affinity and the cgroup CPU quota)."""
    return cpu_threads(cgroup_cpu_limit(), available_cpus())


def _in_order(pool: ThreadPoolExecutor, function, items: list, ahead: int) -> Iterator:
    """`function(item)` for each item on `pool`, yielded in order, at most `ahead` in flight."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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
    threads: int | None = None,
) -> EtlResult:
    """Run the ETL over `files` (in path order) and write the selected outputs to `sink`.

    `key` is the tenant key (see `tenant_key`). Without listening_events among `outputs` only the fields
    the rules and the statistics need are decoded; every count is the same either way. `threads`: parser
    threads (default: `etl_threads()`); the outputs are the same for any number.
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
    threads = max(1, etl_threads() if threads is None else threads)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="etl-parse")
    try:
        prepare = partial(_prepare, key=key, with_events=with_events)
        for parsed, events, repeats in _in_order(pool, prepare, batches(files), ahead=threads + 1):
            merger.add(parsed, events, repeats)
        merger.flush_events()
    finally:
        pool.shutdown(cancel_futures=True)  # on an error, the batches not started yet never start
        if writer is not None:
            writer.close()

    merger.seen.release()  # the duplicate check's memory is not needed for the outputs below
    result = EtlResult(files=len(files), ignored_files=list(ignored_files), threads=threads)
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
        "threads": result.threads,
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
    }
