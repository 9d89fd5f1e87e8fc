"""Restore a backup with every file's SHA-256 verified, verify a backup in place, drill a restore, and
migrate a tenant to another environment through a backup and a verified restore."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from spotify_jobs.backup.core import DEFAULT_WORKERS, BackupResult, parallel_map, run_backup
from spotify_jobs.backup.manifest import LATEST, BackupManifest, ManifestEntry, new_run_id
from spotify_jobs.backup.repository import TenantBackupRepository, check_disjoint
from spotify_jobs.backup.store import FileStore, LocalFileStore, join_root, open_file_store, sha256_file
from spotify_jobs.storage.object_store import ObjectStore, StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage

CREATE, OVERWRITE, UNCHANGED = "create", "overwrite", "unchanged"
DRILL_PREFIX = "restore-drills"


class RestoreRefused(RuntimeError):
    """The restore would overwrite files that differ from the backup, and overwriting was not allowed."""


@dataclass(frozen=True)
class Change:
    path: str
    action: str
    size: int


@dataclass
class RestoreResult:
    tenant: str
    backup_id: str
    target: str
    dry_run: bool
    files: int
    created: int = 0
    overwritten: int = 0
    unchanged: int = 0
    bytes_written: int = 0
    verified: int = 0
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self, *, with_changes: bool = True) -> dict[str, object]:
        body = asdict(self)
        body["ok"] = self.ok
        body["changes"] = [asdict(c) for c in self.changes if c.action != UNCHANGED] if with_changes else []
        return body


@dataclass(frozen=True)
class VerifyResult:
    tenant: str
    backup_id: str
    files: int
    missing: list[str]
    wrong_size: list[str]
    corrupt: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong_size or self.corrupt)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def _hash_object(store: ObjectStore, key: str, staging: Path) -> str:
    staged = staging / uuid.uuid4().hex
    try:
        store.download(key, staged)
        return sha256_file(staged)
    finally:
        staged.unlink(missing_ok=True)


def plan_restore(
    manifest: BackupManifest, target: TenantStorage, staging: Path, workers: int
) -> tuple[list[Change], list[str]]:
    """(a change per manifest file, paths in the target the backup does not hold). Paths are checked
    to stay inside the tenant's prefix before anything is read or written."""
    keys = {e.path: target.key(e.path) for e in manifest.entries}
    existing = {info.key: info.size for info in target.list()}

    def change(entry: ManifestEntry) -> Change:
        if entry.path not in existing:
            return Change(entry.path, CREATE, entry.size)
        if existing[entry.path] != entry.size:
            return Change(entry.path, OVERWRITE, entry.size)
        same = _hash_object(target.store, keys[entry.path], staging) == entry.sha256
        return Change(entry.path, UNCHANGED if same else OVERWRITE, entry.size)

    changes = parallel_map(change, manifest.entries, workers)
    extra = sorted(set(existing) - set(keys))
    return changes, extra


