"""Ranking with a trained model or the popularity baseline, excluding what a listener already played."""

from __future__ import annotations

import numpy as np

from spotify_jobs.training.progress import Factors

_SCORE_CELLS_PER_CHUNK = 4_000_000  # users x items scored at once (16 MB of float32)


class SeenItems:
    """Per-user sets of already played items, as sorted CSR arrays."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_users: int):
        order = np.lexsort((items, users))
        self.items = np.asarray(items)[order]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(np.asarray(users), minlength=num_users))])

    def of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def mask(self, users: np.ndarray, scores: np.ndarray) -> None:
        """Set the score of every seen (user, item) in the (len(users), items) `scores` to -inf, in place."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(users)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        scores[rows, self.items[np.repeat(starts, counts) + offsets]] = -np.inf


def _top_k_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, scores.shape[1])
    # ties break towards the lower item index so rankings are reproducible
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def _chunks(users: np.ndarray, num_items: int):
    size = max(1, _SCORE_CELLS_PER_CHUNK // max(num_items, 1))
    for start in range(0, len(users), size):
        yield users[start : start + size]


def top_k(factors: Factors, users: np.ndarray, seen: SeenItems, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores), each (len(users), k): every user's best unseen items; -inf scores pad short lists."""
    parts = []
    for chunk in _chunks(users, factors.item_factors.shape[0]):
        scores = factors.user_factors[chunk] @ factors.item_factors.T + factors.item_bias[None, :]
        seen.mask(chunk, scores)
        parts.append(_top_k_of(scores, k))
    return _concat(parts, k)


def popularity_top_k(popularity: np.ndarray, users: np.ndarray, seen: SeenItems, k: int) -> np.ndarray:
    """Each user's `k` most popular unseen items."""
    parts = []
    for chunk in _chunks(users, len(popularity)):
        scores = np.repeat(popularity[None, :].astype(np.float64), len(chunk), axis=0)
        seen.mask(chunk, scores)
        parts.append(_top_k_of(scores, k))
    return _concat(parts, k)[0]


def _concat(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
