"""Protects the model registry: immutable versions, exact round trips, promotion only past the baseline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spotify_jobs.training.config import MODEL_CODE_VERSION
from spotify_jobs.training.evaluation import Evaluation, RankingMetrics, evaluate
from spotify_jobs.training.pipeline import model_version, train_and_publish, train_model
from spotify_jobs.training.registry import ModelRegistry, RegistryError

from .tenant_data import FAST


@pytest.fixture(scope="module")
def trained(interactions):
    run = train_model(interactions, FAST, None)
    return run, model_version(interactions, FAST, run)


def test_a_loaded_version_reproduces_its_recommendations(storage, trained, interactions):
    _, version = trained
    registry = ModelRegistry(storage)
    version_id = registry.publish(version, b"\x89PNG fake")
    loaded = registry.load(version_id)

    before, after = version.recommend(10), loaded.recommend(10)
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == interactions.num_users * 10
    assert after.groupby("listener_id")["rank"].apply(list).map(lambda r: r == list(range(1, 11))).all()
    played = set(
        zip(
            interactions.listener_ids[interactions.train_users],
            interactions.track_uris[interactions.train_items],
            strict=True,
        )
    )
    assert not any((r.listener_id, r.track_uri) in played for r in after.itertuples())
    np.testing.assert_array_equal(loaded.factors.item_factors, version.factors.item_factors)


def test_a_version_records_what_it_came_from(storage, trained, interactions):
    registry = ModelRegistry(storage)
    version_id = registry.publish(trained[1])
    manifest = registry.manifest(version_id)
    assert manifest["version"] == version_id
    assert manifest["code_version"].startswith(MODEL_CODE_VERSION + "+spotify_jobs-")
    assert manifest["config"] == FAST.to_dict()
    assert manifest["data_window"] == interactions.window.to_dict()
    assert manifest["dataset_fingerprint"] == interactions.fingerprint
    assert manifest["training"]["losses"] == trained[0].losses
    assert registry.versions() == [version_id]
    assert registry.candidate() == version_id
    assert registry.latest() is None


def test_versions_are_immutable_and_latest_moves_only_past_the_baseline(storage, trained, interactions):
    registry = ModelRegistry(storage)
    first = registry.publish(trained[1])
    with pytest.raises(RegistryError, match="has not been evaluated"):
        registry.promote(first)

    evaluation = evaluate(trained[0].factors, interactions)
    assert evaluation.beats_baseline
    registry.record_evaluation(first, evaluation)
    registry.record_evaluation(first, evaluation)  # the same evaluation again is a no-op
    worse = dataclasses.replace(evaluation, model=RankingMetrics(0.0, 0.0))
    with pytest.raises(RegistryError, match="already has a different evaluation"):
        registry.record_evaluation(first, worse)
    assert registry.promote(first) is None
    assert registry.latest() == first

    # a second version that loses to popularity is published (the candidate) but never becomes latest
    weak = dataclasses.replace(trained[1], manifest={**trained[1].manifest, "dataset_fingerprint": "weak"})
    second = registry.publish(weak)
    assert registry.candidate() == second and registry.versions() == sorted([first, second])
    registry.record_evaluation(second, worse)
    with pytest.raises(RegistryError, match="do not beat popularity"):
        registry.promote(second)
    assert registry.latest() == first
    assert registry.evaluation(first) == evaluation


def test_unknown_or_malformed_versions_are_refused(storage):
    registry = ModelRegistry(storage)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.load("20260101T000000Z-0123456789ab")
    with pytest.raises(RegistryError, match="is not a model version id"):
        registry.load("../../other-tenant")
    with pytest.raises(RegistryError, match="it does not exist"):
        registry.record_evaluation(
            "20260101T000000Z-0123456789ab", Evaluation(10, 1, 1, RankingMetrics(1, 1), RankingMetrics(0, 0))
        )


def test_train_and_publish_removes_the_checkpoint_once_the_version_is_stored(storage, dataset_frame):
    published = train_and_publish(storage, dataset_frame, FAST)
    registry = ModelRegistry(storage)
    assert registry.candidate() == published.version
    assert Path(registry.uri(published.version, "loss_curve.png")).read_bytes() == published.loss_curve_png
    assert not list(storage.list("models/recommendation/checkpoints"))
    assert published.run.resumed_from is None and published.data.num_users == 150
