"""daily_track_stats from the clean, deduplicated music plays (plain numpy, no Dagster)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from spotify_jobs.etl.schema import DAILY_TRACK_STATS_COLUMNS, STREAM_THRESHOLD_MS, arrow_schema

NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH_DAY = dt.date(1970, 1, 1)


def event_days(ts_ns: np.ndarray) -> np.ndarray:
    """UTC day numbers (days since 1970-01-01) of epoch-nanosecond timestamps."""
    return np.floor_divide(ts_ns, NS_PER_DAY)


def day_strings(days: np.ndarray) -> pa.Array:
    """YYYY-MM-DD strings of day numbers, one per element."""
    if len(days) == 0:
        return pa.array([], pa.string())
    distinct, inverse = np.unique(days, return_inverse=True)
    names = [(_EPOCH_DAY + dt.timedelta(days=int(d))).isoformat() for d in distinct]
    return pa.array(names, pa.string()).take(pa.array(inverse.astype(np.int32)))


def daily_track_stats(
    day: np.ndarray,
    track: np.ndarray,
    listener: np.ndarray,
    ms_played: np.ndarray,
    skipped: np.ndarray,
    track_uris: pa.Array,
) -> pa.Table:
    """One row per (event_date, track_uri) of music plays, sorted by both.

    `day`, `track`, `listener`, `ms_played`, `skipped` are aligned per play: day number, index into
    `track_uris`, listener code, ms played, skipped flag. plays = count, streams = plays with ms_played >= 30000,
    ms_played_total = sum, unique_listeners = distinct listener codes, skip_rate = skipped plays / plays.
    """
    schema = arrow_schema(DAILY_TRACK_STATS_COLUMNS)
    if len(day) == 0:
        return schema.empty_table()
    # One stable sort by (day, track, listener); every figure is then a sum over runs of equal keys. In-place
    # steps and int64 sums straight from the sorted inputs keep the temporaries to a few arrays of the input's size.
    day = np.asarray(day, dtype=np.int64)
    first_day = int(day.min())
    tracks = int(track.max()) + 1
    listeners = int(listener.max()) + 1
    if (int(day.max()) - first_day + 1) * tracks * listeners >= 2**63:
        raise ValueError("too many days x tracks x listeners for one 64-bit sort key; split the landing date")
    key = day - first_day
    key *= tracks
    key += track
    key *= listeners
    key += listener
    order = np.argsort(key, kind="stable")
    key = key[order]
    new_listener = np.empty(len(key), bool)
    new_listener[0] = True
    np.not_equal(key[1:], key[:-1], out=new_listener[1:])
    key //= listeners  # (day, track) group keys
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    group_key = key[starts]
    del key
    plays = np.diff(np.r_[starts, len(order)]).astype(np.int64)
    streams = np.add.reduceat((ms_played >= STREAM_THRESHOLD_MS)[order], starts, dtype=np.int64)
    ms_total = np.add.reduceat(ms_played[order], starts, dtype=np.int64)
    skips = np.add.reduceat(skipped[order], starts, dtype=np.int64)
    unique_listeners = np.add.reduceat(new_listener, starts, dtype=np.int64)
    del order, new_listener
    group_day = group_key // tracks + first_day
    group_track = group_key % tracks
    table = pa.table(
        {
            "event_date": day_strings(group_day),
            "track_uri": track_uris.take(pa.array(group_track)),
            "plays": plays,
            "streams": streams,
            "ms_played_total": ms_total,
            "unique_listeners": unique_listeners,
            "skip_rate": skips / plays,
        },
        schema=schema,
    )
    return table.sort_by([("event_date", "ascending"), ("track_uri", "ascending")])
