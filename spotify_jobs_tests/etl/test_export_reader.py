"""The C export reader: kinds and values as a JSON decoder reads them, the files it declines, and random files
read both ways (C reader, msgspec) with the same results."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from spotify_jobs.etl import parse
from spotify_jobs.etl._export_reader import read_exports
from spotify_jobs.etl.parse import (
    ABSENT,
    ARRAY,
    BIGINT,
    FALSE,
    FLOAT,
    INT,
    NULL,
    OBJECT,
    STRING,
    TRUE,
    ExportFile,
    fields_read,
    parse_files,
)

from .conftest import EPISODE, TRACK, record
from .test_parse import decline_every_file

FIELDS = ("a", "b")


def _read(data: bytes, fields=FIELDS):
    per_file, starts, ends, columns = read_exports([data], fields)
    records = int(np.frombuffer(per_file, np.int64)[0])
    if records < 0:
        return None
    spans = list(
        zip(np.frombuffer(starts, np.int64).tolist(), np.frombuffer(ends, np.int64).tolist(), strict=True)
    )
    out = {}
    for name, (kinds, ints, offsets, chars) in zip(fields, columns, strict=True):
        kinds = np.frombuffer(kinds, np.uint8).tolist()
        ints = np.frombuffer(ints, np.int64).tolist() or [0] * records
        offsets = np.frombuffer(offsets, np.int32).tolist()
        text = bytes(memoryview(chars))
        strings = [
            text[offsets[i] : offsets[i + 1]].decode() if k == STRING else None for i, k in enumerate(kinds)
        ]
        out[name] = list(zip(kinds, ints, strings, strict=True))
    return out, spans


def test_kinds_values_and_spans():
    values = [
        "plain",
        'esc " \\ / \b \f \n \r \t é \u00e9 \U0001f600',
        "",
        0,
        -0,
        -42,
        2**63 - 1,
        -(2**63),
        2**63,
        -(2**63) - 1,
        10**30,
        1.5,
        1e3,
        -0.0,
        True,
        False,
        None,
        [1, [2, {"x": "y"}]],
        {"k": [None]},
    ]
    kinds = [STRING] * 3 + [INT] * 5 + [BIGINT] * 3 + [FLOAT] * 3 + [TRUE, FALSE, NULL, ARRAY, OBJECT]
    for ensure_ascii in (True, False):
        data = json.dumps([{"a": v, "zz": [v], "b": 1} for v in values], ensure_ascii=ensure_ascii).encode()
        (columns, spans) = _read(data)
        assert [k for k, _, _ in columns["a"]] == kinds
        assert [s for k, _, s in columns["a"] if k == STRING] == values[:3]
        assert [i for k, i, _ in columns["a"] if k == INT] == [0, 0, -42, 2**63 - 1, -(2**63)]
        assert columns["b"] == [(INT, 1, None)] * len(values)
        assert [json.loads(data[start:end]) for start, end in spans] == [
            {"a": v, "zz": [v], "b": 1} for v in values
        ]


def test_absent_fields_non_objects_and_whitespace():
    data = b' \n[ {"b" : "x"} ,\t7 , null,{} ,"s" ,[ ] ]\r\n'
    columns, spans = _read(data)
    assert [k for k, _, _ in columns["a"]] == [ABSENT] * 6
    assert columns["b"][0] == (STRING, 0, "x")
    assert [k for k, _, _ in columns["b"]][1:] == [ABSENT] * 5
    assert [data[s:e] for s, e in spans] == [b'{"b" : "x"}', b"7", b"null", b"{}", b'"s"', b"[ ]"]
    assert _read(b"[]")[0] == {"a": [], "b": []}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b"[1,]",
        b"[01]",
        b"[1.]",
        b"[-]",
        b"[.5]",
        b"[1e]",
        b"[tru]",
        b"[] []",
        b'[{"a": "\xff"}]',  # invalid UTF-8
        b'[{"a": "\xed\xa0\x80"}]',  # an encoded surrogate
        b'[{"zz": "\xc0\xaf"}]',  # overlong, in a field not read
        b'[{"a": "\\ud800"}]',  # lone surrogate
        b'[{"a": "\\udc00x"}]',
        b'[{"a": "tab\tinside"}]',  # a raw control character
        b'[{"a": "\\x"}]',
        b'[{"a": 1, "a": 2}]',  # a field given twice
        b'[{"\\u0061": 1}]',  # an escaped key
        b"[" + b"[" * 70 + b"]" * 70 + b"]",  # nested beyond the reader's depth
        b'\xef\xbb\xbf[{"a": 1}]',  # a byte order mark
        b'[{"a": 1e999}]',  # beyond a double
        b'[{"zz": [-2e308]}]',
        b'[{"a": 0.5e309}]',
        b'[{"a": 1' + b"0" * 5000 + b"}]",  # more digits than Python's int() takes (4300)
    ],
)
def test_declined_files(data):
    assert _read(data) is None


def test_numbers_within_range_are_read():
    columns, _ = _read(b'[{"a": 9.9e307}, {"a": 0.5e308}, {"a": 1e-999}, {"a": 1' + b"0" * 3000 + b"}]")
    assert [k for k, _, _ in columns["a"]] == [FLOAT, FLOAT, FLOAT, BIGINT]


_T = TRACK.encode()


@pytest.mark.parametrize(
    "data",
    [
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 1e999, "spotify_track_uri": "%s"}]'
        % _T,
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 5, "spotify_track_uri": "%s", "skipped": [1e999]}]'
        % _T,
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 5, "spotify_track_uri": "%s", "zz": 1e999}]'
        % _T,
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 1.5e307, "spotify_track_uri": "%s"}]'
        % _T,
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 1' + b"0" * 5000 + b"}]",
        b'[{"ts": "2026-10-31T12:00:00Z", "ts": "2026-10-31T12:00:01Z", "username": "u", "ms_played": 5}]',
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "\u0075", "ms_played": 5, "spotify_track_uri": "%s"}]'
        % _T,
        b'[{"ts": "2026-10-31T12:00:00Z", "username": "\ud83d\ude00", "ms_played": 5, "spotify_track_uri": "%s"}]'
        % _T,
    ],
)
def test_edge_files_give_the_same_results_both_ways(data, monkeypatch):
    files = [ExportFile("e1/Streaming_History_Audio_0.json", "e1", data)]
    by_c = _rows(parse_files(files))
    monkeypatch.setattr(parse, "read_exports", decline_every_file)
    assert _rows(parse_files(files)) == by_c


def test_declined_files_still_go_through_the_rules():
    escaped_key = (
        b'[{"\\u0074s": "2026-10-31T12:00:00Z", "username": "u", "ms_played": 5, "spotify_track_uri": "%s"}]'
    )
    files = [
        ExportFile("e1/Streaming_History_Audio_0.json", "e1", escaped_key % TRACK.encode()),
        ExportFile("e2/Streaming_History_Audio_0.json", "e2", json.dumps([record()]).encode()),
        ExportFile("e3/Streaming_History_Audio_0.json", "e3", b'[{"ts": "\xff"}]'),
    ]
    parsed = parse_files(files)
    assert (parsed.records, parsed.clean, parsed.unreadable) == (2, 2, 1)
    assert [parsed.listener_keys[i] for i in parsed.listener_idx] == ["u", "alice"]
    assert parsed.quarantine[0].reason == "file_unreadable"


# --- random files, read both ways -------------------------------------------------------------------------------

_TEXT = ["", "x", "é", "\U0001f600", 'q"uote', "back\\slash", "line\nbreak", "\u0000", "  "]


def _random_value(rng: random.Random, field: str):
    choice = rng.random()
    if choice < 0.55:  # the usual value of that field
        return record()[field] if field in record() else rng.choice(_TEXT)
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            183_000,
            2**63,
            -(2**63),
            2**70,
            12.0,
            -0.5,
            rng.choice(_TEXT),
            "2026-10-31T12:00:00+02:00",
            "2026-13-01T00:00:00Z",
            "2026-10-31T12:00:00.5Z",
            TRACK[:-1] + "é",
            EPISODE,
            [1, "a"],
            {"n": None},
        ]
    )


def _random_file(rng: random.Random, index: int) -> ExportFile:
    fields = [*fields_read(True), "ip_addr", "offline_timestamp", "extra"]
    records: list = []
    for _ in range(rng.randint(0, 30)):
        if rng.random() < 0.03:
            records.append(rng.choice([None, 5, "s", []]))
            continue
        chosen = [f for f in fields if rng.random() < 0.9]
        rng.shuffle(chosen)
        records.append({f: _random_value(rng, f) for f in chosen})
    if records and rng.random() < 0.2:
        records.append(dict(records[0]) if isinstance(records[0], dict) else records[0])  # a repeat
    indent = rng.choice([None, 0, 2])
    data = json.dumps(records, indent=indent, ensure_ascii=rng.random() < 0.5).encode()
    export_id = None if rng.random() < 0.1 else f"export-{index % 7}"
    source = (
        f"{export_id}/Streaming_History_Audio_{index}.json"
        if export_id
        else f"Streaming_History_Audio_{index}.json"
    )
    return ExportFile(source, export_id, data)


def _rows(parsed) -> dict:
    return {
        "counts": (parsed.records, parsed.unreadable, parsed.clean),
        "quarantine": parsed.quarantine,
        "listeners": [parsed.listener_keys[i] for i in parsed.listener_idx],
        "content": [parsed.content_uris[i] for i in parsed.content_idx],
        "columns": [
            a.tolist() for a in (parsed.ts_ns, parsed.content_type, parsed.ms_played, parsed.skipped)
        ],
        "events": {name: array.to_pylist() for name, array in parsed.clean_event_columns().items()},
    }


@pytest.mark.parametrize("seed", range(4))
def test_random_files_read_the_same_by_the_c_reader_and_by_msgspec(seed, monkeypatch):
    rng = random.Random(seed)
    files = [_random_file(rng, i) for i in range(60)]
    taken = np.frombuffer(read_exports([f.data for f in files], fields_read(True))[0], np.int64)
    assert (taken >= 0).all()  # every random file is plain JSON the reader takes
    for with_event_fields in (True, False):
        by_c = _rows(parse_files(files, with_event_fields=with_event_fields))
        with monkeypatch.context() as patched:
            patched.setattr(parse, "read_exports", decline_every_file)
            by_msgspec = _rows(parse_files(files, with_event_fields=with_event_fields))
        assert by_c == by_msgspec
        assert by_c["counts"][0] > 500 and by_c["quarantine"] and by_c["counts"][2]


GUARD_PAGE_READS = """
import ctypes, mmap, sys
from spotify_jobs.etl._export_reader import read_exports

