"""The export generator: deterministic bytes, Spotify's file format and variants, the injected faults."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from spotify_jobs.etl.generator import (
    MEAN_RECORDS_PER_EXPORT,
    GenerationConfig,
    GenerationReport,
    LandingNotEmpty,
    generate_exports,
)
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import InvalidTenantId

from .conftest import DATE, generate_local

FILE_NAME = re.compile(r"Streaming_History_Audio_(\d{4})(?:-(\d{4}))?_(\d+)\.json")
TRACK_URI = re.compile(r"spotify:track:[0-9A-Za-z]{22}")


def _files(landing) -> dict[str, bytes]:
    return {p.relative_to(landing).as_posix(): p.read_bytes() for p in sorted(landing.rglob("*.json"))}


def _records(landing, unreadable: list[str]) -> list[dict]:
    return [
        rec for name, data in _files(landing).items() if name not in unreadable for rec in json.loads(data)
    ]


def _music(landing, report) -> list[tuple[str, dict]]:
    """(file name, record) of every readable music record."""
    return [
        (name, rec)
        for name, data in _files(landing).items()
        if name not in report.unreadable
        for rec in json.loads(data)
        if isinstance(rec.get("spotify_track_uri"), str)
    ]


def test_same_config_same_bytes_other_seed_other_bytes(tmp_path):
    a, _ = generate_local(tmp_path / "a", records=2000, seed=1)
    b, _ = generate_local(tmp_path / "b", records=2000, seed=1)
    c, _ = generate_local(tmp_path / "c", records=2000, seed=2)
    assert _files(a) == _files(b)
    assert _files(a) != _files(c)


def test_file_layout_and_size_limit(tmp_path):
    landing, report = generate_local(
        tmp_path, records=3000, max_file_bytes=150_000, mean_records_per_export=1000
    )
    files = _files(landing)
    assert len(report.exports) == 3 and len(files) == len(report.files) > 6
    for name, data in files.items():
        export_id, file_name = name.split("/")
        assert export_id in report.exports
        match = FILE_NAME.fullmatch(file_name)
        assert match, file_name
        assert len(data) <= 150_000
        if name not in report.unreadable:
            assert isinstance(json.loads(data), list)
    # Files of one export are numbered 0, 1, 2, ... in order.
    for export_id in report.exports:
        numbers = sorted(
            int(FILE_NAME.fullmatch(n.split("/")[1])[3]) for n in files if n.startswith(export_id)
        )
        assert numbers == list(range(len(numbers)))


def test_new_variant_content(tmp_path):
    landing, report = generate_local(tmp_path, records=6000, seed=5)
    records = _records(landing, report.unreadable)
    assert len(records) == report.records == 6000
    assert all("ip_addr" in r and "audiobook_uri" in r and "ip_addr_decrypted" not in r for r in records)
    music = [r for r in records if isinstance(r.get("spotify_track_uri"), str)]
    podcasts = [r for r in records if r.get("spotify_episode_uri")]
    books = [r for r in records if r.get("audiobook_uri")]
    assert 0.03 < len(podcasts) / len(records) < 0.07
    assert books and all(r["audiobook_chapter_uri"].startswith("spotify:chapter:") for r in books)
    assert sum(bool(TRACK_URI.fullmatch(r["spotify_track_uri"])) for r in music) >= len(music) - 10
    # Zipf popularity: the head track reaches most listeners, far more than the average track does.
    reach = Counter(
        uri for _, uri in {(n.split("/")[0], r["spotify_track_uri"]) for n, r in _music(landing, report)}
    )
    top = max(reach.values())
    assert top > len(report.exports) / 2 and top > 5 * (sum(reach.values()) / len(reach))
    for flag in ("skipped", "shuffle", "offline"):
        assert {True, False} <= {r[flag] for r in records}
    assert any(
        r["ms_played"] == 0 or (isinstance(r["ms_played"], int) and r["ms_played"] < 30_000) for r in music
    )
    assert max(r["ms_played"] for r in records if type(r["ms_played"]) is int) > 30 * 60_000  # long podcasts
    # Field order varies between exports.
    orders = {
        tuple(json.loads(data)[0]) for name, data in _files(landing).items() if name not in report.unreadable
    }
    assert len(orders) > 1


def test_legacy_variant_content(tmp_path):
    landing, report = generate_local(
        tmp_path, records=8000, mean_records_per_export=500, variant="legacy", seed=6
    )
    records = _records(landing, report.unreadable)
    assert all(
        "ip_addr_decrypted" in r and "user_agent_decrypted" in r and "ip_addr" not in r for r in records
    )
    assert not any("audiobook_uri" in r for r in records)
    assert any(r["skipped"] is None for r in records)
    with_username = {name.split("/")[0] for name, data in _files(landing).items()
                     if name not in report.unreadable and "username" in json.loads(data)[0]}  # fmt: skip
    assert 0 < len(with_username) < len(report.exports)  # some legacy exports have no username at all


def test_duplicates_and_every_malformed_reason(tmp_path):
    landing, report = generate_local(tmp_path, records=5000, duplicate_share=0.01, malformed_share=0.01)
    assert report.duplicates == 50
    assert set(report.malformed) == {
        "missing_listener",
        "bad_ts",
        "bad_ms_played",
        "bad_track_uri",
        "no_content",
    }
    assert sum(report.malformed.values()) == 50
    assert report.unreadable_files == 1
    assert report.records_in == report.records + 1
    assert report.clean == 5000 - 50 - 50
    records = _records(landing, report.unreadable)
    keys = Counter(json.dumps(r, sort_keys=True) for r in records)
    assert sum(n - 1 for n in keys.values()) == 50  # exact copies


def test_no_faults_when_shares_are_zero(tmp_path):
    _, report = generate_local(tmp_path, records=1000, duplicate_share=0, malformed_share=0)
    assert (report.duplicates, report.malformed, report.unreadable) == (0, {}, [])
    assert report.clean == report.records_in == 1000


def test_refuses_to_mix_with_existing_landing_files(tmp_path):
    generate_local(tmp_path, records=300)
    with pytest.raises(LandingNotEmpty, match="already holds files"):
        generate_local(tmp_path, records=300)
    storage = TenantStorage(LocalObjectStore(tmp_path), "bench")
    report = generate_exports(storage, DATE, GenerationConfig(records=200, seed=9), replace=True)
    assert sorted(info.key.split("/", 2)[2] for info in storage.list("landing", DATE)) == sorted(report.files)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"records": 0}, "records must be at least 1"),
        ({"records": 10, "variant": "old"}, "variant must be one of"),
        ({"records": 10, "duplicate_share": 0.7}, "duplicate_share must be in"),
        ({"records": 10, "max_file_bytes": 10}, "max_file_bytes"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**config)


def test_history_too_short_for_a_listener_is_refused(tmp_path):
    # 150 streams a day, nearly half of them podcast episodes of ~30 min: more than a day can hold
    with pytest.raises(ValueError, match="raise history_days"):
        generate_local(tmp_path, records=1000, history_days=1, podcast_share=0.45)


@pytest.mark.parametrize("hostile", ["../x", "A_B", "a/b", "ténant", "", "x" * 41])
def test_hostile_tenant_ids_write_nothing(tmp_path, hostile):
    with pytest.raises(InvalidTenantId):
        generate_local(tmp_path, tenant=hostile, records=10)
    assert not any(tmp_path.rglob("*.json"))


def test_bad_date_is_refused(tmp_path):
    storage = TenantStorage(LocalObjectStore(tmp_path), "bench")
    with pytest.raises(ValueError):
        generate_exports(storage, "2026-13-01", GenerationConfig(records=10))
    with pytest.raises(ValueError):
        generate_exports(storage, "../2026-01-01", GenerationConfig(records=10))


@pytest.fixture(scope="module")
def demo_tenant(tmp_path_factory) -> tuple[dict[str, list[dict]], GenerationReport]:
    """What `make run` generates for a demo tenant (20,000 records, clean), as {export id: records}."""
    landing, report = generate_local(
        tmp_path_factory.mktemp("demo"), records=20_000, seed=0, duplicate_share=0, malformed_share=0
    )
    exports: dict[str, list[dict]] = defaultdict(list)
    for name, data in _files(landing).items():
        exports[name.split("/")[0]] += json.loads(data)
    return exports, report


def test_one_listener_per_export_with_heavy_tailed_activity(demo_tenant):
    exports, report = demo_tenant
    assert len(exports) == len(report.exports) == round(20_000 / MEAN_RECORDS_PER_EXPORT) == 133
    assert len({recs[0]["username"] for recs in exports.values()}) == len(exports)
    assert all(len({r["username"] for r in recs}) == 1 for recs in exports.values())
    sizes = np.array([len(recs) for recs in exports.values()])
    assert sizes.sum() == 20_000 and sizes.min() >= 1
    assert sizes.max() > 10 * np.median(sizes)  # a few heavy listeners, many light ones


def test_listening_spans_history_days_in_time_order(demo_tenant):
    exports, _report = demo_tenant
    end = dt.date.fromisoformat(DATE)
    start = (end - dt.timedelta(days=GenerationConfig(records=1).history_days)).isoformat()
    holdout = (end - dt.timedelta(days=2)).isoformat()
    recent = 0
    for recs in exports.values():
        ts = [r["ts"] for r in recs]
        assert ts == sorted(set(ts))  # oldest first, no two plays of a listener at the same second
        assert start <= ts[0] and ts[-1] < DATE
        recent += ts[-1] >= holdout
    assert recent > len(exports) / 2  # most listeners played something in the last two days


def test_listeners_replay_favourites(demo_tenant):
    exports, _report = demo_tenant
    repeats = plays = 0
    for recs in exports.values():
        heard: set[str] = set()
        for uri in (r["spotify_track_uri"] for r in recs if r["spotify_track_uri"]):
            repeats += uri in heard
            plays += 1
            heard.add(uri)
    assert repeats > 0.6 * plays  # most plays are of a track the listener has played before


def _recall_at_10(scores: np.ndarray, seen: np.ndarray, truth: list[set[int]]) -> float:
    top = np.argsort(-np.where(seen, -np.inf, scores), axis=1, kind="stable")[:, :10]
    users = [u for u, items in enumerate(truth) if items]
    return float(np.mean([len(truth[u] & set(top[u].tolist())) / min(10, len(truth[u])) for u in users]))


def test_taste_lets_collaborative_filtering_beat_popularity(demo_tenant):
    """Discoveries of the last two days follow each listener's taste: an item-to-item recommender built
    from the earlier days finds them better than the most popular tracks do."""
    exports, _report = demo_tenant
    holdout = (dt.date.fromisoformat(DATE) - dt.timedelta(days=2)).isoformat()
    tracks = {
        uri: i
        for i, uri in enumerate(
            sorted(
                {r["spotify_track_uri"] for recs in exports.values() for r in recs if r["ts"] < holdout}
                - {None}
            )
        )
    }
    seen = np.zeros((len(exports), len(tracks)), dtype=bool)
    truth: list[set[int]] = []
    for user, recs in enumerate(exports.values()):
        music = [(r["ts"], tracks.get(r["spotify_track_uri"])) for r in recs if r["spotify_track_uri"]]
        seen[user, [t for ts, t in music if ts < holdout]] = True
        truth.append({t for ts, t in music if ts >= holdout and t is not None and not seen[user, t]})
    assert sum(map(len, truth)) > 100
    plays = seen.astype(np.float64)
    norms = np.sqrt(plays.sum(0)) + 1e-9
    similarity = (plays.T @ plays) / norms[:, None] / norms[None, :]
    collaborative = _recall_at_10(plays @ similarity, seen, truth)
    popularity = _recall_at_10(np.broadcast_to(plays.sum(0), seen.shape), seen, truth)
    assert collaborative > 1.25 * popularity  # without taste (one global chart for all) both are ~equal
