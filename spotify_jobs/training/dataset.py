"""Implicit-feedback interactions from clean listening events, with a time-based hold-out.

A dataset is one DataFrame (the `training_dataset` asset): one row per (split, listener, track) with the
plays, streams and listening time of that pair in that split, and the first/last date it was heard. Train
rows cover the window's older days; test rows are the newest `holdout_days` and keep only what a model can
be asked to predict: a known listener discovering a known track they did not play during training.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from spotify_jobs.etl.schema import STREAM_THRESHOLD_MS, output_key
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.config import DatasetConfig

LISTENING_EVENTS = "listening_events"
SHORT_PLAY_WEIGHT = 0.25  # a play under the stream threshold says less about taste than a stream
EVENT_COLUMNS_USED = (
    "listener_id",
    "ts",
    "event_date",
    "content_type",
    "content_uri",
    "track_uri",
    "ms_played",
)
DATASET_COLUMNS: dict[str, str] = {
    "split": "string",  # train | test
    "listener_id": "string",
    "track_uri": "string",
    "plays": "int64",
    "streams": "int64",
    "ms_played": "int64",
    "weight": "float64",
    "first_date": "string",
    "last_date": "string",
    # the window the dataset was cut from (the same on every row), so the frame alone says what it covers
    "window_start": "string",
    "holdout_start": "string",
    "window_end": "string",
}
_DATE_FILE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})\.parquet$")


class DatasetError(ValueError):
    """Listening events or a dataset frame the pipeline cannot learn from; the message says why."""


@dataclass(frozen=True)
class DataWindow:
    """The days a dataset covers: train on [start, holdout_start), test on [holdout_start, end]."""

    start: str
    holdout_start: str
    end: str

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start, "holdout_start": self.holdout_start, "end": self.end}


def listening_event_dates(storage: TenantStorage) -> list[str]:
    """The partition dates for which a tenant has clean listening events, oldest first."""
    found = (_DATE_FILE.search("/" + info.key) for info in storage.list("assets", LISTENING_EVENTS))
    return sorted({match.group(1) for match in found if match})


def _read_partition(storage: TenantStorage, day: str) -> pd.DataFrame:
    frame = storage.read_parquet(output_key(LISTENING_EVENTS, day))
    missing = [c for c in EVENT_COLUMNS_USED if c not in frame.columns]
    if missing:
        raise DatasetError(f"listening_events for {day} lack column(s) {', '.join(missing)}")
    return frame[list(EVENT_COLUMNS_USED)]


def _days_before(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


def load_recent_listening_events(storage: TenantStorage, window_days: int) -> pd.DataFrame:
    """Every clean event of the `window_days` days up to the newest event on record, deduplicated.

    A partition holds what landed that day: streams of that day and before (an export carries history).
    Partitions are read newest first until one is older than the window, so a year of partitions is not
    read to train on the last quarter. Overlapping exports repeat streams; those are dropped here.
    """
    dates = listening_event_dates(storage)
    if not dates:
        raise DatasetError("no listening events: materialise listening_events for this tenant first")
    frames: list[pd.DataFrame] = []
    newest: str | None = None
    for day in reversed(dates):
        if newest is not None and day < _days_before(newest, window_days - 1):
            break
        frame = _read_partition(storage, day)
        frames.append(frame)
        if len(frame):
            newest = max(newest or "", str(frame["event_date"].max()))
    events = pd.concat(frames, ignore_index=True)
    if newest is not None:
        events = events[events["event_date"] >= _days_before(newest, window_days - 1)]
    return events.drop_duplicates(["listener_id", "ts", "content_uri"], ignore_index=True)


def data_window(event_dates: pd.Series, config: DatasetConfig) -> DataWindow:
    """The window of `config` ending at the newest of `event_dates` (YYYY-MM-DD strings)."""
    if event_dates.empty:
        raise DatasetError("no listening events in the window: materialise listening_events for this tenant")
    end = str(event_dates.max())
    holdout_start = _days_before(end, config.holdout_days - 1)
    earliest = _days_before(end, config.window_days - 1)
    train_dates = event_dates[(event_dates >= earliest) & (event_dates < holdout_start)]
    if train_dates.empty:
        raise DatasetError(
            f"listening events cover {event_dates.min()}..{end}: nothing is left to train on before the "
            f"{config.holdout_days}-day hold-out starting {holdout_start}; lower holdout_days or add days"
        )
    return DataWindow(str(train_dates.min()), holdout_start, end)


def _pairs(events: pd.DataFrame) -> pd.DataFrame:
    music = events[(events["content_type"] == "music") & events["track_uri"].notna()]
    music = music.assign(stream=(music["ms_played"] >= STREAM_THRESHOLD_MS).astype("int64"))
    pairs = music.groupby(["listener_id", "track_uri"], sort=True, observed=True).agg(
        plays=("stream", "size"),
        streams=("stream", "sum"),
        ms_played=("ms_played", "sum"),
        first_date=("event_date", "min"),
        last_date=("event_date", "max"),
    )
    pairs = pairs.reset_index()
    pairs["weight"] = pairs["streams"] + SHORT_PLAY_WEIGHT * (pairs["plays"] - pairs["streams"])
    return pairs


def build_interactions(events: pd.DataFrame, window: DataWindow) -> pd.DataFrame:
    """The dataset frame (`DATASET_COLUMNS`) of `events` over `window`; music only."""
    in_window = events[(events["event_date"] >= window.start) & (events["event_date"] <= window.end)]
    holdout = in_window["event_date"] >= window.holdout_start
    train = _pairs(in_window[~holdout])
    if train.empty:
        raise DatasetError(f"no music plays between {window.start} and {window.holdout_start} to train on")
    test = _pairs(in_window[holdout])
    known = test["listener_id"].isin(train["listener_id"]) & test["track_uri"].isin(train["track_uri"])
    seen = pd.MultiIndex.from_frame(train[["listener_id", "track_uri"]])
    new = ~pd.MultiIndex.from_frame(test[["listener_id", "track_uri"]]).isin(seen)
    frame = pd.concat(
        [train.assign(split="train"), test[known & new].assign(split="test")], ignore_index=True
    )
    frame = frame.assign(window_start=window.start, holdout_start=window.holdout_start, window_end=window.end)
    return frame[list(DATASET_COLUMNS)].astype(DATASET_COLUMNS)


def build_training_dataset(storage: TenantStorage, config: DatasetConfig) -> pd.DataFrame:
    """Read a tenant's clean listening events and turn the configured window into a dataset frame."""
    events = load_recent_listening_events(storage, config.window_days)
    return build_interactions(events, data_window(events["event_date"], config))


