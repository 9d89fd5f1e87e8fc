"""One tenant's backups in a backup store, and the leases that keep garbage collection safe.

Layout, every key under `tenants/<tenant>/` (built from validated parts only):
  content/<sha[:2]>/<sha>          each distinct file content once, named by its SHA-256
  manifests/<backup id>.json       one per complete backup, written last
  locks/<kind>-<run id>.json       a lease held by a running backup, restore or garbage collection

Why leases and not an age grace period: a backup reuses content that is already present without
uploading it again, and that content can be arbitrarily old, so "delete only old unreferenced objects"
would still let a collector delete content that a running backup is about to reference. Instead a
backup and a collector each write their lease first and then look for the other's: on a store with
read-after-write and list-after-write consistency (a local disk; S3 since 2020) at least one of the two
sees the other, and the backup refuses to start, or the collector defers. A lease names its expiry so
that one left by a killed process stops blocking after a while; each holder stops its protected work
before its own lease expires, so an expired lease never belongs to a process still doing that work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spotify_jobs.backup.manifest import LATEST, BackupManifest, is_sha256, validate_backup_id
from spotify_jobs.backup.store import FileStore
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage

LEASE_KINDS = ("backup", "restore", "gc")
LEASE_DURATION = {
    "backup": timedelta(hours=12),
    "restore": timedelta(hours=12),
    "gc": timedelta(minutes=30),
}


class BackupNotFound(LookupError):
    """No complete backup (no manifest) with that id, or none at all for `latest`."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Lease:
    kind: str
    run_id: str
    started_at: datetime
    expires_at: datetime

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.run_id}"


class TenantBackupRepository:
    """Keys and reads/writes of one tenant's backups in a backup store."""

    def __init__(self, store: FileStore, tenant_id: str):
        self.store = store
        self.storage = TenantStorage(store, tenant_id)
        self.tenant = self.storage.tenant_id

    # -- content ---------------------------------------------------------------------------------
    def content_key(self, sha256: str) -> str:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.storage.key("content", sha256[:2], sha256)

    def present_content(self) -> dict[str, int]:
        """sha256 -> size of every complete content object (one listing, not one request per file)."""
        present: dict[str, int] = {}
        for info in self.storage.list("content"):
            parts = info.key.split("/")
            if len(parts) == 3 and is_sha256(parts[2]) and parts[1] == parts[2][:2]:
                present[parts[2]] = info.size
        return present

    # -- manifests -------------------------------------------------------------------------------
    def manifest_key(self, backup_id: str) -> str:
        return self.storage.key("manifests", f"{validate_backup_id(backup_id)}.json")

    def backup_ids(self) -> list[str]:
        """Ids of complete backups (those with a manifest), oldest first."""
        ids = []
        for info in self.storage.list("manifests"):
            name = info.key.rsplit("/", 1)[-1]
            if name.endswith(".json"):
                try:
                    ids.append(validate_backup_id(name.removesuffix(".json")))
                except ValueError:
                    continue
        return sorted(ids)

    def resolve(self, backup: str) -> str:
        """The id `backup` names: itself if its manifest exists, or the newest for 'latest'."""
        if backup == LATEST:
            ids = self.backup_ids()
            if not ids:
                raise BackupNotFound(f"tenant {self.tenant} has no complete backup in {self.store.root}")
            return ids[-1]
        validate_backup_id(backup)
        if not self.store.exists(self.manifest_key(backup)):
            raise BackupNotFound(f"tenant {self.tenant} has no backup {backup} in {self.store.root}")
        return backup

    def write_manifest(self, manifest: BackupManifest) -> str:
        key = self.manifest_key(manifest.backup_id)
        self.store.write_bytes(key, manifest.to_json())
        return self.store.uri(key)

    def load_manifest(self, backup: str) -> BackupManifest:
        backup_id = self.resolve(backup)
        data = self.store.read_bytes(self.manifest_key(backup_id))
        return BackupManifest.from_json(data, tenant=self.tenant, backup_id=backup_id)

    def manifests(self) -> list[BackupManifest]:
        return [self.load_manifest(backup_id) for backup_id in self.backup_ids()]

    def delete_manifests(self, backup_ids: Iterable[str]) -> int:
        return self.store.delete_many(self.manifest_key(b) for b in backup_ids)

    # -- leases ----------------------------------------------------------------------------------
    def _lease_key(self, name: str) -> str:
        return self.storage.key("locks", f"{name}.json")

    def acquire(self, kind: str, run_id: str, now: datetime) -> Lease:
        if kind not in LEASE_KINDS:
            raise ValueError(f"unknown lease kind {kind!r}; allowed: {', '.join(LEASE_KINDS)}")
        lease = Lease(kind, validate_backup_id(run_id), now, now + LEASE_DURATION[kind])
        body = {
            "kind": kind,
            "run_id": run_id,
            "started_at": now.isoformat(),
            "expires_at": lease.expires_at.isoformat(),
        }
        self.store.write_bytes(self._lease_key(lease.name), json.dumps(body).encode())
        return lease

    def release(self, lease: Lease) -> None:
        self.store.delete(self._lease_key(lease.name))

    def leases(self) -> list[Lease]:
        """Every lease present, expired or not. An unreadable one counts as held for the longest
        duration from its object's modification time (conservative: it still blocks)."""
        found = []
        for info in self.storage.list("locks"):
            name = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            kind, _, run_id = name.partition("-")
            try:
                body = json.loads(self.store.read_bytes(f"{self.storage.prefix}/{info.key}"))
                found.append(
                    Lease(
                        body["kind"],
                        body["run_id"],
                        datetime.fromisoformat(body["started_at"]),
                        datetime.fromisoformat(body["expires_at"]),
                    )
                )
            except (StorageError, ValueError, KeyError, TypeError):
                started = datetime.fromtimestamp(info.modified, UTC)
                found.append(Lease(kind, run_id, started, started + max(LEASE_DURATION.values())))
        return found

    def held(self, kinds: Iterable[str], now: datetime, *, besides: Lease | None = None) -> list[Lease]:
        """Unexpired leases of these kinds, other than `besides`."""
        kinds = set(kinds)
        return [
            lease
            for lease in self.leases()
            if lease.kind in kinds
            and lease.expires_at > now
            and (besides is None or lease.name != besides.name)
        ]

    def drop_expired(self, now: datetime) -> int:
        expired = [lease for lease in self.leases() if lease.expires_at <= now]
        return self.store.delete_many(self._lease_key(lease.name) for lease in expired)


def check_disjoint(data_uri: str, backup_uri: str) -> None:
    """Refuse a backup store placed inside the data it backs up, or the other way round."""
    data_uri, backup_uri = data_uri.rstrip("/") + "/", backup_uri.rstrip("/") + "/"
    if data_uri.startswith(backup_uri) or backup_uri.startswith(data_uri):
        raise StorageError(
            f"backup location {backup_uri} overlaps the data it backs up ({data_uri}); "
            "set SPOTIFY_JOBS_BACKUP_ROOT to a separate directory or bucket prefix"
        )
