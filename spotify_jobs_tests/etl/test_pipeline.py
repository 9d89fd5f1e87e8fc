"""The ETL run: hand-computed statistics, duplicates, conservation, pseudonyms, no personal data, equivalences."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spotify_jobs.etl.files import NoLandingData, directory_files
from spotify_jobs.etl.pipeline import DirectorySink, listener_id, run_directory, run_etl, tenant_key
from spotify_jobs.etl.quality import personal_data_hits, personal_values
from spotify_jobs.etl.schema import ETL_OUTPUTS, OUTPUT_COLUMNS, arrow_schema

from .conftest import EPISODE, TRACK, TRACK_2, generate_local, record

SECRET = "test-secret"
REPO = Path(__file__).resolve().parents[2]


def _run(root: Path, out: Path, **kwargs) -> dict:
    return run_directory(root, out, "t1", SECRET, **kwargs)


def _table(out: Path, name: str) -> pa.Table:
    return pq.read_table(out / f"{name}.parquet")


@pytest.fixture
def hand_made(landing_dir) -> Path:
    """Ten records whose outputs are computed by hand in the tests below."""
    alice = {"username": "alice"}
    anonymous = {"username": ...}
    return landing_dir(
        {
            "exp-a/Streaming_History_Audio_2026_0.json": [
                record(**alice, ts="2026-10-30T10:00:00Z", ms_played=200_000, skipped=False),
                record(**alice, ts="2026-10-30T10:05:00Z", ms_played=10_000, skipped=True),
                record(
                    **alice,
                    ts="2026-10-30T10:10:00Z",
                    spotify_track_uri=TRACK_2,
                    ms_played=30_000,
                    skipped=None,
                ),
                # Same key as the second record: a duplicate, though its skipped flag differs; the first stays.
                record(**alice, ts="2026-10-30T10:05:00Z", ms_played=10_000, skipped=False),
                record(
                    **alice,
                    ts="2026-10-30T11:00:00Z",
                    spotify_track_uri=None,
                    spotify_episode_uri=EPISODE,
                    ms_played=600_000,
                ),
                record(**alice, ts="bad"),
            ],
            "exp-b/Streaming_History_Audio_2026_0.json": [
                record(**anonymous, ts="2026-10-30T23:59:59Z", ms_played=29_999, skipped=False),
                record(**anonymous, ts="2026-10-31T00:00:00Z", ms_played=45_000, skipped=True),
            ],
            "exp-b/Streaming_History_Audio_2026_1.json": [
                record(
                    **anonymous, ts="2026-10-31T00:00:00Z", ms_played=45_000, skipped=True
                ),  # across files
                record(
                    **alice, ts="2026-10-30T10:00:00Z", ms_played=200_000
                ),  # alice again, in another export
            ],
            "exp-b/Streaming_History_Video_2026_0.json": b"[]",
            "exp-b/ReadMeFirst.pdf": b"%PDF-1.4",
        }
    )


def test_hand_computed_example(hand_made, tmp_path):
    line = _run(hand_made, tmp_path / "out")
    assert (line["records_in"], line["clean"], line["quarantined"], line["duplicates"]) == (10, 6, 1, 3)
    assert line["conserved"] is True
    assert line["ignored_files"] == 2
    assert line["content_types"] == {"music": 5, "podcast": 1}
    stats = _table(tmp_path / "out", "daily_track_stats").to_pylist()
    assert stats == [
        {"event_date": "2026-10-30", "track_uri": TRACK_2, "plays": 1, "streams": 1, "ms_played_total": 30_000,
         "unique_listeners": 1, "skip_rate": 0.0},
        {"event_date": "2026-10-30", "track_uri": TRACK, "plays": 3, "streams": 1, "ms_played_total": 239_999,
         "unique_listeners": 2, "skip_rate": 1 / 3},
        {"event_date": "2026-10-31", "track_uri": TRACK, "plays": 1, "streams": 1, "ms_played_total": 45_000,
         "unique_listeners": 1, "skip_rate": 1.0},
    ]  # fmt: skip


def test_listening_events_are_pseudonymised(hand_made, tmp_path):
    _run(hand_made, tmp_path / "out")
    events = _table(tmp_path / "out", "listening_events")
    assert events.schema == arrow_schema(OUTPUT_COLUMNS["listening_events"])
    key = hmac.new(SECRET.encode(), b"t1", hashlib.sha256).digest()
    expected = {
        "alice": hmac.new(key, b"alice", hashlib.sha256).hexdigest(),
        "exp-b": hmac.new(key, b"exp-b", hashlib.sha256).hexdigest(),
    }
    assert set(events["listener_id"].to_pylist()) == set(expected.values())
    assert listener_id(tenant_key(SECRET, "t1"), "alice") == expected["alice"]
    assert listener_id(tenant_key(SECRET, "t2"), "alice") != expected["alice"]  # no linking across tenants
    rows = events.to_pylist()
    assert [r["content_type"] for r in rows].count("podcast") == 1
    podcast = next(r for r in rows if r["content_type"] == "podcast")
    assert (podcast["track_uri"], podcast["content_uri"]) == (None, EPISODE)
    assert {r["event_date"] for r in rows} == {"2026-10-30", "2026-10-31"}


def test_quarantine_output(hand_made, tmp_path):
    _run(hand_made, tmp_path / "out")
    [row] = _table(tmp_path / "out", "quarantined_events").to_pylist()
    assert row["reason"] == "bad_ts"
    assert (row["source_file"], row["record_index"]) == ("exp-a/Streaming_History_Audio_2026_0.json", 5)
    assert json.loads(row["redacted_record"])["ts"] == "bad"


def test_unreadable_file_is_quarantined_whole_and_others_load(landing_dir, tmp_path):
    root = landing_dir(
        {
            "e1/Streaming_History_Audio_2026_0.json": b'[{"ts": "2026-10-30T10:00:00Z"',
            "e1/Streaming_History_Audio_2026_1.json": [record()],
            "e2/Streaming_History_Audio_2026_0.json": b'{"not": "an array"}',
        }
    )
    line = _run(root, tmp_path / "out")
    assert (line["records_in"], line["clean"], line["quarantined"], line["unreadable_files"]) == (3, 1, 2, 2)
    rows = _table(tmp_path / "out", "quarantined_events").to_pylist()
    assert [(r["reason"], r["record_index"]) for r in rows] == [("file_unreadable", -1)] * 2
    assert "not an array" in rows[1]["detail"]


def test_loose_file_without_usernames_has_no_listener(landing_dir, tmp_path):
    root = landing_dir({"Streaming_History_Audio_2026_0.json": [record(username=...), record()]})
    line = _run(root, tmp_path / "out")
    assert line["quarantine_reasons"] == {"missing_listener": 1}
    assert line["clean"] == 1


@pytest.mark.parametrize("variant", ["new", "legacy"])
def test_generated_exports_are_conserved_and_counted(tmp_path, variant):
    landing, report = generate_local(tmp_path / "data", variant=variant, records=4000, seed=11)
    line = _run(landing, tmp_path / "out")
    assert line["records_in"] == report.records_in
    assert line["clean"] == report.clean
    assert line["duplicates"] == report.duplicates
    assert line["unreadable_files"] == report.unreadable_files == 1
    assert line["quarantine_reasons"] == dict(sorted({**report.malformed, "file_unreadable": 1}.items()))
    assert line["content_types"] == report.content
    assert line["conserved"] and line["rows"]["listening_events"] == report.clean


def test_no_personal_data_in_any_output(tmp_path):
    landing, _ = generate_local(
        tmp_path / "data", variant="legacy", records=3000, seed=12, mean_records_per_export=400
    )
    out = tmp_path / "out"
    _run(landing, out)
    values = personal_values(path.read_bytes() for path in landing.rglob("*.json"))
    assert len(values) > 3  # usernames and IPs of several exports
    for name in ETL_OUTPUTS:
        table = _table(out, name)
        assert personal_data_hits(table, values) == {}, name
        assert not {"username", "ip_addr", "ip_addr_decrypted", "user_agent_decrypted"} & set(
            table.column_names
        )
    # The detector itself finds a raw value when one is there.
    leaked = pa.table({"platform": [sorted(values)[0]]})
    assert personal_data_hits(leaked, values) == {"platform": 1}


def test_rerun_replaces_outputs(hand_made, tmp_path):
    out = tmp_path / "out"
    _run(hand_made, out)
    first = {name: _table(out, name) for name in ETL_OUTPUTS}
    _run(hand_made, out)
    for name in ETL_OUTPUTS:
        assert _table(out, name).equals(first[name])
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.parquet" for name in ETL_OUTPUTS)


def test_output_selection_gives_the_same_results(tmp_path):
    landing, _ = generate_local(tmp_path / "data", records=3000, seed=13, max_file_bytes=200_000)
    full = _run(landing, tmp_path / "full")
    lean = _run(landing, tmp_path / "lean", outputs=["quarantined_events", "daily_track_stats"])
    assert full["files"] > 4
    for key in ("records_in", "clean", "quarantined", "duplicates", "quarantine_reasons", "content_types"):
        assert lean[key] == full[key], key
    for name in ("quarantined_events", "daily_track_stats"):
        assert _table(tmp_path / "lean", name).equals(_table(tmp_path / "full", name)), name
    assert not (tmp_path / "lean" / "listening_events.parquet").exists()


def test_daily_track_stats_match_an_independent_duckdb_query(tmp_path):
    """The benchmark's DuckDB query implements the rules separately; both must give the same table."""
    spec = importlib.util.spec_from_file_location("etl_throughput", REPO / "benchmarks" / "etl_throughput.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    landing, report = generate_local(tmp_path / "data", records=5000, seed=14)
    _run(landing, tmp_path / "out", outputs=["daily_track_stats"])
    readable = sorted(
        p.relative_to(landing).as_posix()
        for p in landing.rglob("*.json")
        if p.relative_to(landing).as_posix() not in report.unreadable
    )
    benchmark.duckdb_daily_track_stats(landing, readable, tmp_path / "duck.parquet", threads=1)
    assert pq.read_table(tmp_path / "duck.parquet").equals(_table(tmp_path / "out", "daily_track_stats"))


def test_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoLandingData, match="no Streaming_History_Audio"):
        _run(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(NoLandingData, match="not a directory"):
        directory_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown ETL outputs"):
        run_etl([], b"k", DirectorySink(tmp_path / "out"), outputs=["listening_event"])
    with pytest.raises(ValueError, match="tenant id"):
        run_directory(tmp_path / "empty", tmp_path / "out", "../other-tenant", SECRET)


def test_daily_track_stats_function_matches_a_pandas_groupby():
    import numpy as np
    import pandas as pd

    from spotify_jobs.etl.stats import daily_track_stats

    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame(
        {
            "day": rng.integers(20_000, 20_010, n),
            "track": rng.integers(0, 40, n),
            "listener": rng.integers(0, 30, n),
            "ms": rng.integers(0, 60_000, n),
            "skipped": rng.random(n) < 0.3,
        }
    )
    uris = pa.array([f"spotify:track:{i:022d}" for i in range(40)])
    got = daily_track_stats(
        frame["day"].to_numpy(), frame["track"].to_numpy(), frame["listener"].to_numpy(),
        frame["ms"].to_numpy(), frame["skipped"].to_numpy(), uris,
    ).to_pandas()  # fmt: skip
    frame["event_date"] = pd.to_datetime(frame["day"], unit="D").dt.strftime("%Y-%m-%d")
    frame["track_uri"] = frame["track"].map(lambda i: f"spotify:track:{i:022d}")
    expected = (
        frame.assign(stream=frame["ms"] >= 30_000)
        .groupby(["event_date", "track_uri"])
        .agg(
            plays=("ms", "size"),
            streams=("stream", "sum"),
            ms_played_total=("ms", "sum"),
            unique_listeners=("listener", "nunique"),
            skip_rate=("skipped", "mean"),
        )
        .reset_index()
    )
    assert got["event_date"].tolist() == expected["event_date"].tolist()
    assert got["track_uri"].tolist() == expected["track_uri"].tolist()
    for column in ("plays", "streams", "ms_played_total", "unique_listeners"):
        assert got[column].tolist() == expected[column].astype("int64").tolist(), column
    assert np.allclose(got["skip_rate"], expected["skip_rate"])


@pytest.mark.parametrize("outputs", [ETL_OUTPUTS, ("quarantined_events", "daily_track_stats")])
def test_threads_and_batch_sizes_give_the_same_outputs(tmp_path, monkeypatch, outputs):
    from spotify_jobs.etl import pipeline

    landing, report = generate_local(tmp_path / "data", records=4000, seed=15, max_file_bytes=150_000)
    files, _ = directory_files(landing)
    assert len(files) > 6
    runs = {}
    # One batch on one thread; then a batch per file on three threads, so that duplicates fall in other
    # batches than their first record.
    for threads, batch_bytes, expected_batches in ((1, pipeline.BATCH_BYTES, 1), (3, 1, len(files))):
        monkeypatch.setattr(pipeline, "BATCH_BYTES", batch_bytes)
        assert len(pipeline.batches(files)) == expected_batches
        out = tmp_path / f"out-{threads}"
        result = run_etl(
            files, tenant_key(SECRET, "t1"), DirectorySink(out), outputs=outputs, threads=threads
        )
        assert result.threads == threads
        runs[threads] = (result.counts(), {name: _table(out, name) for name in outputs})
    assert runs[3][0] == runs[1][0]
    assert runs[1][0]["duplicates"] == report.duplicates
    for name in outputs:
        assert runs[3][1][name].equals(runs[1][1][name]), name


def test_a_failure_on_a_parser_thread_fails_the_run(tmp_path, monkeypatch):
    from spotify_jobs.etl import pipeline

    landing, _ = generate_local(tmp_path / "data", records=2000, seed=16, max_file_bytes=100_000)
    files, _ = directory_files(landing)
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1)  # a batch per file
    prepare = pipeline._prepare

    def failing(batch, key, with_events):
        if batch[0].source_file == files[-2].source_file:
            raise RuntimeError(f"cannot parse {batch[0].source_file}")
        return prepare(batch, key, with_events)

    monkeypatch.setattr(pipeline, "_prepare", failing)
    with pytest.raises(RuntimeError, match="cannot parse"):
        run_etl(files, tenant_key(SECRET, "t1"), DirectorySink(tmp_path / "out"), threads=2)
    assert not [t for t in threading.enumerate() if t.name.startswith(("etl-parse", "etl-parquet"))]
    assert not list((tmp_path / "out").glob("*.parquet"))  # nothing half-written is committed


