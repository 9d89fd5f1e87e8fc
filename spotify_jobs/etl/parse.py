"""Export files in, columns and quarantine rows out: the per-record rules of the ETL (no Dagster).

The rules, applied to every element of a file that is one readable JSON array (issue 2, section 7):

* Listener key: `username` when it is a non-empty string; when it is absent, null or "", the name of the
  export folder holding the file (the first path segment under the landing date folder).
* Quarantine reasons, the first that applies wins:
  1. `missing_listener`: `username` is present but not a string, or there is no username and the file lies
     directly in the landing date folder (no export folder).
  2. `bad_ts`: `ts` missing, not a string, or not an ISO-8601 date-time
     `YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]` (no offset means UTC) that exists in the calendar and in
     the range of nanosecond timestamps (1677-2262).
  3. `bad_ms_played`: missing, not a JSON integer (strings, floats such as 12.0 and booleans are not), negative,
     or beyond a signed 64-bit integer.
  4. `bad_track_uri`: `spotify_track_uri` present (not null) but not `spotify:track:` + 22 base-62 characters.
  5. `no_content`: no valid track URI and no episode or audiobook URI (`spotify_episode_uri` /
     `audiobook_uri` count when they are non-empty strings).
* Content type: `music` for a track URI, else `podcast` for an episode URI, else `audiobook`.
* Any other field of an unexpected type becomes null; `skipped` is true only for JSON `true`.
* An array element that is not an object is a record without fields. An absent field and a null one are alike.

Personal fields (`username`, `ip_addr*`, `user_agent_decrypted`) are never decoded except `username`, which only
becomes a listener key. Quarantine rows carry a redacted record: the fields the rules read, without `username`.

How: the C reader (`_export_reader.read_exports`) reads a batch of files straight into typed columns (per
field, each record's JSON kind, its integer and its string as Arrow buffers), and the rules run column-wise over
the whole batch (numpy on Arrow's buffers, Arrow compute). A file the reader declines (anything unusual: see its
header) is decoded by msgspec and turned into the same columns value by value, so one set of rules serves both.
Quarantined records are decoded once more, alone, for their detail and redacted record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spotify_jobs.etl._export_reader import read_exports

REASONS = ("missing_listener", "bad_ts", "bad_ms_played", "bad_track_uri", "no_content")
FILE_UNREADABLE = "file_unreadable"
CONTENT_TYPES = ("music", "podcast", "audiobook")
MUSIC, PODCAST, AUDIOBOOK = range(3)
CLEAN = -1

# Fields the rules and daily_track_stats read.
KEY_FIELDS = (
    "ts",
    "username",
    "ms_played",
    "spotify_track_uri",
    "spotify_episode_uri",
    "audiobook_uri",
    "skipped",
)
# Further fields listening_events keeps: source field -> output column.
TEXT_FIELDS = {
    "master_metadata_track_name": "track_name",
    "master_metadata_album_artist_name": "artist_name",
    "master_metadata_album_album_name": "album_name",
    "episode_name": "episode_name",
    "episode_show_name": "show_name",
    "platform": "platform",
    "conn_country": "conn_country",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
}
FLAG_FIELDS = ("shuffle", "offline", "incognito_mode")
EVENT_FIELDS = (*TEXT_FIELDS, *FLAG_FIELDS)
REDACTED_FIELDS = tuple(f for f in KEY_FIELDS if f != "username")

# The JSON kind of a field's value in a record, as the C reader numbers them.
ABSENT, NULL, FALSE, TRUE, INT, BIGINT, FLOAT, STRING, ARRAY, OBJECT = range(10)

TRACK_URI_PATTERN = r"^spotify:track:[0-9A-Za-z]{22}$"
_TS_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TS_MIN = np.iinfo(np.int64).min // 1000 + 1  # microseconds that still fit in int64 nanoseconds
_TS_MAX = np.iinfo(np.int64).max // 1000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


class FileUnreadable(ValueError):
    """A file that is not one readable JSON array; it is quarantined whole."""


@dataclass(frozen=True)
class ExportFile:
    """One input file's bytes and where it lies under the landing date folder."""

    source_file: str  # <export-id>/<name> or <name>
    export_id: str | None  # the export folder, None for a file directly in the date folder
    data: bytes


