"""Back up one tenant's data prefix into its content-addressed backup repository.

Each file is staged into a private temporary file, hashed there, and uploaded from there, so the bytes
stored under a hash are exactly the bytes hashed even if the source changes meanwhile. Content already
present is not uploaded again: content the previous manifest references is known to be there, other
content is looked up (one listing of the repository when there is no previous manifest, else one request
per new hash). With the previous manifest as a cache, a file whose path, size and modification time are
unchanged is not even read. The manifest is written last: a backup interrupted at any point has no
manifest, so it does not exist, and re-running uploads only the content that is still missing.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from spotify_jobs.backup.manifest import LATEST, BackupManifest, ManifestEntry, ManifestError, new_run_id
from spotify_jobs.backup.repository import LEASE_DURATION, TenantBackupRepository, check_disjoint
from spotify_jobs.backup.retention import CollectionResult, RetentionResult, apply_retention, collect_garbage
from spotify_jobs.backup.store import FileStore, sha256_file
from spotify_jobs.storage.object_store import ObjectInfo, ObjectStore, StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import Tenant

DEFAULT_WORKERS = 4
GC_POLL_SECONDS = 2.0

T = TypeVar("T")
R = TypeVar("R")


class BackupError(RuntimeError):
    """A backup that could not complete; no manifest was written."""


class BackupConflict(BackupError):
    """Garbage collection of the tenant's backups is running; a backup started now could lose content."""


