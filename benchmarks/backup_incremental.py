"""Time of a no-change incremental backup of a tenant with 10,000 files; prints one JSON line. A benchmark,
not a test.

    .venv/bin/python benchmarks/backup_incremental.py [--files 10000] [--kib 2] [--store s3|local]
        [--repeat 3] [--work build/bench-backup]

Writes `--files` distinct files of about `--kib` KiB under one tenant's data prefix (100 folders), makes a
full backup into the store (moto's S3 server in its own process, or a local directory), then times
`--repeat` backups with nothing changed:
* `incremental_s` (best): the default path: one listing of the data, the previous manifest as a cache of
  (path, size, mtime) -> sha256, one listing of the content objects, a new manifest;
* `incremental_rehash_s`: the same with `rehash=True`: every file staged and hashed again (still nothing
  uploaded), the cost when the cache cannot be trusted.
Every incremental run must upload 0 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from backup_common import moto_server, new_bucket, s3_client

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.store import LocalFileStore, S3FileStore
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage

REPO = Path(__file__).resolve().parent.parent
TENANT = "startup-042"


def write_data(root: Path, files: int, kib: int) -> None:
    storage = TenantStorage(LocalObjectStore(root), TENANT)
    for i in range(files):
        storage.write_bytes(
            os.urandom(kib * 1024 - 64 + i % 128), f"assets/part-{i % 100:02d}/file-{i:05d}.bin"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--kib", type=int, default=2)
    parser.add_argument("--store", choices=["s3", "local"], default="s3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench-backup")
    args = parser.parse_args()

    data_root = args.work / "incremental-data"
    shutil.rmtree(data_root, ignore_errors=True)
    write_data(data_root, args.files, args.kib)
    source = LocalObjectStore(data_root)
    with (
        moto_server() if args.store == "s3" else nullcontext() as endpoint,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if endpoint:
            store = S3FileStore(new_bucket(s3_client(endpoint)), "backups", endpoint_url=endpoint)
        else:
            store = LocalFileStore(Path(tmp) / "backups")
        started = time.perf_counter()
        full = run_backup(source, store, TENANT)
        full_s = time.perf_counter() - started
        incremental, uploaded = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            uploaded.append(run_backup(source, store, TENANT).bytes_uploaded)
            incremental.append(time.perf_counter() - started)
        started = time.perf_counter()
        rehashed = run_backup(source, store, TENANT, rehash=True)
        rehash_s = time.perf_counter() - started
    shutil.rmtree(data_root, ignore_errors=True)
    if any(uploaded) or rehashed.bytes_uploaded:
        raise SystemExit(f"a no-change backup uploaded bytes: {uploaded}, rehash {rehashed.bytes_uploaded}")
    print(
        json.dumps(
            {
                "benchmark": "backup_incremental",
                "store": args.store,
                "files": full.files,
                "bytes": full.bytes_total,
                "full_backup_s": round(full_s, 3),
                "incremental_s": round(min(incremental), 3),
                "all_incremental_s": [round(t, 3) for t in incremental],
                "incremental_rehash_s": round(rehash_s, 3),
                "incremental_bytes_uploaded": max(uploaded),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