@dataclass
class QuarantineRow:
    reason: str
    source_file: str
    record_index: int
    detail: str
    redacted_record: str


@dataclass
class ParsedBatch:
    """The records of a batch of files, in file and array order: quarantined ones (and unreadable files) as
    rows, clean ones as columns (aligned, clean rows only)."""

    records: int  # elements of the readable files' arrays
    unreadable: int  # files quarantined whole
    quarantine: list[QuarantineRow]
    listener_keys: list[str]  # distinct listener keys of the batch
    listener_idx: np.ndarray  # int32, into listener_keys
    ts_ns: np.ndarray  # int64 epoch nanoseconds, UTC
    content_type: np.ndarray  # int8: MUSIC | PODCAST | AUDIOBOOK
    content_uris: list[str]  # distinct content URIs of the clean rows
    content_idx: np.ndarray  # int32, into content_uris
    ms_played: np.ndarray  # int64
    skipped: np.ndarray  # bool
    # listening_events' text and flag columns of every record of the readable files (not only the clean ones:
    # one copy of the clean rows, after the duplicate check, instead of one per step), and where the clean rows are.
    event_columns: dict[str, pa.Array] = field(default_factory=dict)
    event_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def clean(self) -> int:
        return len(self.ts_ns)

    def clean_event_columns(self) -> dict[str, pa.Array]:
        """The event columns of the clean rows, aligned with the other columns."""
        if not self.event_columns or len(self.event_rows) == self.records:
            return self.event_columns
        rows = pa.array(self.event_rows)
        return {name: array.take(rows) for name, array in self.event_columns.items()}


def fields_read(with_event_fields: bool) -> tuple[str, ...]:
    return (*KEY_FIELDS, *EVENT_FIELDS) if with_event_fields else KEY_FIELDS


# --- typed columns ---------------------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Per field, aligned per record: the value's kind, its integer (where INT), its string (null elsewhere)."""

    kinds: dict[str, np.ndarray]
    ints: dict[str, np.ndarray]
    strings: dict[str, pa.StringArray]

    def slice(self, start: int, stop: int) -> _Columns:
        return _Columns(
            {f: a[start:stop] for f, a in self.kinds.items()},
            {f: a[start:stop] for f, a in self.ints.items()},
            {f: a.slice(start, stop - start) for f, a in self.strings.items()},
        )

    @staticmethod
    def concat(parts: list[_Columns]) -> _Columns:
        if len(parts) == 1:
            return parts[0]
        return _Columns(
            {f: np.concatenate([p.kinds[f] for p in parts]) for f in parts[0].kinds},
            {f: np.concatenate([p.ints[f] for p in parts]) for f in parts[0].ints},
            {f: pa.concat_arrays([p.strings[f] for p in parts]) for f in parts[0].strings},
        )


def _reader_columns(raw: tuple, fields: Sequence[str], n: int) -> _Columns:
    """The C reader's buffers as columns (no copy)."""
    kinds, ints, strings = {}, {}, {}
    for name, (kind_bytes, int_bytes, offsets, chars) in zip(fields, raw, strict=True):
        kind = kinds[name] = np.frombuffer(kind_bytes, np.uint8)
        integers = np.frombuffer(int_bytes, np.int64)
        ints[name] = integers if len(integers) else np.zeros(n, np.int64)
        is_string = kind == STRING
        validity = None if is_string.all() else pa.py_buffer(np.packbits(is_string, bitorder="little"))
        strings[name] = pa.Array.from_buffers(
            pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(chars)]
        )
    return _Columns(kinds, ints, strings)


