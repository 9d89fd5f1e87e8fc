"""Protects preemption safety: a training process killed mid-epoch resumes from its last checkpoint."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spotify_jobs.training.checkpoints import CheckpointStore, checkpoint_run_key
from spotify_jobs.training.config import DatasetConfig
from spotify_jobs.training.dataset import build_training_dataset, encode
from spotify_jobs.training.evaluation import evaluate
from spotify_jobs.training.pipeline import train_model
from spotify_jobs.training.trainer import CheckpointMismatch

from .tenant_data import FAST, TENANT

REPO = Path(__file__).resolve().parents[2]
# 35 batches per epoch on the fixture data; a checkpoint every 8 batches and at every epoch end
KILL_CONFIG = dataclasses.replace(FAST, batch_size=64, checkpoint_every_batches=8)


def _checkpoint_position(store: CheckpointStore) -> tuple[int, int]:
    import torch

    state = torch.load(io.BytesIO(store.read()), map_location="cpu", weights_only=True)
    return state["epoch"], state["batch"]


def test_killed_training_resumes_and_ends_like_an_uninterrupted_run(tenant_events, settings):
    data = encode(build_training_dataset(tenant_events, DatasetConfig()))
    store = CheckpointStore(tenant_events, checkpoint_run_key(data.fingerprint, KILL_CONFIG))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spotify_jobs_tests.training.training_worker",
            settings.data_root,
            TENANT,
            json.dumps(KILL_CONFIG.to_dict()),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = None
    try:
        for line in worker.stdout:
            event = json.loads(line)
            assert event["event"] != "done", "training finished before it could be killed"
            # the first checkpoint written in the middle of an epoch after the first one: kill now
            if event["event"] == "checkpoint" and event["epoch"] >= 1 and event["batch"] > 0:
                seen = event
                os.kill(worker.pid, signal.SIGKILL)
                break
    finally:
        worker.kill()
        _, stderr = worker.communicate()
    assert seen is not None, f"the worker reported no mid-epoch checkpoint; stderr:\n{stderr}"
    assert worker.returncode == -signal.SIGKILL

    # storage holds the state the worker reported (or a later one): at most one checkpoint interval lost
    assert store.exists()
    position = _checkpoint_position(store)
    assert position >= (seen["epoch"], seen["batch"])
    batches = seen["batches_per_epoch"]
    assert KILL_CONFIG.checkpoint_every_batches < batches

    events = []
    resumed = train_model(data, KILL_CONFIG, tenant_events, on_progress=events.append)
    assert resumed.resumed_from == position
    assert events[0].event == "resumed" and (events[0].epoch, events[0].batch) == position
    done_before = position[0] * len(data.train_users) + position[1] * KILL_CONFIG.batch_size
    assert resumed.samples == KILL_CONFIG.epochs * len(data.train_users) - done_before
    assert [e.epoch for e in events if e.event == "epoch"] == list(
        range(position[0] + 1, KILL_CONFIG.epochs + 1)
    )

    # the same batches and negatives are drawn after a resume: the result is the uninterrupted run's
    uninterrupted = train_model(data, KILL_CONFIG, None)
    assert resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-6)
    np.testing.assert_allclose(
        resumed.factors.item_factors, uninterrupted.factors.item_factors, rtol=1e-5, atol=1e-6
    )
    quality, reference = evaluate(resumed.factors, data), evaluate(uninterrupted.factors, data)
    assert quality.model.recall == pytest.approx(reference.model.recall, abs=0.01)
    assert quality.beats_baseline


def test_a_finished_checkpoint_is_not_trained_again(interactions, storage):
    first = train_model(interactions, FAST, storage)
    again = train_model(interactions, FAST, storage)
    assert again.resumed_from == (FAST.epochs, 0)
    assert again.samples == 0
    np.testing.assert_array_equal(again.factors.user_factors, first.factors.user_factors)
    assert again.losses == first.losses


def test_a_checkpoint_of_other_data_is_refused(interactions, storage):
    train_model(interactions, FAST, storage)
    source = CheckpointStore(storage, checkpoint_run_key(interactions.fingerprint, FAST))
    other = dataclasses.replace(interactions, fingerprint="0" * 16)
    CheckpointStore(storage, checkpoint_run_key(other.fingerprint, FAST)).write(source.read())
    with pytest.raises(CheckpointMismatch, match="is for"):
        train_model(other, FAST, storage)
