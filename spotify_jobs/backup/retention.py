"""Which backups to keep (N daily, M weekly, K monthly) and collection of content no manifest references.

Retention follows the rule restic and borg use: for the latest N days that have at least one backup,
keep the newest backup of each day; likewise per ISO week and per calendar month; keep the union. Counting
days that have backups (not calendar days) means a tenant whose backups stopped keeps its last ones.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from spotify_jobs.backup.manifest import backup_time, new_run_id
from spotify_jobs.backup.repository import LEASE_DURATION, TenantBackupRepository
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.tenancy.registry import BackupRetention

DELETE_BATCH = 1000
_BUCKETS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar())[:2],
    "monthly": lambda t: (t.year, t.month),
}


@dataclass(frozen=True)
class RetentionResult:
    kept: list[str]
    deleted: list[str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class CollectionResult:
    """What garbage collection did: `done`, `deferred` (another run holds a lease) or `partial`."""

    status: str
    referenced: int = 0
    deleted_objects: int = 0
    deleted_bytes: int = 0
    expired_leases_dropped: int = 0
    blocked_by: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def select_retained(backup_ids: Iterable[str], retention: BackupRetention) -> set[str]:
    """The backups the policy keeps, from their ids (which carry their start times)."""
    newest_first = sorted(backup_ids, key=backup_time, reverse=True)
    kept: set[str] = set()
    for rule, bucket_of in _BUCKETS.items():
        limit = getattr(retention, rule)
        seen: set[tuple[int, ...]] = set()
        for backup_id in newest_first:
            if len(seen) >= limit:
                break
            bucket = bucket_of(backup_time(backup_id))
            if bucket not in seen:
                seen.add(bucket)
                kept.add(backup_id)
    return kept


def apply_retention(repo: TenantBackupRepository, retention: BackupRetention) -> RetentionResult:
    """Delete the manifests of backups the policy does not keep (their content goes at collection)."""
    ids = repo.backup_ids()
    kept = select_retained(ids, retention)
    deleted = [b for b in ids if b not in kept]
    repo.delete_manifests(deleted)
    return RetentionResult(kept=sorted(kept), deleted=deleted)


def collect_garbage(repo: TenantBackupRepository, *, now: datetime | None = None) -> CollectionResult:
    """Delete content objects that no manifest references, unless a backup or restore of the tenant is
    running (see the lease protocol in `repository`)."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    lease = repo.acquire("gc", new_run_id(now), now)
    try:
        if blockers := repo.held(["backup", "restore"], now, besides=lease):
            return CollectionResult(
                status="deferred", blocked_by=sorted(f"{b.kind} {b.run_id}" for b in blockers)
            )
        referenced = {e.sha256 for manifest in repo.manifests() for e in manifest.entries}
        garbage = {sha: size for sha, size in repo.present_content().items() if sha not in referenced}
        shas = sorted(garbage)
        deleted = deleted_bytes = 0
        # Stop well inside the lease: past its expiry a new backup would no longer see it.
        budget = LEASE_DURATION["gc"].total_seconds() / 2
        for start in range(0, len(shas), DELETE_BATCH):
            if time.monotonic() - started > budget:
                break
            batch = shas[start : start + DELETE_BATCH]
            deleted += repo.store.delete_many(repo.content_key(sha) for sha in batch)
            deleted_bytes += sum(garbage[sha] for sha in batch)
        dropped = repo.drop_expired(now)
        return CollectionResult(
            status="done" if deleted == len(shas) else "partial",
            referenced=len(referenced),
            deleted_objects=deleted,
            deleted_bytes=deleted_bytes,
            expired_leases_dropped=dropped,
        )
    finally:
        with contextlib.suppress(StorageError, OSError):
            repo.release(lease)
