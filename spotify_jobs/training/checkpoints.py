"""Where training checkpoints live in tenant storage, so a preempted or retried step resumes its work.

A checkpoint belongs to one (dataset, hyper-parameters) pair: any run that trains the same data with the
same parameters picks it up, whichever Dagster run or retry it is. Writes replace the object whole (atomic
rename locally, a single PUT on S3), so a kill never leaves half a checkpoint behind.
"""

from __future__ import annotations

from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.config import TrainingConfig

CHECKPOINTS_PREFIX = "models/recommendation/checkpoints"
CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_run_key(dataset_fingerprint: str, config: TrainingConfig) -> str:
    """The key of the training run that `dataset_fingerprint` and `config` define."""
    return f"{dataset_fingerprint}-{config.fingerprint()}"


class CheckpointStore:
    """The one checkpoint of one training run, in the tenant's storage."""

    def __init__(self, storage: TenantStorage, run_key: str):
        self.storage = storage
        self.run_key = run_key
        self.parts = (CHECKPOINTS_PREFIX, run_key, CHECKPOINT_FILE)
        storage.key(*self.parts)  # validate the run key before any I/O

    @property
    def uri(self) -> str:
        return self.storage.uri(*self.parts)

    def exists(self) -> bool:
        return self.storage.exists(*self.parts)

    def read(self) -> bytes | None:
        return self.storage.read_bytes(*self.parts) if self.exists() else None

    def write(self, data: bytes) -> None:
        self.storage.write_bytes(data, *self.parts)

    def clear(self) -> None:
        self.storage.delete_prefix(CHECKPOINTS_PREFIX, self.run_key)