@dataclass(frozen=True)
class BackupResult:
    tenant: str
    backup_id: str
    files: int
    bytes_total: int
    bytes_uploaded: int
    bytes_deduplicated: int
    seconds: float
    manifest_uri: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """`[fn(i) for i in items]` on `workers` threads, in order; the first failure cancels what has not
    started and is raised once the running calls have finished."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup") as pool:
        futures = [pool.submit(fn, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            raise failed.exception()
        return [f.result() for f in futures]


def _previous_entries(repo: TenantBackupRepository) -> dict[str, ManifestEntry]:
    if not repo.backup_ids():
        return {}
    try:
        return {e.path: e for e in repo.load_manifest(LATEST).entries}
    except ManifestError:
        return {}  # an unreadable previous manifest only costs re-hashing; it must not stop a backup


def _wait_out_collection(repo: TenantBackupRepository, now: datetime, gc_wait_seconds: float) -> None:
    deadline = time.monotonic() + gc_wait_seconds
    while collectors := repo.held(["gc"], now):
        if time.monotonic() >= deadline:
            names = ", ".join(f"{c.run_id} (until {c.expires_at.isoformat()})" for c in collectors)
            raise BackupConflict(
                f"garbage collection of tenant {repo.tenant}'s backups is running: {names}; "
                "retry the backup once it has finished"
            )
        time.sleep(GC_POLL_SECONDS)
        now = datetime.now(UTC)


def run_backup(
    source: ObjectStore,
    backups: FileStore,
    tenant_id: str,
    *,
    now: datetime | None = None,
    rehash: bool = False,
    workers: int = DEFAULT_WORKERS,
    gc_wait_seconds: float = 0.0,
) -> BackupResult:
    """Back up everything under `tenants/<tenant_id>/` of `source` into `backups`.

    `rehash` ignores the previous manifest and reads every file. `gc_wait_seconds` is how long to wait
    for a running garbage collection of this tenant before giving up with BackupConflict.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    data = TenantStorage(source, tenant_id)
    repo = TenantBackupRepository(backups, tenant_id)
    check_disjoint(source.uri(data.prefix), backups.uri(repo.storage.prefix))
    backup_id = new_run_id(now)
    lease = repo.acquire("backup", backup_id, now)
    try:
        _wait_out_collection(repo, now, gc_wait_seconds)
        previous = {} if rehash else _previous_entries(repo)
        if previous:
            # What the previous manifest references is present: it was verified when that backup
            # completed, and no collection can delete it while this backup holds its lease. Other
            # content is looked up one object at a time, so the cost follows the change, not the
            # size of the repository.
            present = {e.sha256: e.size for e in previous.values()}

            def stored_size(sha256: str) -> int | None:
                return backups.size_of(repo.content_key(sha256))
        else:
            # First backup, a re-run after a failure, or a rehash: one listing of every complete object.
            present = repo.present_content()

            def stored_size(sha256: str) -> int | None:
                return None

        claimed: set[str] = set()
        lock = threading.Lock()

        with tempfile.TemporaryDirectory(prefix="spotify-jobs-backup-") as staging:

            def back_up(info: ObjectInfo) -> tuple[ManifestEntry, int]:
                staged = Path(staging) / uuid.uuid4().hex
                try:
                    data.download(staged, info.key)
                    sha256, size = sha256_file(staged), staged.stat().st_size
                    entry = ManifestEntry(info.key, size, sha256, info.modified)
                    with lock:
                        if present.get(sha256) == size or sha256 in claimed:
                            return entry, 0
                        claimed.add(sha256)
                    if stored_size(sha256) != size:
                        backups.put_file(repo.content_key(sha256), staged, sha256=sha256)
                        return entry, size
                    return entry, 0
                finally:
                    staged.unlink(missing_ok=True)

            entries_by_path: dict[str, ManifestEntry] = {}
            changed: list[ObjectInfo] = []
            for info in data.list():
                known = previous.get(info.key)
                if known is not None and known.size == info.size and known.mtime == info.modified:
                    entries_by_path[info.key] = known  # unchanged since the previous backup: not read
                else:
                    changed.append(info)
            uploaded = 0
            for entry, size in parallel_map(back_up, changed, workers):
                entries_by_path[entry.path] = entry
                uploaded += size

        if time.monotonic() - started >= LEASE_DURATION["backup"].total_seconds():
            raise BackupError(
                f"backup {backup_id} of tenant {repo.tenant} outlived its lease; content it reuses may "
                "have been collected, so it is not recorded: run it again"
            )
        entries = tuple(entries_by_path[path] for path in sorted(entries_by_path))
        total = sum(e.size for e in entries)
        seconds = time.monotonic() - started
        manifest = BackupManifest(
            tenant=repo.tenant,
            backup_id=backup_id,
            created_at=now.isoformat(),
            source=source.uri(data.prefix),
            entries=entries,
            bytes_uploaded=uploaded,
            bytes_deduplicated=total - uploaded,
            seconds=seconds,
        )
        manifest_uri = repo.write_manifest(manifest)
    finally:
        # A lease left behind (store unreachable now) only delays collection until it expires.
        with contextlib.suppress(StorageError, OSError):
            repo.release(lease)
    return BackupResult(
        tenant=repo.tenant,
        backup_id=backup_id,
        files=len(entries),
        bytes_total=total,
        bytes_uploaded=uploaded,
        bytes_deduplicated=total - uploaded,
        seconds=round(time.monotonic() - started, 3),
        manifest_uri=manifest_uri,
    )


@dataclass(frozen=True)
class ScheduledBackupResult:
    """A backup followed by the tenant's retention policy and garbage collection."""

    backup: BackupResult
    retention: RetentionResult
    collection: CollectionResult

    def as_dict(self) -> dict[str, object]:
        return {
            **self.backup.as_dict(),
            "retention": self.retention.as_dict(),
            "collection": self.collection.as_dict(),
        }


def back_up_and_prune(
    source: ObjectStore,
    backups: FileStore,
    tenant: Tenant,
    *,
    now: datetime | None = None,
    rehash: bool = False,
    gc_wait_seconds: float = 0.0,
) -> ScheduledBackupResult:
    """What the daily asset and `backup run` do: back up, apply the tenant's retention, collect garbage."""
    result = run_backup(source, backups, tenant.id, now=now, rehash=rehash, gc_wait_seconds=gc_wait_seconds)
    repo = TenantBackupRepository(backups, tenant.id)
    retention = apply_retention(repo, tenant.backup_retention)
    collection = collect_garbage(repo, now=now)
    return ScheduledBackupResult(result, retention, collection)