def restore_backup(
    backups: FileStore,
    tenant_id: str,
    target: FileStore,
    *,
    backup: str = LATEST,
    dry_run: bool = False,
    overwrite: bool = False,
    verify_target: bool = True,
    workers: int = DEFAULT_WORKERS,
    now: datetime | None = None,
) -> RestoreResult:
    """Restore a tenant's backup into `target`'s `tenants/<tenant>/` prefix.

    Every content object is hashed after download and written only if it matches the manifest; with
    `verify_target` every restored file is read back from the target and hashed again. Files already
    identical are left alone; files that differ are overwritten only with `overwrite` (otherwise
    RestoreRefused, before anything is written). Files in the target that the backup does not hold are
    reported as `extra` and never deleted. A dry run only plans.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    repo = TenantBackupRepository(backups, tenant_id)
    manifest = repo.load_manifest(backup)
    dest = TenantStorage(target, tenant_id)
    check_disjoint(target.uri(dest.prefix), backups.uri(repo.storage.prefix))
    result = RestoreResult(
        tenant=repo.tenant,
        backup_id=manifest.backup_id,
        target=target.uri(dest.prefix),
        dry_run=dry_run,
        files=manifest.files,
    )
    by_path = {e.path: e for e in manifest.entries}
    with tempfile.TemporaryDirectory(prefix="spotify-jobs-restore-") as tmp:
        staging = Path(tmp)
        result.changes, result.extra = plan_restore(manifest, dest, staging, workers)
        conflicts = [c.path for c in result.changes if c.action == OVERWRITE]
        if dry_run:
            result.seconds = round(time.monotonic() - started, 3)
            return result
        if conflicts and not overwrite:
            shown = ", ".join(conflicts[:5]) + (
                f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
            )
            raise RestoreRefused(
                f"restoring backup {manifest.backup_id} of tenant {repo.tenant} into {result.target} would "
                f"overwrite {len(conflicts)} files that differ: {shown}; nothing was written. Allow "
                "overwriting (--overwrite / overwrite: true) or restore into another target"
            )
        lease = repo.acquire("restore", new_run_id(now), now)
        try:
            failures: dict[str, dict[str, str]] = {}

            def write(change: Change) -> None:
                entry = by_path[change.path]
                staged = staging / uuid.uuid4().hex
                try:
                    repo.store.download(repo.content_key(entry.sha256), staged)
                    actual = sha256_file(staged)
                    if actual != entry.sha256:
                        failures[entry.path] = {
                            "path": entry.path,
                            "error": f"backup content has sha256 {actual}",
                        }
                        return
                    target.put_file(dest.key(entry.path), staged, sha256=entry.sha256)
                except (StorageError, OSError) as exc:
                    failures[entry.path] = {"path": entry.path, "error": str(exc)}
                finally:
                    staged.unlink(missing_ok=True)

            to_write = [c for c in result.changes if c.action != UNCHANGED]
            parallel_map(write, to_write, workers)

            def verify(entry: ManifestEntry) -> None:
                try:
                    actual = _hash_object(target, dest.key(entry.path), staging)
                except (StorageError, OSError) as exc:
                    failures[entry.path] = {"path": entry.path, "error": f"cannot read back: {exc}"}
                    return
                if actual != entry.sha256:
                    failures[entry.path] = {"path": entry.path, "error": f"restored file has sha256 {actual}"}

            if verify_target:
                parallel_map(verify, [e for e in manifest.entries if e.path not in failures], workers)
        finally:
            with contextlib.suppress(StorageError, OSError):
                repo.release(lease)
    for change in to_write:
        if change.path not in failures:
            if change.action == CREATE:
                result.created += 1
            else:
                result.overwritten += 1
            result.bytes_written += change.size
    result.unchanged = sum(1 for c in result.changes if c.action == UNCHANGED)
    result.verified = result.files - len(failures) if verify_target else 0
    result.failed = [failures[p] for p in sorted(failures)]
    result.seconds = round(time.monotonic() - started, 3)
    return result


def verify_backup(
    backups: FileStore, tenant_id: str, backup: str = LATEST, *, rehash: bool = False
) -> VerifyResult:
    """Check a backup against its store: the manifest parses and matches its digest, and every file's
    content object is present with the right size (and, with `rehash`, the right SHA-256)."""
    repo = TenantBackupRepository(backups, tenant_id)
    manifest = repo.load_manifest(backup)
    present = repo.present_content()
    missing = [e.path for e in manifest.entries if e.sha256 not in present]
    wrong_size = [e.path for e in manifest.entries if e.sha256 in present and present[e.sha256] != e.size]
    corrupt: list[str] = []
    if rehash:
        distinct = sorted({e.sha256 for e in manifest.entries if present.get(e.sha256) == e.size})
        with tempfile.TemporaryDirectory(prefix="spotify-jobs-verify-") as tmp:
            actual = parallel_map(
                lambda sha: _hash_object(backups, repo.content_key(sha), Path(tmp)), distinct, DEFAULT_WORKERS
            )
        bad = {sha for sha, got in zip(distinct, actual, strict=True) if got != sha}
        corrupt = [e.path for e in manifest.entries if e.sha256 in bad]
    return VerifyResult(repo.tenant, manifest.backup_id, manifest.files, missing, wrong_size, corrupt)


def restore_drill(
    backups: FileStore,
    backup_root: str,
    tenant_id: str,
    *,
    backup: str = LATEST,
    s3_endpoint_url: str | None = None,
    now: datetime | None = None,
) -> RestoreResult:
    """Restore a backup into a fresh scratch prefix of the backup root, read every file back and compare
    its hash with the manifest, then delete the scratch prefix. The result says whether all matched."""
    now = now or datetime.now(UTC)
    repo = TenantBackupRepository(backups, tenant_id)
    scratch_root = join_root(backup_root, DRILL_PREFIX, repo.tenant, new_run_id(now))
    scratch = open_file_store(scratch_root, s3_endpoint_url)
    try:
        return restore_backup(backups, repo.tenant, scratch, backup=backup, verify_target=True, now=now)
    finally:
        if isinstance(scratch, LocalFileStore):
            shutil.rmtree(scratch.root, ignore_errors=True)
            with contextlib.suppress(OSError):  # only succeeds when no other drill uses it
                Path(scratch.root).parent.rmdir()
        else:
            TenantStorage(scratch, repo.tenant).delete_prefix()


@dataclass(frozen=True)
class MigrationResult:
    backup: BackupResult
    restore: RestoreResult

    @property
    def ok(self) -> bool:
        return self.restore.ok

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "backup": self.backup.as_dict(), "restore": self.restore.as_dict()}


def migrate_tenant(
    source: ObjectStore,
    backups: FileStore,
    tenant_id: str,
    target: FileStore,
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> MigrationResult:
    """Copy a tenant's data to another environment, bucket or prefix: a fresh backup, then a verified
    restore of exactly that backup into `target`. A dry run still backs up (that changes no tenant data)
    and lists what the restore would change."""
    result = run_backup(source, backups, tenant_id, now=now)
    restored = restore_backup(
        backups, tenant_id, target, backup=result.backup_id, dry_run=dry_run, overwrite=overwrite, now=now
    )
    return MigrationResult(result, restored)