@pytest.mark.parametrize("weak_hash", [False, True])
def test_duplicate_check_matches_a_set(monkeypatch, weak_hash):
    import numpy as np

    from spotify_jobs.etl import pipeline

    if weak_hash:  # every key shares one of three hashes: the exact comparison decides
        monkeypatch.setattr(pipeline, "_key_hashes", lambda keys: (keys[:, 0] % 3).astype(np.uint64))
    rng = np.random.default_rng(5)
    seen, expected = pipeline._SeenKeys(), set()
    for _ in range(40):
        n = int(rng.integers(0, 300))
        listener, content = rng.integers(0, 4, n).astype(np.int32), rng.integers(0, 30, n).astype(np.int32)
        ts, ms = rng.integers(0, 20, n), rng.integers(0, 3, n)
        first = []
        for key in zip(listener.tolist(), content.tolist(), ts.tolist(), ms.tolist(), strict=True):
            first.append(key not in expected)
            expected.add(key)
        assert seen.first_seen(listener, content, ts, ms).tolist() == first


def test_parser_threads_follow_the_cpus_and_the_cgroup_quota(monkeypatch):
    from spotify_jobs.etl import pipeline

    monkeypatch.setattr(pipeline, "available_cpus", lambda: 4)
    monkeypatch.setattr(pipeline, "cgroup_cpu_limit", lambda: None)
    assert pipeline.etl_threads() == 4
    monkeypatch.setattr(pipeline, "cgroup_cpu_limit", lambda: 1.5)
    assert pipeline.etl_threads() == 1  # the container's CPU quota counts


def test_batches_follow_listed_sizes_and_keep_file_order(monkeypatch, tmp_path):
    from spotify_jobs.etl import pipeline
    from spotify_jobs.etl.files import InputFile, LocalFile

    def inputs(sizes):
        return [
            InputFile(f"e{i}/Streaming_History_Audio_0.json", LocalFile(tmp_path / "x"), size)
            for i, size in enumerate(sizes)
        ]

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 100)
    files = inputs([60, 60, 10, 200, 5])
    assert [[f.size for f in batch] for batch in pipeline.batches(files)] == [[60, 60], [10, 200], [5]]
    assert [f for batch in pipeline.batches(files) for f in batch] == files
    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)
    assert [len(batch) for batch in pipeline.batches(inputs([0] * 5))] == [2, 2, 1]  # sizes unknown