def _kind(value: object) -> int:
    if value is None:
        return NULL
    kind = type(value)
    if kind is bool:
        return TRUE if value else FALSE
    if kind is int:
        return INT if _INT64_MIN <= value <= _INT64_MAX else BIGINT
    return {float: FLOAT, str: STRING, list: ARRAY}.get(kind, OBJECT)


def _value_columns(records: list, fields: Sequence[str]) -> _Columns:
    """Decoded records as columns, value by value (the slow way, for the files the C reader declines)."""
    kinds, ints, strings = {}, {}, {}
    for name in fields:
        values = [getattr(r, name) for r in records]
        kind = kinds[name] = np.fromiter(map(_kind, values), np.uint8, len(values))
        ints[name] = np.array(
            [v if k == INT else 0 for v, k in zip(values, kind.tolist(), strict=True)], np.int64
        )
        strings[name] = pa.array([v if type(v) is str else None for v in values], pa.string())
    return _Columns(kinds, ints, strings)


# --- decoding the slow way, and single records ---------------------------------------------------------------


@cache
def _record_type(with_event_fields: bool) -> type:
    return msgspec.defstruct(
        "ExportRecord", [(n, Any, None) for n in fields_read(with_event_fields)], gc=False
    )


@cache
def _decoder(with_event_fields: bool) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(list[_record_type(with_event_fields)])


@cache
def _any_decoder() -> msgspec.json.Decoder:
    return msgspec.json.Decoder()


def decode_records(data: bytes, with_event_fields: bool) -> list:
    """The file's records as structs of the fields read (any JSON value each; None when absent);
    FileUnreadable unless the file is one JSON array."""
    try:
        try:
            return _decoder(with_event_fields).decode(data)
        except msgspec.ValidationError:  # valid JSON of another shape, or an array holding non-objects
            items = _any_decoder().decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for invalid UTF-8
        raise FileUnreadable(f"not readable JSON: {exc}") from None
    if not isinstance(items, list):
        raise FileUnreadable(f"top-level JSON value is {_json_type(items)}, not an array")
    record_type = _record_type(with_event_fields)
    return [msgspec.convert(item, record_type) if isinstance(item, dict) else record_type() for item in items]


def _record_at(data: bytes, starts: np.ndarray, ends: np.ndarray, index: int) -> Any:
    """One record of a file the C reader read, decoded alone from its byte span."""
    record_type = _record_type(False)
    try:
        return msgspec.json.decode(data[starts[index] : ends[index]], type=record_type)
    except msgspec.ValidationError:  # not an object: a record without fields
        return record_type()


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


# --- the rules, column-wise ------------------------------------------------------------------------------------


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _lengths(array: pa.StringArray) -> np.ndarray:
    """Byte length of each string (0 for null)."""
    offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1, array.offset * 4)
    return np.diff(offsets)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_TS_WIDTH = 20  # YYYY-MM-DDTHH:MM:SSZ
_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_TS_SEPARATORS = np.array([4, 7, 10, 13, 16, 19])
_TS_SEPARATOR_BYTES = np.frombuffer(b"--T::Z", np.uint8)


