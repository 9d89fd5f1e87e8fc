"""Hyper-parameters of the training pipeline: what data a model sees and how it is trained."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

MODEL_FAMILY = "mf-bpr"
MODEL_CODE_VERSION = "mf-bpr-1"  # bump when a change to training or scoring changes what a version means


class TrainingConfigError(ValueError):
    """A hyper-parameter the pipeline cannot run with; the message names it."""


def _require_positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise TrainingConfigError(
                f"{type(owner).__name__}.{name} must be a positive number, got {value!r}"
            )


@dataclass(frozen=True)
class DatasetConfig:
    """Which days of listening events a model learns from and which it is tested on."""

    window_days: int = 90  # days of events, counted back from the newest date on record
    holdout_days: int = 2  # the newest days of the window are the test set

    def __post_init__(self) -> None:
        _require_positive(self, "window_days", "holdout_days")
        if self.holdout_days >= self.window_days:
            raise TrainingConfigError(
                f"DatasetConfig.holdout_days ({self.holdout_days}) must be smaller than window_days "
                f"({self.window_days}): some days must be left to train on"
            )


@dataclass(frozen=True)
class TrainingConfig:
    """Matrix factorisation trained with a BPR loss over negatives shared by each batch."""

    dim: int = 32
    epochs: int = 12
    batch_size: int = 1024
    negatives: int = 64  # items sampled per batch; every positive of the batch is ranked against all of them
    learning_rate: float = 0.02
    l2: float = 1e-4
    init_std: float = 0.1
    seed: int = 0
    checkpoint_every_batches: int = 200  # also checkpoint every N batches within an epoch; 0: epoch ends only

    def __post_init__(self) -> None:
        _require_positive(self, "dim", "epochs", "batch_size", "negatives", "learning_rate", "init_std")
        for name in ("l2", "seed", "checkpoint_every_batches"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise TrainingConfigError(f"TrainingConfig.{name} must be >= 0, got {value!r}")

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingConfigError(f"unknown training parameters: {', '.join(unknown)}")
        return cls(**values)

    def fingerprint(self) -> str:
        """Hash of every parameter that changes the trained weights (checkpoint interval does not)."""
        values = {k: v for k, v in self.to_dict().items() if k != "checkpoint_every_batches"}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