def window_of(frame: pd.DataFrame) -> DataWindow:
    """The data window a dataset frame was cut from."""
    validate_dataset(frame)
    windows = frame[["window_start", "holdout_start", "window_end"]].drop_duplicates()
    if len(windows) != 1:
        raise DatasetError(f"dataset frame mixes {len(windows)} data windows; it must come from one window")
    start, holdout_start, end = windows.iloc[0]
    return DataWindow(str(start), str(holdout_start), str(end))


def validate_dataset(frame: pd.DataFrame) -> None:
    """Raise DatasetError unless `frame` is a dataset frame with training rows."""
    missing = [c for c in DATASET_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"dataset frame lacks column(s) {', '.join(missing)}")
    splits = set(frame["split"].unique())
    if not splits <= {"train", "test"}:
        raise DatasetError(f"dataset split must be train or test, found {sorted(splits - {'train', 'test'})}")
    if "train" not in splits:
        raise DatasetError("dataset frame has no train rows")


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a dataset frame (row order does not matter)."""
    validate_dataset(frame)
    ordered = frame[list(DATASET_COLUMNS)].sort_values(
        ["split", "listener_id", "track_uri"], ignore_index=True
    )
    row_hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Interactions:
    """A dataset as integer ids: the arrays training and evaluation work on."""

    listener_ids: np.ndarray  # index -> listener id (sorted)
    track_uris: np.ndarray  # index -> track uri (sorted)
    train_users: np.ndarray  # int64, one entry per train pair
    train_items: np.ndarray
    train_weights: np.ndarray  # float64, the pair's weight
    test_users: np.ndarray
    test_items: np.ndarray
    fingerprint: str
    window: DataWindow

    @property
    def num_users(self) -> int:
        return len(self.listener_ids)

    @property
    def num_items(self) -> int:
        return len(self.track_uris)


def encode(frame: pd.DataFrame) -> Interactions:
    """Give listeners and tracks dense ids (sorted order, so the same data always gets the same ids)."""
    fingerprint = dataset_fingerprint(frame)
    train = frame[frame["split"] == "train"]
    test = frame[frame["split"] == "test"]
    listener_ids = np.sort(train["listener_id"].unique().astype(object))
    track_uris = np.sort(train["track_uri"].unique().astype(object))
    unknown = ~test["listener_id"].isin(listener_ids) | ~test["track_uri"].isin(track_uris)
    if unknown.any():
        raise DatasetError(f"{int(unknown.sum())} test row(s) name a listener or track absent from training")
    return Interactions(
        listener_ids=listener_ids,
        track_uris=track_uris,
        train_users=np.searchsorted(listener_ids, train["listener_id"].to_numpy(object)).astype(np.int64),
        train_items=np.searchsorted(track_uris, train["track_uri"].to_numpy(object)).astype(np.int64),
        train_weights=train["weight"].to_numpy(np.float64),
        test_users=np.searchsorted(listener_ids, test["listener_id"].to_numpy(object)).astype(np.int64),
        test_items=np.searchsorted(track_uris, test["track_uri"].to_numpy(object)).astype(np.int64),
        fingerprint=fingerprint,
        window=window_of(frame),
    )