def _fixed_ts_ns(array: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, epoch ns) of strings that are all 20 bytes long, read as `YYYY-MM-DDTHH:MM:SSZ` from their bytes."""
    n = len(array)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    start = int(np.frombuffer(array.buffers()[1], np.int32, 1, array.offset * 4)[0])
    raw = np.frombuffer(array.buffers()[2], np.uint8, _TS_WIDTH * n, start).reshape(n, _TS_WIDTH)
    digits = raw[:, _TS_DIGITS] - np.uint8(48)  # non-digits wrap around to values above 9
    shape_ok = (digits <= 9).all(axis=1) & (raw[:, _TS_SEPARATORS] == _TS_SEPARATOR_BYTES).all(axis=1)
    # Two-digit numbers (wrong where a digit is not one, and then shape_ok is False), one row each.
    pairs = (digits[:, 0::2] * np.uint8(10) + digits[:, 1::2]).T.astype(np.int64)
    century, year_of_century, month, day, hour, minute, second = pairs
    year = century * 100 + year_of_century
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    valid = shape_ok & (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1)
    valid &= (day <= month_days) & (hour < 24) & (minute < 60) & (second < 60)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    return valid, np.where(valid, seconds, 0) * 1_000_000_000


def parse_iso_ts(value: str) -> int | None:
    """Epoch nanoseconds of an ISO-8601 date-time per the rules, or None."""
    if not _TS_ISO.fullmatch(value):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    micros = (parsed - _EPOCH) // dt.timedelta(microseconds=1)
    return micros * 1000 if _TS_MIN <= micros <= _TS_MAX else None


def _timestamps(strings: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, epoch ns) per record: Spotify's fixed form from the bytes, anything else through parse_iso_ts."""
    n = len(strings)
    is_string = _mask(strings.is_valid())
    fixed = (_lengths(strings) == _TS_WIDTH) & is_string
    if fixed.all():
        valid, ts_ns = _fixed_ts_ns(strings)
    else:
        valid, ts_ns = np.zeros(n, bool), np.zeros(n, np.int64)
        valid[fixed], ts_ns[fixed] = _fixed_ts_ns(strings.filter(pa.array(fixed)))
    others = np.flatnonzero(~valid & is_string)
    for row, text in zip(others.tolist(), strings.take(pa.array(others)).to_pylist(), strict=True):
        parsed = parse_iso_ts(text)
        if parsed is not None:
            valid[row], ts_ns[row] = True, parsed
    return valid, ts_ns


def _present(columns: _Columns, name: str) -> np.ndarray:
    """Where an episode / audiobook URI counts: a non-empty string."""
    return (columns.kinds[name] == STRING) & (_lengths(columns.strings[name]) > 0)


def _distinct(sources: list[tuple[pa.StringArray, np.ndarray]], n: int) -> tuple[list[str], np.ndarray]:
    """(distinct strings, per row the index of its string or -1) where each source is (strings, the rows it
    gives the string of), the sources' rows disjoint. A string two sources give gets one index."""
    index = np.full(n, -1, np.int64)
    pieces, start = [], 0
    for strings, rows in sources:
        encoded = pc.dictionary_encode(strings)
        codes = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False))
        used = np.flatnonzero(np.bincount(codes[rows], minlength=len(encoded.dictionary)))
        renumber = np.empty(len(encoded.dictionary), np.int64)
        renumber[used] = np.arange(start, start + len(used))
        index[rows] = renumber[codes[rows]]
        pieces.append(encoded.dictionary.take(pa.array(used)))
        start += len(used)
    merged = pc.dictionary_encode(pa.concat_arrays(pieces))
    final = np.append(np.asarray(merged.indices.to_numpy(zero_copy_only=False), np.int32), -1)
    return merged.dictionary.to_pylist(), final[index]  # index -1: the -1 appended


def _flags(kinds: np.ndarray) -> pa.BooleanArray:
    """JSON booleans as Arrow booleans; other kinds null."""
    return pa.array(kinds == TRUE, mask=(kinds != TRUE) & (kinds != FALSE))


def _detail(reason: int, record: Any) -> str:
    if reason == 0:
        if record.username is None or record.username == "":
            return "no username and the file is in no export folder"
        return f"username is {_json_type(record.username)}, not a string"
    if reason == 1:
        if record.ts is None:
            return "ts is missing"
        if type(record.ts) is not str:
            return f"ts is {_json_type(record.ts)}, not a string"
        return f"ts {record.ts[:40]!r} is not an ISO-8601 date-time"
    if reason == 2:
        value = record.ms_played
        if value is None:
            return "ms_played is missing"
        if type(value) is not int:
            return f"ms_played is {_json_type(value)}, not an integer"
        return f"ms_played {value} is negative" if value < 0 else f"ms_played {value} is out of range"
    if reason == 3:
        return f"spotify_track_uri {str(record.spotify_track_uri)[:60]!r} is not spotify:track: + 22 base-62 chars"
    return "no track, episode or audiobook URI"


