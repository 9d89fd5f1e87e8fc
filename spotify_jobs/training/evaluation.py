"""Hold-out evaluation: recall@K and NDCG@K of the model against the popularity baseline, and plots."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np

from spotify_jobs.training.dataset import Interactions
from spotify_jobs.training.progress import Factors
from spotify_jobs.training.scoring import SeenItems, popularity_top_k, top_k

EVAL_K = 10


class EvaluationError(ValueError):
    """A hold-out that cannot judge a model (for example: no test pairs)."""


@dataclass(frozen=True)
class RankingMetrics:
    recall: float  # hits / min(k, relevant items), averaged over test users
    ndcg: float  # binary-relevance NDCG, averaged over test users


@dataclass(frozen=True)
class Evaluation:
    """Model and baseline on the same hold-out users, each recommending its top `k` unseen tracks."""

    k: int
    users: int
    test_pairs: int
    model: RankingMetrics
    popularity: RankingMetrics

    @property
    def beats_baseline(self) -> bool:
        """True when the model ranks the hold-out better than popularity on both recall and NDCG."""
        return self.model.recall > self.popularity.recall and self.model.ndcg > self.popularity.ndcg

    def to_dict(self) -> dict:
        return {**asdict(self), "beats_baseline": self.beats_baseline}

    @classmethod
    def from_dict(cls, values: dict) -> Evaluation:
        return cls(
            k=int(values["k"]),
            users=int(values["users"]),
            test_pairs=int(values["test_pairs"]),
            model=RankingMetrics(**values["model"]),
            popularity=RankingMetrics(**values["popularity"]),
        )


def ranking_metrics(recommended: np.ndarray, relevant: SeenItems, users: np.ndarray) -> RankingMetrics:
    """Mean recall@k and NDCG@k of `recommended` (len(users), k) against each user's `relevant` items."""
    k = recommended.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = np.zeros(len(users)), np.zeros(len(users))
    for row, user in enumerate(users):
        truth = relevant.of(user)
        hits = np.isin(recommended[row], truth)
        ideal = min(k, len(truth))
        recalls[row] = hits.sum() / ideal
        ndcgs[row] = (hits * discounts).sum() / discounts[:ideal].sum()
    return RankingMetrics(recall=float(recalls.mean()), ndcg=float(ndcgs.mean()))


def item_popularity(data: Interactions) -> np.ndarray:
    """How many listeners played each track during training (the baseline's ranking)."""
    return np.bincount(data.train_items, minlength=data.num_items).astype(np.float64)


def evaluate(factors: Factors, data: Interactions, k: int = EVAL_K) -> Evaluation:
    """Rank unseen tracks for every hold-out listener with the model and with popularity; score both."""
    if len(data.test_users) == 0:
        raise EvaluationError(
            f"the hold-out {data.window.holdout_start}..{data.window.end} has no test pairs (known listeners "
            "playing known tracks new to them); widen holdout_days or wait for more data"
        )
    if factors.user_factors.shape[0] != data.num_users or factors.item_factors.shape[0] != data.num_items:
        raise EvaluationError(
            f"model has {factors.user_factors.shape[0]} listeners x {factors.item_factors.shape[0]} tracks, "
            f"dataset {data.num_users} x {data.num_items}: they come from different data"
        )
    seen = SeenItems(data.train_users, data.train_items, data.num_users)
    relevant = SeenItems(data.test_users, data.test_items, data.num_users)
    users = np.unique(data.test_users)
    model_items, _ = top_k(factors, users, seen, k)
    baseline_items = popularity_top_k(item_popularity(data), users, seen, k)
    return Evaluation(
        k=k,
        users=len(users),
        test_pairs=len(data.test_users),
        model=ranking_metrics(model_items, relevant, users),
        popularity=ranking_metrics(baseline_items, relevant, users),
    )


def loss_curve_png(losses: list[float], title: str = "training loss") -> bytes:
    """A PNG of the mean training loss per epoch (matplotlib's Agg canvas, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, marker="o")
    axes.set_xlabel("epoch")
    axes.set_ylabel("BPR loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
