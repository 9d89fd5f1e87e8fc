"""Matrix factorisation trained with BPR on shared negatives; torch is imported here, so import lazily.

Each batch of positives (listener, track) is ranked against `negatives` tracks sampled for the whole batch:
one (batch x negatives) matmul instead of a gather per pair, which is what bf16 autocast speeds up on a
GPU. Embeddings are sparse (`nn.Embedding(sparse=True)` + `SparseAdam`): a step touches only the rows of
its batch, so cost follows the batch, not the catalogue.

Randomness comes from one generator per epoch seeded from (seed, epoch); its state is saved in every
checkpoint, so a resumed run draws the same batches and negatives as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from spotify_jobs.training.checkpoints import CheckpointStore
from spotify_jobs.training.config import TrainingConfig
from spotify_jobs.training.dataset import Interactions
from spotify_jobs.training.progress import Factors, ProgressCallback, TrainingProgress, TrainingRun
from spotify_jobs.training.runtime import configure_torch_threads, select_device

CHECKPOINT_FORMAT = 1


class CheckpointMismatch(RuntimeError):
    """A checkpoint that belongs to other data or other hyper-parameters."""


class MatrixFactorization(nn.Module):
    """Listener and track embeddings plus a track bias; score = <user, track> + bias(track)."""

    def __init__(self, num_users: int, num_items: int, dim: int, init_std: float, generator: torch.Generator):
        super().__init__()
        self.user_factors = nn.Embedding(num_users, dim, sparse=True)
        self.item_factors = nn.Embedding(num_items, dim, sparse=True)
        self.item_bias = nn.Embedding(num_items, 1, sparse=True)
        with torch.no_grad():
            self.user_factors.weight.normal_(0.0, init_std, generator=generator)
            self.item_factors.weight.normal_(0.0, init_std, generator=generator)
            self.item_bias.weight.zero_()

    def bpr_loss(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        negatives: torch.Tensor,
        weights: torch.Tensor,
        l2: float,
    ) -> torch.Tensor:
        """Weighted BPR loss of each positive against every shared negative, plus L2 on the rows used."""
        user = self.user_factors(users)
        pos = self.item_factors(items)
        neg = self.item_factors(negatives)
        pos_scores = (user * pos).sum(-1) + self.item_bias(items).squeeze(-1)
        neg_scores = (user @ neg.T).float() + self.item_bias(negatives).squeeze(-1)
        # a sampled "negative" that is the positive itself is no evidence either way
        valid = (negatives[None, :] != items[:, None]).float()
        pair_loss = F.softplus(neg_scores - pos_scores.float()[:, None]) * valid
        per_positive = pair_loss.sum(1) / valid.sum(1).clamp(min=1.0)
        penalty = user.float().pow(2).sum() + pos.float().pow(2).sum() + neg.float().pow(2).sum()
        return (per_positive * weights).mean() + l2 * penalty / users.shape[0]

    def factors(self) -> Factors:
        return Factors(
            user_factors=self.user_factors.weight.detach().float().cpu().numpy().copy(),
            item_factors=self.item_factors.weight.detach().float().cpu().numpy().copy(),
            item_bias=self.item_bias.weight.detach().float().cpu().numpy()[:, 0].copy(),
        )


def sample_weights(weights: np.ndarray) -> np.ndarray:
    """Per-positive loss weights: log-damped so heavy repeat listening does not drown everything, mean 1."""
    damped = np.log1p(weights)
    return (damped / damped.mean()).astype(np.float32)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def _epoch_generator(config: TrainingConfig, epoch: int, device: str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(epoch_seed(config.seed, epoch))


def _autocast(device: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU (the negatives matmul runs in bf16); plain fp32 on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def _checkpoint_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _load_checkpoint(checkpoints: CheckpointStore, data: Interactions, config: TrainingConfig) -> dict | None:
    raw = checkpoints.read()
    if raw is None:
        return None
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    expected = {"format": CHECKPOINT_FORMAT, "dataset": data.fingerprint, "config": config.fingerprint()}
    found = {key: state.get(key) for key in expected}
    if found != expected:
        raise CheckpointMismatch(f"checkpoint {checkpoints.uri} is for {found}, this run is {expected}")
    return state


def train(
    data: Interactions,
    config: TrainingConfig,
    *,
    checkpoints: CheckpointStore | None = None,
    on_progress: ProgressCallback | None = None,
    device: str | None = None,
) -> TrainingRun:
    """Train a model on `data`'s train pairs; resume from `checkpoints` when it holds this run's state."""
    device = select_device(device)
    threads = configure_torch_threads(work_items=config.batch_size * max(config.negatives, config.dim))
    n = len(data.train_users)
    batches = -(-n // config.batch_size)
    report = on_progress or (lambda _progress: None)

    init = torch.Generator().manual_seed(config.seed)
    model = MatrixFactorization(data.num_users, data.num_items, config.dim, config.init_std, init).to(device)
    optimizer = torch.optim.SparseAdam(model.parameters(), lr=config.learning_rate)
    users = torch.as_tensor(data.train_users, device=device)
    items = torch.as_tensor(data.train_items, device=device)
    weights = torch.as_tensor(sample_weights(data.train_weights), device=device)

    losses: list[float] = []
    start_epoch, start_batch, partial_loss = 0, 0, 0.0
    state = _load_checkpoint(checkpoints, data, config) if checkpoints else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        losses = list(state["losses"])
        start_epoch, start_batch, partial_loss = state["epoch"], state["batch"], state["partial_loss"]
        report(TrainingProgress("resumed", start_epoch, config.epochs, start_batch, batches, device))
    resumed_from = (start_epoch, start_batch) if state is not None else None

    def save(epoch: int, batch: int, generator: torch.Generator, loss_sum: float) -> None:
        if checkpoints is None:
            return
        checkpoints.write(
            _checkpoint_bytes(
                {
                    "format": CHECKPOINT_FORMAT,
                    "dataset": data.fingerprint,
                    "config": config.fingerprint(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "losses": losses,
                    "epoch": epoch,
                    "batch": batch,
                    "partial_loss": loss_sum,
                    "generator": generator.get_state(),
                }
            )
        )
        report(TrainingProgress("checkpoint", epoch, config.epochs, batch, batches, device))

    samples, loop_start = 0, time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        generator = _epoch_generator(config, epoch, device)
        order = torch.randperm(n, generator=generator, device=device)
        first = start_batch if epoch == start_epoch else 0
        if first:
            generator.set_state(state["generator"])
        loss_sum = torch.tensor(partial_loss if first else 0.0, dtype=torch.float64, device=device)
        for batch in range(first, batches):
            rows = order[batch * config.batch_size : (batch + 1) * config.batch_size]
            negatives = torch.randint(data.num_items, (config.negatives,), generator=generator, device=device)
            with _autocast(device):
                loss = model.bpr_loss(users[rows], items[rows], negatives, weights[rows], config.l2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            every = config.checkpoint_every_batches
            if every and (batch + 1) % every == 0 and batch + 1 < batches:
                save(epoch, batch + 1, generator, float(loss_sum))
        epoch_samples = n - first * config.batch_size
        samples += epoch_samples
        losses.append(float(loss_sum) / batches)
        save(epoch + 1, 0, generator, 0.0)
        seconds = time.perf_counter() - epoch_start
        report(
            TrainingProgress(
                "epoch", epoch + 1, config.epochs, 0, batches, device, losses[-1], epoch_samples / seconds
            )
        )
    return TrainingRun(
        factors=model.factors(),
        losses=losses,
        epochs=config.epochs,
        samples=samples,
        seconds=time.perf_counter() - loop_start,
        device=device,
        threads=threads,
        resumed_from=resumed_from,
    )