def _redacted(record: Any) -> str:
    payload = {name: getattr(record, name) for name in REDACTED_FIELDS}
    try:
        return msgspec.json.encode(payload).decode()
    except (TypeError, msgspec.EncodeError):
        return msgspec.json.encode({k: repr(v) for k, v in payload.items()}).decode()


def _listeners(columns: _Columns, export_ids: pa.Array) -> tuple[list[str], np.ndarray]:
    """(distinct listener keys, per-record index into them; -1 where the listener is missing). `export_ids`:
    the export folder of each record's file (null for a file in no folder)."""
    kinds, names = columns.kinds["username"], columns.strings["username"]
    named = (kinds == STRING) & (_lengths(names) > 0)
    unnamed = (kinds <= NULL) | (kinds == STRING) & ~named
    if named.all():  # as usual: no copy
        keys = names
    else:
        keys = pc.if_else(pa.array(named), names, pc.if_else(pa.array(unnamed), export_ids, None))
    encoded = pc.dictionary_encode(keys)
    index = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int32)
    return encoded.dictionary.to_pylist(), index


@dataclass
class _FileParts:
    """A batch's files as the rules see them: columns of the readable files' records, in order."""

    columns: list[_Columns] = field(default_factory=list)
    records: list[int] = field(default_factory=list)  # per file; 0 for an unreadable one
    record_of: list[Callable[[int], Any] | None] = field(default_factory=list)  # per file: index -> record
    unreadable: list[tuple[int, QuarantineRow]] = field(default_factory=list)  # (file position, row)


def _split(files: Sequence[ExportFile], with_event_fields: bool) -> _FileParts:
    """Read the files: most by the C reader in one call, the ones it declines decoded the slow way."""
    fields = fields_read(with_event_fields)
    per_file, starts, ends, raw = read_exports([f.data for f in files], fields)
    per_file = np.frombuffer(per_file, np.int64).tolist()
    starts, ends = np.frombuffer(starts, np.int64), np.frombuffer(ends, np.int64)
    fast = _reader_columns(raw, fields, len(starts))
    parts, at, run_start = _FileParts(), 0, 0
    for position, (file, count) in enumerate(zip(files, per_file, strict=True)):
        if count >= 0:
            spans = (starts[at : at + count], ends[at : at + count])
            parts.record_of.append(partial(_record_at, file.data, *spans))
            parts.records.append(count)
            at += count
            continue
        if at > run_start:
            parts.columns.append(fast.slice(run_start, at))
        run_start = at
        try:
            records = decode_records(file.data, with_event_fields)
        except FileUnreadable as exc:
            parts.unreadable.append((position, unreadable_row(file.source_file, str(exc))))
            parts.records.append(0)
            parts.record_of.append(None)
            continue
        parts.columns.append(_value_columns(records, fields))
        parts.records.append(len(records))
        parts.record_of.append(records.__getitem__)
    if at > run_start or not parts.columns:  # the last run of read files, or empty columns when none
        parts.columns.append(fast.slice(run_start, at) if run_start else fast)
    return parts


