"""Small generated tenant data sets and byte-level comparisons for the backup tests."""

from __future__ import annotations

import random

import pandas as pd
from boto3.s3.transfer import TransferConfig

from spotify_jobs.backup.store import MIB, S3FileStore
from spotify_jobs.storage.object_store import ObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage

# S3's smallest part is 5 MiB; tests use it so a file of a little over 10 MiB has three parts.
SMALL_PARTS = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)


def seed_tenant(store: ObjectStore, tenant: str, seed: int = 0, *, big_bytes: int = 0) -> dict[str, bytes]:
    """Write a tenant's data prefix like the platform's (parquet outputs, JSON reports, raw files,
    an empty file, two paths with the same content); returns path -> bytes."""
    rng = random.Random(seed)
    storage = TenantStorage(store, tenant)
    frame = pd.DataFrame({"track_uri": [f"spotify:track:{rng.randrange(10**9)}" for _ in range(50)]})
    storage.write_parquet(frame, "assets/daily_track_stats/date=2026-11-01.parquet")
    storage.write_json({"tenant": tenant, "seed": seed}, "reports/summary.json")
    shared = rng.randbytes(3000)
    storage.write_bytes(shared, "landing/2026-11-01/export-a/Streaming_History_0.json")
    storage.write_bytes(shared, "landing/2026-11-02/export-b/Streaming_History_0.json")
    storage.write_bytes(b"", "landing/2026-11-01/export-a/empty.json")
    for size in (1, 1000, 70_000):
        storage.write_bytes(rng.randbytes(size), f"models/m{size}.bin")
    if big_bytes:
        storage.write_bytes(rng.randbytes(big_bytes), "models/big.pt")
    return tenant_files(store, tenant)


def tenant_files(store: ObjectStore, tenant: str) -> dict[str, bytes]:
    """Every file under the tenant's prefix, path -> bytes."""
    storage = TenantStorage(store, tenant)
    return {info.key: storage.read_bytes(info.key) for info in storage.list()}


def s3_store(endpoint: str, bucket: str, prefix: str = "backups", **kwargs) -> S3FileStore:
    kwargs.setdefault("transfer_config", SMALL_PARTS)
    return S3FileStore(bucket, prefix, endpoint_url=endpoint, **kwargs)
