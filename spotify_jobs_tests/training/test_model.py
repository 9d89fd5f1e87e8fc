"""Protects model quality and reproducibility: beats popularity, same seed same weights, correct metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spotify_jobs.training.config import TrainingConfig, TrainingConfigError
from spotify_jobs.training.evaluation import EvaluationError, evaluate, loss_curve_png, ranking_metrics
from spotify_jobs.training.pipeline import train_model
from spotify_jobs.training.progress import Factors
from spotify_jobs.training.scoring import SeenItems, popularity_top_k, top_k

from .tenant_data import FAST


@pytest.fixture(scope="module")
def trained(interactions):
    events = []
    return train_model(interactions, FAST, None, on_progress=events.append), events


def test_model_beats_popularity_on_the_holdout(trained, interactions):
    run, _ = trained
    evaluation = evaluate(run.factors, interactions)
    assert evaluation.users > 100
    assert evaluation.model.recall > 1.5 * evaluation.popularity.recall
    assert evaluation.model.ndcg > evaluation.popularity.ndcg
    assert evaluation.beats_baseline


def test_training_reports_each_epoch_and_the_loss_falls(trained, interactions):
    run, events = trained
    epochs = [e for e in events if e.event == "epoch"]
    assert [e.epoch for e in epochs] == list(range(1, FAST.epochs + 1))
    assert all(e.samples_per_s > 0 and e.device == "cpu" for e in epochs)
    assert [e.loss for e in epochs] == run.losses
    assert run.losses[-1] < 0.5 * run.losses[0]
    assert "loss" in epochs[-1].describe() and "samples/s" in epochs[-1].describe()
    assert run.samples == FAST.epochs * len(interactions.train_users)
    assert run.resumed_from is None


def test_same_seed_same_weights_other_seed_other_weights(trained, interactions):
    run, _ = trained
    again = train_model(interactions, FAST, None)
    np.testing.assert_array_equal(again.factors.user_factors, run.factors.user_factors)
    np.testing.assert_array_equal(again.factors.item_factors, run.factors.item_factors)
    np.testing.assert_array_equal(again.factors.item_bias, run.factors.item_bias)
    assert again.losses == run.losses
    other = train_model(interactions, dataclasses.replace(FAST, seed=7), None)
    assert not np.array_equal(other.factors.user_factors, run.factors.user_factors)


def test_untrained_model_does_not_beat_popularity(interactions):
    run = train_model(interactions, dataclasses.replace(FAST, epochs=1, learning_rate=1e-6), None)
    assert not evaluate(run.factors, interactions).beats_baseline


def test_ranking_metrics_by_hand():
    # user 0 wants {1, 2}; user 1 wants {3}
    relevant = SeenItems(np.array([0, 0, 1]), np.array([1, 2, 3]), num_users=2)
    recommended = np.array([[1, 5, 2], [4, 6, 7]])
    metrics = ranking_metrics(recommended, relevant, np.array([0, 1]))
    idcg = 1 + 1 / np.log2(3)
    assert metrics.recall == pytest.approx((1.0 + 0.0) / 2)
    assert metrics.ndcg == pytest.approx(((1 + 1 / np.log2(4)) / idcg + 0.0) / 2)


def test_top_k_never_recommends_what_was_played():
    factors = Factors(
        user_factors=np.array([[1.0], [-1.0]], dtype=np.float32),
        item_factors=np.array([[3.0], [2.0], [1.0], [0.0]], dtype=np.float32),
        item_bias=np.zeros(4, dtype=np.float32),
    )
    seen = SeenItems(np.array([0, 1]), np.array([0, 3]), num_users=2)
    items, scores = top_k(factors, np.array([0, 1]), seen, k=2)
    assert items.tolist() == [[1, 2], [2, 1]]
    assert scores.tolist() == [[2.0, 1.0], [-1.0, -2.0]]
    popular = popularity_top_k(np.array([9.0, 1.0, 5.0, 7.0]), np.array([0, 1]), seen, k=2)
    assert popular.tolist() == [[3, 2], [0, 2]]


def test_evaluate_refuses_an_empty_holdout_or_mismatched_model(interactions, trained):
    empty = dataclasses.replace(
        interactions, test_users=interactions.test_users[:0], test_items=interactions.test_items[:0]
    )
    with pytest.raises(EvaluationError, match="no test pairs"):
        evaluate(trained[0].factors, empty)
    small = Factors(np.zeros((3, 2), np.float32), np.zeros((4, 2), np.float32), np.zeros(4, np.float32))
    with pytest.raises(EvaluationError, match="different data"):
        evaluate(small, interactions)


def test_loss_curve_is_a_png():
    png = loss_curve_png([0.7, 0.5, 0.3])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dim": 0}, "dim must be a positive"),
        ({"epochs": -1}, "epochs"),
        ({"l2": -0.1}, "l2 must be >= 0"),
        ({"batch_size": True}, "batch_size"),
    ],
)
def test_bad_hyper_parameters_are_named(change, message):
    with pytest.raises(TrainingConfigError, match=message):
        TrainingConfig(**change)
    with pytest.raises(TrainingConfigError, match="unknown training parameters: depth"):
        TrainingConfig.from_dict({"depth": 3})