def parse_files(files: Sequence[ExportFile], *, with_event_fields: bool = True) -> ParsedBatch:
    """Apply the rules to a batch of files (in order). A file that is not one JSON array becomes one
    `file_unreadable` quarantine row (record_index -1); the other files still load.

    Without `with_event_fields` only the fields the rules and daily_track_stats need are read and
    `event_columns` stays empty (the same counts, faster).
    """
    parts = _split(files, with_event_fields)
    counts = np.array(parts.records, np.int64)
    n = int(counts.sum())
    file_of = np.repeat(np.arange(len(files)), counts)
    columns = _Columns.concat(parts.columns)
    export_ids = pa.array([f.export_id for f in files], pa.string()).take(pa.array(file_of))
    listener_keys, listener_idx = _listeners(columns, export_ids)
    ts_ok, ts_ns = _timestamps(columns.strings["ts"])
    ms = columns.ints["ms_played"]
    ms_ok = (columns.kinds["ms_played"] == INT) & (ms >= 0)
    tracks = columns.strings["spotify_track_uri"]
    track_ok = _mask(pc.match_substring_regex(tracks, TRACK_URI_PATTERN))
    track_present = columns.kinds["spotify_track_uri"] > NULL
    has_episode, has_book = _present(columns, "spotify_episode_uri"), _present(columns, "audiobook_uri")

    reason = np.full(n, CLEAN, np.int8)
    failures = (
        listener_idx < 0,
        ~ts_ok,
        ~ms_ok,
        track_present & ~track_ok,
        ~track_ok & ~has_episode & ~has_book,
    )
    for code in reversed(range(len(REASONS))):  # the first reason that applies is written last
        reason[failures[code]] = code
    quarantine = _quarantine_rows(files, parts, counts, reason)

    keep = reason == CLEAN
    everything = len(quarantine) == len(parts.unreadable)
    content_type = np.where(track_ok, MUSIC, np.where(has_episode, PODCAST, AUDIOBOOK)).astype(np.int8)
    podcast = ~track_ok & has_episode
    content_uris, content_idx = _distinct(
        [
            (tracks, track_ok & keep),
            (columns.strings["spotify_episode_uri"], podcast & keep),
            (columns.strings["audiobook_uri"], ~track_ok & ~podcast & has_book & keep),
        ],
        n,
    )
    event_columns = {}
    if with_event_fields:
        event_columns = {column: columns.strings[name] for name, column in TEXT_FIELDS.items()}
        event_columns.update({name: _flags(columns.kinds[name]) for name in FLAG_FIELDS})
    skipped = columns.kinds["skipped"] == TRUE
    if not everything:
        listener_idx, ts_ns, content_type, content_idx, ms, skipped = (
            a[keep] for a in (listener_idx, ts_ns, content_type, content_idx, ms, skipped)
        )
    return ParsedBatch(
        records=n,
        unreadable=len(parts.unreadable),
        quarantine=quarantine,
        listener_keys=listener_keys,
        listener_idx=listener_idx,
        ts_ns=ts_ns,
        content_type=content_type,
        content_uris=content_uris,
        content_idx=content_idx,
        ms_played=np.ascontiguousarray(ms),
        skipped=skipped,
        event_columns=event_columns,
        event_rows=np.flatnonzero(keep),
    )


def _quarantine_rows(
    files: Sequence[ExportFile], parts: _FileParts, counts: np.ndarray, reason: np.ndarray
) -> list[QuarantineRow]:
    """Rows of the quarantined records and unreadable files, in file and array order."""
    first_record = np.concatenate([[0], np.cumsum(counts)])
    bad = np.flatnonzero(reason != CLEAN)
    file_positions = np.searchsorted(first_record, bad, "right") - 1
    rows = list(parts.unreadable)
    for row, position, code in zip(bad.tolist(), file_positions.tolist(), reason[bad].tolist(), strict=True):
        index = row - int(first_record[position])
        record = parts.record_of[position](index)
        rows.append(
            (position, QuarantineRow(REASONS[code], files[position].source_file, index, _detail(code, record),
                                     _redacted(record)))
        )  # fmt: skip
    rows.sort(key=lambda item: (item[0], item[1].record_index))
    return [row for _, row in rows]


def unreadable_row(source_file: str, detail: str) -> QuarantineRow:
    """The quarantine row of a whole file that is not one readable JSON array."""
    return QuarantineRow(FILE_UNREADABLE, source_file, -1, detail, "null")
