"""Protects the training dataset: music-only implicit feedback, the time split and its hold-out rules."""

from __future__ import annotations

import pandas as pd
import pytest

from spotify_jobs.etl.schema import LISTENING_EVENT_COLUMNS, output_key
from spotify_jobs.training.config import DatasetConfig, TrainingConfigError
from spotify_jobs.training.dataset import (
    DATASET_COLUMNS,
    SHORT_PLAY_WEIGHT,
    DatasetError,
    build_interactions,
    build_training_dataset,
    data_window,
    dataset_fingerprint,
    encode,
    listening_event_dates,
    load_recent_listening_events,
    window_of,
)


def _event(listener: str, track: str | None, day: str, ms: int = 200_000, content: str = "music", second=0):
    uri = track or f"spotify:episode:{listener}{day}"
    return {
        "listener_id": listener,
        "ts": pd.Timestamp(f"{day}T12:00:{second:02d}Z"),
        "event_date": day,
        "content_type": content,
        "content_uri": uri,
        "track_uri": track,
        "ms_played": ms,
    }


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({k: LISTENING_EVENT_COLUMNS[k] for k in rows[0]})


@pytest.fixture
def small_events() -> pd.DataFrame:
    return _frame(
        [
            _event("a", "t1", "2026-03-01"),
            _event("a", "t1", "2026-03-02", second=1),
            _event("a", "t1", "2026-03-02", ms=5_000, second=2),  # a skip: a play, not a stream
            _event("a", "t2", "2026-03-02", second=3),
            _event("b", "t2", "2026-03-01"),
            _event("b", None, "2026-03-02", content="podcast"),
            _event("a", "t2", "2026-03-03"),  # hold-out, but a already played t2: not a discovery
            _event("b", "t1", "2026-03-03"),  # hold-out discovery: known listener, known track
            _event("c", "t1", "2026-03-03"),  # hold-out, unknown listener
            _event("b", "t9", "2026-03-03"),  # hold-out, unknown track
        ]
    )


def test_build_interactions_aggregates_music_plays_and_splits_in_time(small_events):
    window = data_window(small_events["event_date"], DatasetConfig(window_days=30, holdout_days=1))
    assert window.to_dict() == {"start": "2026-03-01", "holdout_start": "2026-03-03", "end": "2026-03-03"}
    frame = build_interactions(small_events, window)
    assert list(frame.columns) == list(DATASET_COLUMNS)
    rows = {(r.split, r.listener_id, r.track_uri): r for r in frame.itertuples()}
    assert set(rows) == {
        ("train", "a", "t1"),
        ("train", "a", "t2"),
        ("train", "b", "t2"),
        ("test", "b", "t1"),
    }
    a_t1 = rows[("train", "a", "t1")]
    assert (a_t1.plays, a_t1.streams, a_t1.first_date, a_t1.last_date) == (3, 2, "2026-03-01", "2026-03-02")
    assert a_t1.weight == 2 + SHORT_PLAY_WEIGHT
    assert window_of(frame) == window


def test_window_counts_back_from_the_newest_event(small_events):
    window = data_window(small_events["event_date"], DatasetConfig(window_days=2, holdout_days=1))
    assert window.to_dict() == {"start": "2026-03-02", "holdout_start": "2026-03-03", "end": "2026-03-03"}
    frame = build_interactions(small_events, window)
    assert frame.loc[frame["split"] == "train", "first_date"].min() == "2026-03-02"


def test_a_window_without_training_days_is_refused(small_events):
    with pytest.raises(DatasetError, match="nothing is left to train on"):
        data_window(small_events["event_date"], DatasetConfig(window_days=30, holdout_days=3))
    with pytest.raises(TrainingConfigError, match="holdout_days"):
        DatasetConfig(window_days=3, holdout_days=3)
    with pytest.raises(TrainingConfigError, match="window_days must be a positive number"):
        DatasetConfig(window_days=0)


def test_build_training_dataset_reads_recent_partitions_and_drops_repeated_streams(storage, small_events):
    # an export landing on 03-03 repeats 03-02's streams; a partition from long ago is outside the window
    storage.write_parquet(
        small_events[small_events["event_date"] <= "2026-03-02"], output_key("listening_events", "2026-03-02")
    )
    storage.write_parquet(
        small_events[small_events["event_date"] >= "2026-03-02"], output_key("listening_events", "2026-03-03")
    )
    ancient = _frame([_event("z", "t7", "2025-01-01")])
    storage.write_parquet(ancient, output_key("listening_events", "2025-01-01"))
    assert listening_event_dates(storage) == ["2025-01-01", "2026-03-02", "2026-03-03"]

    events = load_recent_listening_events(storage, window_days=30)
    assert len(events) == len(small_events)
    assert "z" not in set(events["listener_id"])
    frame = build_training_dataset(storage, DatasetConfig(window_days=30, holdout_days=1))
    assert frame.equals(build_interactions(small_events, window_of(frame)))


def test_build_training_dataset_errors_name_the_problem(storage):
    with pytest.raises(DatasetError, match="materialise listening_events"):
        build_training_dataset(storage, DatasetConfig())
    storage.write_parquet(pd.DataFrame({"listener_id": ["a"]}), output_key("listening_events", "2026-03-01"))
    with pytest.raises(DatasetError, match=r"2026-03-01 lack column\(s\) ts, event_date"):
        build_training_dataset(storage, DatasetConfig())


def test_encode_gives_stable_dense_ids(dataset_frame):
    data = encode(dataset_frame)
    shuffled = encode(dataset_frame.sample(frac=1.0, random_state=3))
    assert list(data.listener_ids) == sorted(data.listener_ids)
    assert data.fingerprint == shuffled.fingerprint
    train = dataset_frame[dataset_frame["split"] == "train"]
    assert len(data.train_users) == len(train)
    assert (data.listener_ids[data.train_users] == train["listener_id"].to_numpy(object)).all()
    assert (
        data.track_uris[data.test_items]
        == dataset_frame.loc[dataset_frame["split"] == "test", "track_uri"].to_numpy(object)
    ).all()


def test_fingerprint_changes_with_the_data(dataset_frame):
    changed = dataset_frame.copy()
    changed.loc[0, "plays"] += 1
    assert dataset_fingerprint(changed) != dataset_fingerprint(dataset_frame)


def test_encode_rejects_frames_that_are_not_datasets(dataset_frame):
    with pytest.raises(DatasetError, match="lacks column"):
        encode(dataset_frame.drop(columns=["weight"]))
    with pytest.raises(DatasetError, match="no train rows"):
        encode(dataset_frame[dataset_frame["split"] == "test"])
    odd = dataset_frame.copy()
    odd.loc[0, "split"] = "validation"
    with pytest.raises(DatasetError, match="validation"):
        encode(odd)
