"""Deterministic synthetic listening events with latent taste, for tests, benchmarks and the GPU check.

Listeners each favour one genre; tracks belong to one genre and have Zipf-distributed popularity. Most
plays come from the listener's genre, the rest from the global chart, so a model that learns taste beats
the popularity baseline while popularity stays a fair opponent. Frames follow `LISTENING_EVENT_COLUMNS`.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np
import pandas as pd

from spotify_jobs.etl.schema import LISTENING_EVENT_COLUMNS, STREAM_THRESHOLD_MS, output_key
from spotify_jobs.storage.tenant_storage import TenantStorage

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _track_uri(index: int) -> str:
    digits = []
    value = index + 1
    while value:
        value, rest = divmod(value, 62)
        digits.append(_BASE62[rest])
    return "spotify:track:" + "".join(reversed(digits)).rjust(22, "0")


def synthetic_listening_events(
    *,
    listeners: int = 200,
    tracks: int = 400,
    genres: int = 8,
    days: int = 10,
    plays_per_listener_day: float = 4.0,
    genre_affinity: float = 0.85,
    podcast_share: float = 0.05,
    start: str = "2026-03-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Clean listening events over `days` UTC days from `start`; the same arguments give the same frame."""
    if min(listeners, tracks, genres, days) < 1 or tracks < genres:
        raise ValueError("listeners, tracks, genres and days must be >= 1 and tracks >= genres")
    if not 0.0 <= genre_affinity <= 1.0 or not 0.0 <= podcast_share < 1.0:
        raise ValueError("genre_affinity must lie in [0, 1] and podcast_share in [0, 1)")
    rng = np.random.default_rng(seed)
    track_genre = rng.permutation(np.arange(tracks) % genres)
    popularity = 1.0 / np.arange(1, tracks + 1) ** 0.8
    popularity = popularity[rng.permutation(tracks)]
    global_p = popularity / popularity.sum()
    genre_members = [np.flatnonzero(track_genre == g) for g in range(genres)]
    genre_p = [popularity[m] / popularity[m].sum() for m in genre_members]
    listener_genre = rng.integers(0, genres, size=listeners)

    counts = rng.poisson(plays_per_listener_day, size=(listeners, days))
    listener_idx = np.repeat(np.tile(np.arange(listeners)[:, None], (1, days)).ravel(), counts.ravel())
    day_idx = np.repeat(np.tile(np.arange(days)[None, :], (listeners, 1)).ravel(), counts.ravel())
    n = len(listener_idx)
    from_genre = rng.random(n) < genre_affinity
    track_idx = rng.choice(tracks, size=n, p=global_p)
    for g in range(genres):
        rows = np.flatnonzero(from_genre & (listener_genre[listener_idx] == g))
        track_idx[rows] = rng.choice(genre_members[g], size=len(rows), p=genre_p[g])
    is_podcast = rng.random(n) < podcast_share
    ms_played = np.where(
        rng.random(n) < 0.8, rng.integers(30_000, 300_000, n), rng.integers(1_000, 30_000, n)
    )
    seconds = rng.integers(0, 86_400, n)

    start_day = date.fromisoformat(start)
    day_names = np.array([(start_day + timedelta(days=d)).isoformat() for d in range(days)])
    ts = pd.to_datetime(day_names[day_idx]).tz_localize("UTC") + pd.to_timedelta(seconds, unit="s")
    listener_ids = np.array(
        [hashlib.sha256(f"listener-{i}-{seed}".encode()).hexdigest() for i in range(listeners)]
    )
    track_uris = np.array([_track_uri(i) for i in range(tracks)])
    episode_uris = np.array([f"spotify:episode:{i:022d}" for i in range(50)])
    content_uri = np.where(is_podcast, episode_uris[track_idx % 50], track_uris[track_idx])
    skipped = ms_played < STREAM_THRESHOLD_MS
    frame = pd.DataFrame(
        {
            "listener_id": listener_ids[listener_idx],
            "ts": ts,
            "event_date": day_names[day_idx],
            "content_type": np.where(is_podcast, "podcast", "music"),
            "content_uri": content_uri,
            "track_uri": np.where(is_podcast, None, track_uris[track_idx]),
            "track_name": np.where(is_podcast, None, np.char.add("Track ", track_idx.astype(str))),
            "artist_name": np.where(is_podcast, None, np.char.add("Artist ", (track_idx // 4).astype(str))),
            "album_name": np.where(is_podcast, None, np.char.add("Album ", (track_idx // 2).astype(str))),
            "episode_name": np.where(is_podcast, np.char.add("Episode ", (track_idx % 50).astype(str)), None),
            "show_name": np.where(is_podcast, "Synthetic Show", None),
            "ms_played": ms_played.astype("int64"),
            "platform": "android",
            "conn_country": "SE",
            "reason_start": "clickrow",
            "reason_end": np.where(skipped, "fwdbtn", "trackdone"),
            "shuffle": rng.random(n) < 0.3,
            "skipped": skipped,
            "offline": False,
            "incognito_mode": False,
        }
    )
    frame = frame.sort_values(["ts", "listener_id"], kind="stable", ignore_index=True)
    return frame.astype(LISTENING_EVENT_COLUMNS)


def write_listening_events(storage: TenantStorage, events: pd.DataFrame) -> list[str]:
    """Write `events` one file per `event_date` where the ETL puts clean events; returns the dates written."""
    dates = sorted(events["event_date"].unique())
    for day in dates:
        storage.write_parquet(
            events[events["event_date"] == day].reset_index(drop=True), output_key("listening_events", day)
        )
    return dates
