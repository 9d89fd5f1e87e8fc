"""One export file in, columns and quarantine rows out: the per-record rules of the ETL (no Dagster).

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
* An array element that is not an object is a record without fields.

Personal fields (`username`, `ip_addr*`, `user_agent_decrypted`) are never decoded except `username`, which only
becomes a listener key. Quarantine rows carry a redacted record: the fields the rules read, without `username`.
Speed: one msgspec decode per file of only the fields needed (typed where a wrong type is no quarantine
reason; a file where such a field has another type is decoded again untyped), each record then one tuple
(`astuple`, in C); column-wise checks (numpy on Arrow's buffers, Arrow compute); listening_events' further
fields go to Arrow in one conversion of the kept rows. Only values of an unexpected type take a per-value
Python path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from msgspec.structs import astuple

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
_BOOL_FIELDS = ("skipped", *FLAG_FIELDS)
# The event fields of a typed decode, as Arrow converts them in one go.
_EVENT_STRUCT = pa.struct(
    [(name, pa.bool_() if name in _BOOL_FIELDS else pa.string()) for name in EVENT_FIELDS]
)
EVENT_COLUMNS = (*TEXT_FIELDS.values(), *FLAG_FIELDS)  # listening_events' names of EVENT_FIELDS
_EVENT_PART = itemgetter(slice(0, len(EVENT_FIELDS)))  # of a record as a tuple
REDACTED_FIELDS = tuple(f for f in KEY_FIELDS if f != "username")

TRACK_URI_PATTERN = r"^spotify:track:[0-9A-Za-z]{22}$"
_TS_FAST = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"  # Spotify's own form, checked without Python
_TS_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TS_MIN = np.iinfo(np.int64).min // 1000 + 1  # microseconds that still fit in int64 nanoseconds
_TS_MAX = np.iinfo(np.int64).max // 1000
_INT64_MAX = 2**63 - 1
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


class FileUnreadable(ValueError):
    """A file that is not one readable JSON array; it is quarantined whole."""


@dataclass
class QuarantineRow:
    reason: str
    source_file: str
    record_index: int
    detail: str
    redacted_record: str


@dataclass
class ParsedFile:
    """One file's records: quarantined ones as rows, clean ones as columns (aligned, clean rows only)."""

    source_file: str
    records: int
    quarantine: list[QuarantineRow]
    listener_keys: list[str]  # distinct listener keys of the file
    listener_idx: np.ndarray  # int32, into listener_keys
    ts_ns: np.ndarray  # int64 epoch nanoseconds, UTC
    content_type: np.ndarray  # int8: MUSIC | PODCAST | AUDIOBOOK
    content_uris: list[str]  # distinct content URIs of the file's clean rows
    content_idx: np.ndarray  # int32, into content_uris
    ms_played: np.ndarray  # int64
    skipped: np.ndarray  # bool
    event_columns: dict[str, pa.Array] = field(default_factory=dict)  # listening_events text and flag columns

    @property
    def clean(self) -> int:
        return len(self.ts_ns)


# Fields whose wrong types are quarantine reasons: decoded as any JSON value. The others are decoded typed
# first (strings / booleans or null), which is faster; a file where one has another type is decoded again
# untyped and the odd values become null.
_ANY_FIELDS = frozenset({"ts", "username", "ms_played"})


@cache
def _decoder(with_event_fields: bool, typed: bool = False) -> msgspec.json.Decoder:
    names = (EVENT_FIELDS if with_event_fields else ()) + KEY_FIELDS  # the order of `astuple`

    def kind(name: str) -> Any:
        if not typed or name in _ANY_FIELDS:
            return Any
        return bool | None if name in _BOOL_FIELDS else str | None

    record = msgspec.defstruct("ExportRecord", [(n, kind(n), None) for n in names], gc=False)
    return msgspec.json.Decoder(list[record])


@cache
def _fallback_decoder() -> msgspec.json.Decoder:
    return msgspec.json.Decoder()


def decode_records(data: bytes, with_event_fields: bool) -> tuple[list, bool]:
    """(the file's records as structs of the needed fields, whether the typed decoder read them);
    FileUnreadable unless the file is one JSON array."""
    for typed in (True, False):
        try:
            return _decoder(with_event_fields, typed).decode(data), typed
        except msgspec.ValidationError:
            pass  # a field of another type, valid JSON of another shape, or an array holding non-objects
        except msgspec.DecodeError as exc:
            raise FileUnreadable(f"not readable JSON: {exc}") from None
    try:
        items = _fallback_decoder().decode(data)
    except msgspec.DecodeError as exc:
        raise FileUnreadable(f"not readable JSON: {exc}") from None
    if not isinstance(items, list):
        raise FileUnreadable(f"top-level JSON value is {_json_type(items)}, not an array")
    record_type = _decoder(with_event_fields).type.__args__[0]
    records = [
        msgspec.convert(item, record_type) if isinstance(item, dict) else record_type() for item in items
    ]
    return records, False


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


