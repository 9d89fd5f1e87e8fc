"""The per-record rules of the ETL: every quarantine reason in order, field variants and order, content types.

Every test runs twice: through the C reader, and with the reader declining every file so that msgspec decodes
them (the path for files the reader does not take); both must give the same results."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from spotify_jobs.etl import parse
from spotify_jobs.etl.parse import (
    AUDIOBOOK,
    MUSIC,
    PODCAST,
    ExportFile,
    parse_files,
    parse_iso_ts,
)

from .conftest import AUDIOBOOK as AUDIOBOOK_URI
from .conftest import EPISODE, TRACK, TRACK_2, export_bytes, record


def decline_every_file(files, fields):
    """What the C reader returns when it takes none of the files."""
    empty_column = (b"", b"", np.zeros(1, np.int32).tobytes(), b"")
    return np.full(len(files), -1, np.int64).tobytes(), b"", b"", tuple(empty_column for _ in fields)


@pytest.fixture(autouse=True, params=["c_reader", "msgspec"])
def reader(request, monkeypatch):
    if request.param == "msgspec":
        monkeypatch.setattr(parse, "read_exports", decline_every_file)
    return request.param


def _file(data: bytes, export_id: str | None = "export-1") -> ExportFile:
    name = "Streaming_History_Audio_2026_0.json"
    return ExportFile(f"{export_id}/{name}" if export_id else name, export_id, data)


def _parse(records: list, export_id: str | None = "export-1", with_event_fields: bool = True):
    return parse_files([_file(export_bytes(records), export_id)], with_event_fields=with_event_fields)


def _reason(rec: object, export_id: str | None = "export-1") -> str | None:
    parsed = _parse([rec], export_id)
    return parsed.quarantine[0].reason if parsed.quarantine else None


def _ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("overrides", "export_id", "reason"),
    [
        ({}, "export-1", None),
        ({"username": 12345}, "export-1", "missing_listener"),
        ({"username": ["alice"]}, "export-1", "missing_listener"),
        ({"username": {"id": 1}}, "export-1", "missing_listener"),
        ({"username": ...}, None, "missing_listener"),
        ({"username": None}, None, "missing_listener"),
        ({"username": ""}, None, "missing_listener"),
        ({"username": ...}, "export-1", None),  # falls back to the export folder
        ({"username": ""}, "export-1", None),
        ({"username": None}, "export-1", None),
        ({"ts": ...}, "export-1", "bad_ts"),
        ({"ts": None}, "export-1", "bad_ts"),
        ({"ts": 1_700_000_000}, "export-1", "bad_ts"),
        ({"ts": "yesterday"}, "export-1", "bad_ts"),
        ({"ts": ""}, "export-1", "bad_ts"),
        ({"ts": "2026-02-30T10:00:00Z"}, "export-1", "bad_ts"),
        ({"ts": "2026-10-02T24:00:00Z"}, "export-1", "bad_ts"),
        ({"ts": "2026-10-02T23:59:60Z"}, "export-1", "bad_ts"),
        ({"ts": "2026-1-02T10:00:00Z"}, "export-1", "bad_ts"),
        ({"ts": "2026-10-02"}, "export-1", "bad_ts"),
        ({"ts": "2026-10-02 10:00:00Z"}, "export-1", "bad_ts"),
        ({"ts": " 2026-10-02T10:00:00Z"}, "export-1", "bad_ts"),
        ({"ts": "3000-01-01T00:00:00Z"}, "export-1", "bad_ts"),
        ({"ms_played": ...}, "export-1", "bad_ms_played"),
        ({"ms_played": None}, "export-1", "bad_ms_played"),
        ({"ms_played": -1}, "export-1", "bad_ms_played"),
        ({"ms_played": "183000"}, "export-1", "bad_ms_played"),
        ({"ms_played": 12.5}, "export-1", "bad_ms_played"),
        ({"ms_played": 12.0}, "export-1", "bad_ms_played"),
        ({"ms_played": True}, "export-1", "bad_ms_played"),
        ({"ms_played": 2**64}, "export-1", "bad_ms_played"),
        ({"ms_played": 0}, "export-1", None),
        ({"spotify_track_uri": TRACK[:-1]}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": TRACK[:-1] + "!"}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": TRACK + "x"}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": "spotify:album:" + TRACK[14:]}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": ""}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": 42}, "export-1", "bad_track_uri"),
        ({"spotify_track_uri": TRACK, "spotify_episode_uri": EPISODE}, "export-1", None),
        ({"spotify_track_uri": None}, "export-1", "no_content"),
        ({"spotify_track_uri": ...}, "export-1", "no_content"),
        ({"spotify_track_uri": None, "spotify_episode_uri": ""}, "export-1", "no_content"),
        ({"spotify_track_uri": None, "spotify_episode_uri": 7}, "export-1", "no_content"),
        ({"spotify_track_uri": None, "spotify_episode_uri": EPISODE}, "export-1", None),
        ({"spotify_track_uri": None, "audiobook_uri": AUDIOBOOK_URI}, "export-1", None),
        # Several faults: the first reason in the order wins.
        ({"username": 1, "ts": "bad", "ms_played": -1}, "export-1", "missing_listener"),
        ({"ts": "bad", "ms_played": -1, "spotify_track_uri": "x"}, "export-1", "bad_ts"),
        ({"ms_played": "1", "spotify_track_uri": "x"}, "export-1", "bad_ms_played"),
        ({"spotify_track_uri": "x", "spotify_episode_uri": None}, "export-1", "bad_track_uri"),
    ],
)
def test_quarantine_reasons_in_order(overrides, export_id, reason):
    assert _reason(record(**overrides), export_id) == reason


@pytest.mark.parametrize(
    ("ts", "expected_utc"),
    [
        ("2026-10-02T00:09:33Z", "2026-10-02T00:09:33+00:00"),
        ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59+00:00"),
        ("2026-10-02T02:09:33+02:00", "2026-10-02T00:09:33+00:00"),
        ("2026-10-01T23:09:33-01:00", "2026-10-02T00:09:33+00:00"),
        ("2026-10-02T00:09:33", "2026-10-02T00:09:33+00:00"),
    ],
)
def test_iso_timestamps_are_read_as_utc(ts, expected_utc):
    parsed = _parse([record(ts=ts)])
    assert parsed.quarantine == []
    assert parsed.ts_ns.tolist() == [_ns(expected_utc)]


def test_fractional_seconds_keep_microseconds():
    assert parse_iso_ts("2026-10-02T00:09:33.25Z") == _ns("2026-10-02T00:09:33+00:00") + 250_000_000
    assert parse_iso_ts("2026-10-02T00:09:33.1234567Z") is None


def test_fast_and_general_timestamp_paths_agree():
    # Many Spotify-form timestamps go through the byte-level path; the same instants written with an offset
    # go through the general parser; both must give the same nanoseconds.
    rng = np.random.default_rng(1)
    seconds = rng.integers(0, 2_000_000_000, 500)
    fixed = [dt.datetime.fromtimestamp(int(s), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds]
    general = [dt.datetime.fromtimestamp(int(s), dt.UTC).isoformat() for s in seconds]
    fast = _parse([record(ts=t) for t in fixed]).ts_ns
    slow = _parse([record(ts=t) for t in general]).ts_ns
    assert fast.tolist() == slow.tolist() == (seconds * 1_000_000_000).tolist()


def test_content_types_and_uris():
    parsed = _parse(
        [
            record(),
            record(
                spotify_track_uri=None,
                spotify_episode_uri=EPISODE,
                episode_name="Ep",
                episode_show_name="Show",
            ),
            record(spotify_track_uri=None, audiobook_uri=AUDIOBOOK_URI),
        ]
    )
    assert parsed.content_type.tolist() == [MUSIC, PODCAST, AUDIOBOOK]
    assert [parsed.content_uris[i] for i in parsed.content_idx] == [TRACK, EPISODE, AUDIOBOOK_URI]
    assert parsed.clean_event_columns()["show_name"].to_pylist() == [None, "Show", None]


def test_listener_keys_username_or_export_folder():
    parsed = _parse(
        [record(username="alice"), record(username=...), record(username=""), record(username=None)]
    )
    keys = [parsed.listener_keys[i] for i in parsed.listener_idx]
    assert keys == ["alice", "export-1", "export-1", "export-1"]


def test_field_order_does_not_matter():
    rec = record(skipped=True, shuffle=True)
    reordered = dict(reversed(list(rec.items())))
    assert list(reordered) != list(rec)
    a, b = _parse([rec]), _parse([reordered])
    assert a.ts_ns.tolist() == b.ts_ns.tolist()
    assert a.skipped.tolist() == b.skipped.tolist() == [True]
    assert {k: v.to_pylist() for k, v in a.clean_event_columns().items()} == {
        k: v.to_pylist() for k, v in b.clean_event_columns().items()
    }


def test_legacy_variant_fields():
    legacy = record(ip_addr=..., username=..., skipped=None)
    for key in ("audiobook_title", "audiobook_uri", "audiobook_chapter_uri", "audiobook_chapter_title"):
        legacy.pop(key)
    legacy |= {
        "ip_addr_decrypted": "203.0.113.x",
        "user_agent_decrypted": None,
        "offline_timestamp": 1_600_000_000,
    }
    parsed = _parse([legacy], export_id="legacy-export")
    assert parsed.quarantine == []
    assert parsed.listener_keys == ["legacy-export"]
    assert parsed.skipped.tolist() == [False]  # null counts as not skipped


def test_other_fields_of_the_wrong_type_become_null():
    parsed = _parse([record(platform=5, shuffle="yes", skipped="yes", conn_country=["SE"])])
    assert parsed.quarantine == []
    assert parsed.clean_event_columns()["platform"].to_pylist() == [None]
    assert parsed.clean_event_columns()["conn_country"].to_pylist() == [None]
    assert parsed.clean_event_columns()["shuffle"].to_pylist() == [None]
    assert parsed.skipped.tolist() == [False]


def test_quarantine_rows_are_redacted_and_explained():
    parsed = _parse([record(), record(username=12345, ip_addr="198.51.100.99"), record(ms_played="9")])
    rows = parsed.quarantine
    assert [(r.reason, r.record_index) for r in rows] == [("missing_listener", 1), ("bad_ms_played", 2)]
    assert rows[0].detail == "username is an integer, not a string"
    assert rows[1].detail == "ms_played is a string, not an integer"
    for row in rows:
        redacted = json.loads(row.redacted_record)
        assert not {"username", "ip_addr", "ip_addr_decrypted", "user_agent_decrypted"} & set(redacted)
        assert "198.51.100" not in row.redacted_record and "alice" not in row.redacted_record
        assert row.source_file == "export-1/Streaming_History_Audio_2026_0.json"


def test_non_object_elements_are_records_without_fields():
    parsed = _parse([record(), None, 7, "text", [1]])
    assert parsed.records == 5
    assert [r.reason for r in parsed.quarantine] == ["bad_ts"] * 4  # the export folder names the listener
    loose = _parse([None], export_id=None)
    assert [r.reason for r in loose.quarantine] == ["missing_listener"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[",
        b'[{"ts": "2026-10-02T00:09:33Z"}',
        b'{"ts": "2026-10-02T00:09:33Z"}',
        b"42",
        b"\xff\xfe[]",
        b"[1, 2,]",
    ],
)
def test_unreadable_files(data):
    parsed = parse_files([_file(data)])
    assert (parsed.records, parsed.unreadable, parsed.clean) == (0, 1, 0)
    [row] = parsed.quarantine
    assert (row.reason, row.record_index, row.redacted_record) == ("file_unreadable", -1, "null")


def test_an_unreadable_file_leaves_the_others_of_its_batch():
    good = export_bytes([record(), record(ts="bad")])
    parsed = parse_files([_file(good), _file(b"[1,"), _file(good, "export-2")])
    assert (parsed.records, parsed.unreadable, parsed.clean) == (4, 1, 2)
    assert [(r.reason, r.source_file.split("/")[0], r.record_index) for r in parsed.quarantine] == [
        ("bad_ts", "export-1", 1),
        ("file_unreadable", "export-1", -1),
        ("bad_ts", "export-2", 1),
    ]
    assert [parsed.listener_keys[i] for i in parsed.listener_idx] == ["alice", "alice"]


def test_empty_array_is_readable():
    parsed = parse_files([_file(b"[]")])
    assert (parsed.records, parsed.clean, parsed.quarantine) == (0, 0, [])


def test_key_fields_only_give_the_same_rows():
    records = [record(), record(ms_played=-4), record(spotify_track_uri=None, spotify_episode_uri=EPISODE)]
    full, lean = _parse(records), _parse(records, with_event_fields=False)
    assert lean.event_columns == {}
    assert [r.reason for r in full.quarantine] == [r.reason for r in lean.quarantine]
    for name in ("ts_ns", "content_type", "ms_played", "skipped", "listener_idx", "content_idx"):
        assert getattr(full, name).tolist() == getattr(lean, name).tolist()


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (TRACK, None),
        ("spotify:track:" + "0" * 22, None),
        (TRACK[:-1], "bad_track_uri"),
        (TRACK + "x", "bad_track_uri"),
        (TRACK + "\n", "bad_track_uri"),
        (TRACK[:-1] + "!", "bad_track_uri"),
        (TRACK[:-1] + "é", "bad_track_uri"),  # 36 characters, 37 bytes
        (TRACK[:-2] + "é", "bad_track_uri"),  # 36 bytes, 35 characters
        ("spotify:album:" + TRACK[14:], "bad_track_uri"),
        ("Spotify:track:" + TRACK[14:], "bad_track_uri"),
        ("x" * 36, "bad_track_uri"),
        ("spotify:track:" + "_" * 22, "bad_track_uri"),
    ],
)
def test_track_uris_are_exactly_the_pattern(uri, reason):
    assert _reason(record(spotify_track_uri=uri)) == reason


def test_one_uri_given_as_a_track_and_as_an_episode_is_one_content():
    parsed = _parse([record(), record(spotify_track_uri=None, spotify_episode_uri=TRACK), record(ts="bad")])
    assert parsed.content_uris == [TRACK]
    assert parsed.content_idx.tolist() == [0, 0]
    assert parsed.content_type.tolist() == [MUSIC, PODCAST]


def test_content_uris_are_those_of_clean_records_only():
    parsed = _parse([record(spotify_track_uri=TRACK_2, ts="bad"), record()])
    assert parsed.content_uris == [TRACK]
