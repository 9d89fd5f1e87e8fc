"""What training reports while it runs and what it hands back (plain data, no torch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Factors:
    """A trained matrix factorisation: score(user, item) = user_factors[user] . item_factors[item] + bias."""

    user_factors: np.ndarray  # (users, dim) float32
    item_factors: np.ndarray  # (items, dim) float32
    item_bias: np.ndarray  # (items,) float32

    def __post_init__(self) -> None:
        users, dim = self.user_factors.shape
        if self.item_factors.ndim != 2 or self.item_factors.shape[1] != dim:
            raise ValueError(
                f"item factors {self.item_factors.shape} do not match user factors ({users}, {dim})"
            )
        if self.item_bias.shape != (self.item_factors.shape[0],):
            raise ValueError(
                f"item bias {self.item_bias.shape} does not match {self.item_factors.shape[0]} items"
            )

    @property
    def dim(self) -> int:
        return self.user_factors.shape[1]


@dataclass(frozen=True)
class TrainingProgress:
    """One event of a training run: `epoch` (an epoch ended), `checkpoint` (state saved) or `resumed`."""

    event: str
    epoch: int  # epochs completed
    epochs: int
    batch: int  # batches completed in the current epoch (0 at an epoch end)
    batches_per_epoch: int
    device: str
    loss: float | None = None  # mean training loss of the epoch that ended
    samples_per_s: float | None = None  # positives trained per second in that epoch

    @property
    def position(self) -> int:
        """Batches completed since the start of training."""
        return self.epoch * self.batches_per_epoch + self.batch

    def describe(self) -> str:
        where = f"epoch {self.epoch}/{self.epochs}" + (f" batch {self.batch}" if self.batch else "")
        if self.event == "epoch":
            return f"{where}: loss {self.loss:.4f}, {self.samples_per_s:,.0f} samples/s on {self.device}"
        return f"{self.event} at {where}"


ProgressCallback = Callable[[TrainingProgress], None]


@dataclass(frozen=True)
class TrainingRun:
    """What one call of the trainer produced."""

    factors: Factors
    losses: list[float]  # mean loss per epoch, from epoch 1 (including epochs trained before a resume)
    epochs: int
    samples: int  # positives trained by this process
    seconds: float  # wall time of this process's training loop, checkpoints included
    device: str
    threads: int
    resumed_from: tuple[int, int] | None = None  # (epoch, batch) of the checkpoint this run resumed

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0