libc = ctypes.CDLL(None)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
page = mmap.PAGESIZE
document = sys.argv[1].encode()
for end in range(len(document) + 1):  # every prefix, its last byte the last readable one
    data = document[:end]
    memory = mmap.mmap(-1, 2 * page)
    memory[page - len(data) : page] = data
    assert libc.mprotect(ctypes.addressof(ctypes.c_char.from_buffer(memory)) + page, page, 0) == 0
    read_exports([memoryview(memory)[page - len(data) : page]], ("a", "b"))
print("ok")
"""


def test_no_read_past_the_end_of_any_prefix_of_a_file():
    """Each prefix of a document lies at the end of a readable page followed by an unreadable one: a read past
    the buffer would kill the child process."""
    import subprocess
    import sys

    document = '[{"a": "x\\\\u00e9\\\\ud83d\\\\ude00", "b": [1, -2.5e3, {"c": null}], "zz": true}, 7, {"a": false} ,{}]'
    result = subprocess.run(
        [sys.executable, "-c", GUARD_PAGE_READS, document], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]


def test_integers_longer_than_pythons_limit_are_declined(monkeypatch):
    import sys

    data = b'[{"a": ' + b"9" * 1000 + b"}]"
    assert _read(data)[0]["a"][0][0] == BIGINT
    monkeypatch.setattr(sys, "get_int_max_str_digits", lambda: 640)  # msgspec would refuse these digits
    assert _read(data) is None