_NONE = type(None)


def _objects(values: Sequence) -> np.ndarray:
    return np.fromiter(values, object, len(values))


def _strings(values: Sequence) -> tuple[pa.StringArray, np.ndarray | None]:
    """Arrow strings of `values`; non-strings become null and are flagged (None when there are none)."""
    try:
        return pa.array(values, type=pa.string()), None
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        kinds = np.fromiter(map(type, values), object, len(values))
        is_str = kinds == str  # noqa: E721 - element-wise over an array of types
        objects = _objects(values)
        objects[~is_str] = None
        return pa.array(objects, type=pa.string()), ~is_str & (kinds != _NONE)


def _flags(values: Sequence) -> pa.BooleanArray:
    """Arrow booleans of `values`; non-booleans become null."""
    try:
        return pa.array(values, type=pa.bool_())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        objects = _objects(values)
        objects[np.fromiter(map(type, values), object, len(values)) != bool] = None  # noqa: E721
        return pa.array(objects, type=pa.bool_())


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_TRACK_PREFIX = np.frombuffer(b"spotify:track:", np.uint8)
_TRACK_WIDTH = len(_TRACK_PREFIX) + 22
_BASE62 = np.zeros(256, bool)
_BASE62[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)] = True


def _track_uris_valid(array: pa.StringArray) -> np.ndarray:
    """Per string: is it TRACK_URI_PATTERN, i.e. 36 bytes, the prefix and 22 base-62 characters (from the bytes)."""
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], np.int32, n + 1, array.offset * 4)
    valid = (np.diff(offsets) == _TRACK_WIDTH) & _mask(array.is_valid())
    if valid.any():
        chars = np.frombuffer(array.buffers()[2], np.uint8)[
            offsets[:-1][valid, None] + np.arange(_TRACK_WIDTH)
        ]
        valid[valid] = (chars[:, : len(_TRACK_PREFIX)] == _TRACK_PREFIX).all(axis=1) & _BASE62[
            chars[:, len(_TRACK_PREFIX) :]
        ].all(axis=1)
    return valid


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
    d = digits.astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    hour = d[:, 8] * 10 + d[:, 9]
    minute = d[:, 10] * 10 + d[:, 11]
    second = d[:, 12] * 10 + d[:, 13]
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


