"""A training process for the kill-and-resume test: trains one tenant, one JSON line per progress event.

Usage: python -m spotify_jobs_tests.training.training_worker DATA_ROOT TENANT CONFIG_JSON
"""

from __future__ import annotations

import dataclasses
import json
import sys

from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.config import DatasetConfig, TrainingConfig
from spotify_jobs.training.dataset import build_training_dataset, encode
from spotify_jobs.training.pipeline import train_model


def main(data_root: str, tenant: str, config_json: str) -> None:
    storage = TenantStorage(LocalObjectStore(data_root), tenant)
    data = encode(build_training_dataset(storage, DatasetConfig()))
    config = TrainingConfig.from_dict(json.loads(config_json))

    def report(progress) -> None:
        print(json.dumps(dataclasses.asdict(progress)), flush=True)

    run = train_model(data, config, storage, on_progress=report)
    print(json.dumps({"event": "done", "epochs": run.epochs}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
