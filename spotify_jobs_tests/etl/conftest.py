"""Helpers shared by the ETL tests: small generated landing dates and JSON export files built by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spotify_jobs.etl.generator import GenerationConfig, GenerationReport, generate_exports
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage

DATE = "2026-11-01"
TRACK = "spotify:track:74cksX4vgcm0cHKaV7XE2L"
TRACK_2 = "spotify:track:0000000000000000000002"
EPISODE = "spotify:episode:5mOcCJ5Dq9aZQW8ZD4ReBW"
AUDIOBOOK = "spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe"


def record(**fields: object) -> dict:
    """A clean new-variant music record; keyword arguments override or (with ...) remove fields."""
    base = {
        "ts": "2026-10-31T12:00:00Z",
        "username": "alice",
        "platform": "iOS 17.1.2 (iPhone15,2)",
        "ms_played": 200_000,
        "conn_country": "SE",
        "ip_addr": "198.51.100.23",
        "master_metadata_track_name": "Song",
        "master_metadata_album_artist_name": "Artist",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": TRACK,
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "clickrow",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": 1_730_000_000_000,
        "incognito_mode": False,
    }
    for key, value in fields.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def export_bytes(records: list) -> bytes:
    return json.dumps(records).encode()


@pytest.fixture
def landing_dir(tmp_path) -> Callable[[dict[str, list]], Path]:
    """Writes {relative path: records} as a landing date folder; returns the folder."""

    def write(files: dict[str, list | bytes]) -> Path:
        root = tmp_path / "landing"
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else export_bytes(content))
        return root

    return write


def generate_local(root: Path, tenant: str = "bench", **config: object) -> tuple[Path, GenerationReport]:
    """Generate one landing date under `root`; returns (landing date folder, report)."""
    storage = TenantStorage(LocalObjectStore(root), tenant)
    report = generate_exports(storage, DATE, GenerationConfig(**{"records": 3000, **config}))
    return root / "tenants" / tenant / "landing" / DATE, report