def _timestamps(values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(valid, epoch ns) per record: Spotify's fixed form from the bytes, anything else through parse_iso_ts."""
    strings, _wrong_type = _strings(values)
    n = len(values)
    offsets = np.frombuffer(strings.buffers()[1], np.int32, n + 1, strings.offset * 4)
    fixed = (np.diff(offsets) == _TS_WIDTH) & _mask(strings.is_valid())
    if fixed.all():
        valid, ts_ns = _fixed_ts_ns(strings)
    else:
        valid, ts_ns = np.zeros(n, bool), np.zeros(n, np.int64)
        valid[fixed], ts_ns[fixed] = _fixed_ts_ns(strings.filter(pa.array(fixed)))
    for row in np.flatnonzero(~valid & _mask(strings.is_valid())).tolist():
        parsed = parse_iso_ts(values[row])
        if parsed is not None:
            valid[row], ts_ns[row] = True, parsed
    return valid, ts_ns


def _ms_played(values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(valid, ms) per record."""
    is_int = np.ones(len(values), bool)
    if set(map(type, values)) != {int}:
        objects = _objects(values)
        is_int = np.fromiter(map(type, values), object, len(values)) == int  # noqa: E721
        objects[~is_int] = -1
        values = objects
    try:
        ms = np.array(values, dtype=np.int64)
    except OverflowError:  # integers beyond int64 are out of range
        ms = np.array([v if -_INT64_MAX <= v <= _INT64_MAX else -1 for v in values], dtype=np.int64)
    return is_int & (ms >= 0), ms


def _listeners(values: Sequence, export_id: str | None) -> tuple[list[str], np.ndarray]:
    """(distinct keys, per-record index into them; -1 where the listener is missing)."""
    keys: list[str] = []
    codes: dict[object, int] = {}
    try:
        distinct = set(values)
    except TypeError:  # unhashable usernames (arrays, objects) are wrong types: stand in 0, also not a string
        values = [v if v is None or type(v) is str else 0 for v in values]
        distinct = set(values)
    for value in distinct:
        if type(value) is str and value:
            key = value
        elif (value is None or value == "") and export_id:
            key = export_id
        else:
            codes[value] = -1
            continue
        if key not in keys:
            keys.append(key)
        codes[value] = keys.index(key)
    if len(codes) == 1:  # one listener in the file, as usual
        return keys, np.full(len(values), next(iter(codes.values())), np.int32)
    return keys, np.fromiter(map(codes.__getitem__, values), np.int32, len(values))


def _present_uri(values: Sequence) -> pa.StringArray:
    """Episode / audiobook URIs that count: non-empty strings; everything else null."""
    strings, _wrong = _strings(values)
    return pc.if_else(pc.greater(pc.utf8_length(strings), 0), strings, None)


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


def parse_export_file(
    data: bytes, source_file: str, export_id: str | None, *, with_event_fields: bool = True
) -> ParsedFile:
    """Apply the rules to one file's bytes. Raises FileUnreadable when it is not one JSON array.

    `source_file` is the file's path under the landing date folder, `export_id` its export folder (None for a
    file directly in the date folder). Without `with_event_fields` only the fields the rules and
    daily_track_stats need are decoded and `event_columns` stays empty (the same counts, faster).
    """
    records, typed = decode_records(data, with_event_fields)
    n = len(records)
    # Each record as a tuple, then one list of values per key field (both maps run in C).
    rows = list(map(astuple, records))
    first_key = len(EVENT_FIELDS) if with_event_fields else 0
    columns = {name: list(map(itemgetter(first_key + i), rows)) for i, name in enumerate(KEY_FIELDS)}
    listener_keys, listener_idx = _listeners(columns["username"], export_id)
    ts_ok, ts_ns = _timestamps(columns["ts"])
    ms_ok, ms = _ms_played(columns["ms_played"])
    tracks, track_wrong = _strings(columns["spotify_track_uri"])
    track_ok = _track_uris_valid(tracks)
    track_present = (
        _mask(tracks.is_valid()) if track_wrong is None else _mask(tracks.is_valid()) | track_wrong
    )
    episodes = _present_uri(columns["spotify_episode_uri"])
    books = _present_uri(columns["audiobook_uri"])
    has_episode, has_book = _mask(episodes.is_valid()), _mask(books.is_valid())

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
    bad = np.flatnonzero(reason != CLEAN)
    quarantine = [
        QuarantineRow(REASONS[r], source_file, i, _detail(r, records[i]), _redacted(records[i]))
        for i, r in zip(bad.tolist(), reason[bad].tolist(), strict=True)
    ]

    keep = reason == CLEAN
    everything = len(bad) == 0
    content_type = np.where(track_ok, MUSIC, np.where(has_episode, PODCAST, AUDIOBOOK)).astype(np.int8)
    track_uris = pc.if_else(pa.array(track_ok), tracks, None)
    content = pc.coalesce(track_uris, episodes, books)
    if not everything:
        content = content.filter(pa.array(keep))
    encoded = (
        pc.dictionary_encode(content)
        if len(content)
        else pa.array([], pa.dictionary(pa.int32(), pa.string()))
    )
    skipped = _mask(_flags(columns["skipped"]))

    event_columns = _event_columns(rows, keep, typed) if with_event_fields else {}
    if not everything:
        listener_idx, ts_ns, content_type, ms, skipped = (
            a[keep] for a in (listener_idx, ts_ns, content_type, ms, skipped)
        )

    return ParsedFile(
        source_file=source_file,
        records=n,
        quarantine=quarantine,
        listener_keys=listener_keys,
        listener_idx=listener_idx,
        ts_ns=ts_ns,
        content_type=content_type,
        content_uris=encoded.dictionary.to_pylist(),
        content_idx=np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32),
        ms_played=ms,
        skipped=skipped,
        event_columns=event_columns,
    )


def _event_columns(rows: list[tuple], keep: np.ndarray, typed: bool) -> dict[str, pa.Array]:
    """listening_events' further columns of the rows (event fields first) kept."""
    kept = rows if keep.all() else [rows[i] for i in np.flatnonzero(keep).tolist()]
    if typed:  # the event fields of a typed decode are strings / booleans or null: one conversion
        values = pa.array(list(map(_EVENT_PART, kept)), _EVENT_STRUCT).flatten()
    else:
        values = [_strings(list(map(itemgetter(i), kept)))[0] for i in range(len(TEXT_FIELDS))]
        values += [_flags(list(map(itemgetter(i), kept))) for i in range(len(TEXT_FIELDS), len(EVENT_FIELDS))]
    return dict(zip(EVENT_COLUMNS, values, strict=True))


def unreadable_row(source_file: str, detail: str) -> QuarantineRow:
    """The quarantine row of a whole file that is not one readable JSON array."""
    return QuarantineRow(FILE_UNREADABLE, source_file, -1, detail, "null")
