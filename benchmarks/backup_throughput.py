"""Full-backup throughput to moto's S3 server against raw boto3 `upload_file` of the same bytes; prints one
JSON line. A benchmark, not a test.

    .venv/bin/python benchmarks/backup_throughput.py [--large 4] [--large-mib 48] [--small 64]
        [--small-kib 1024] [--repeat 2] [--work build/bench-backup]

Writes a tenant data prefix of random (incompressible, all distinct) files: `--large` files of
`--large-mib` MiB (multipart) and `--small` files of `--small-kib` KiB. Then, alternately `--repeat` times,
each into a fresh bucket on one moto server running in its own process:
* `raw`: `client.upload_file(path, bucket, key)` per file, boto3's default TransferConfig, nothing else;
* `backup`: `run_backup` (what the `tenant_backup` asset and `spotify-jobs backup run` do): staging copy,
  SHA-256 content addressing, SHA-256 checksums and SSE on every object, multipart with concurrency,
  files in parallel, leases and the manifest.
The best time of each is reported; `ratio` = backup MB/s / raw MB/s (goal: at least 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from backup_common import empty_bucket, moto_server, new_bucket, s3_client

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.store import S3FileStore
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage

REPO = Path(__file__).resolve().parent.parent
TENANT = "enterprise-001"


def write_data(root: Path, large: int, large_mib: int, small: int, small_kib: int) -> list[Path]:
    storage = TenantStorage(LocalObjectStore(root), TENANT)
    for i in range(large):
        storage.write_bytes(os.urandom(large_mib * 1024 * 1024), f"models/model-{i}.pt")
    for i in range(small):
        storage.write_bytes(
            os.urandom(small_kib * 1024), f"assets/daily/date=2026-{1 + i % 12:02d}-{i:03d}.parquet"
        )
    return sorted(p for p in (root / "tenants" / TENANT).rglob("*") if p.is_file())


def time_raw(endpoint: str, paths: list[Path], base: Path) -> float:
    client = s3_client(endpoint)
    bucket = new_bucket(client)
    started = time.perf_counter()
    for path in paths:
        client.upload_file(str(path), bucket, path.relative_to(base).as_posix())
    seconds = time.perf_counter() - started
    empty_bucket(client, bucket)
    return seconds


def time_backup(endpoint: str, data_root: Path) -> tuple[float, int]:
    client = s3_client(endpoint)
    bucket = new_bucket(client)
    store = S3FileStore(bucket, "backups", endpoint_url=endpoint)
    started = time.perf_counter()
    result = run_backup(LocalObjectStore(data_root), store, TENANT)
    seconds = time.perf_counter() - started
    empty_bucket(client, bucket)
    return seconds, result.bytes_uploaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=48)
    parser.add_argument("--small", type=int, default=64)
    parser.add_argument("--small-kib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench-backup")
    args = parser.parse_args()

    data_root = args.work / "throughput-data"
    shutil.rmtree(data_root, ignore_errors=True)
    paths = write_data(data_root, args.large, args.large_mib, args.small, args.small_kib)
    total = sum(p.stat().st_size for p in paths)
    raw_times, backup_times = [], []
    with moto_server() as endpoint:
        for _ in range(args.repeat):
            raw_times.append(time_raw(endpoint, paths, data_root))
            seconds, uploaded = time_backup(endpoint, data_root)
            if uploaded != total:
                raise SystemExit(f"backup uploaded {uploaded} bytes of {total}: not a full backup")
            backup_times.append(seconds)
    shutil.rmtree(data_root, ignore_errors=True)
    raw_mbps = total / 1e6 / min(raw_times)
    backup_mbps = total / 1e6 / min(backup_times)
    print(
        json.dumps(
            {
                "benchmark": "backup_throughput",
                "files": len(paths),
                "bytes": total,
                "raw_upload_file_s": round(min(raw_times), 3),
                "backup_s": round(min(backup_times), 3),
                "raw_MBps": round(raw_mbps, 1),
                "backup_MBps": round(backup_mbps, 1),
                "ratio": round(backup_mbps / raw_mbps, 3),
                "goal_ratio": 0.8,
                "all_raw_s": [round(t, 3) for t in raw_times],
                "all_backup_s": [round(t, 3) for t in backup_times],
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
