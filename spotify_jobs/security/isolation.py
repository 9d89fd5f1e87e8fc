"""Evidence about a tenant's backups: fresh enough, encrypted at rest, and all of them the tenant's own.

Backups live in the backup store under `tenants/<tenant>/` (see `spotify_jobs.backup.repository`): one
manifest per complete backup, written last, and content objects named by their SHA-256.

Freshness: `tenant_backup` is partitioned by tenant and day, so every tenant is backed up daily; the
newest trustworthy backup must be younger than one day plus `BACKUP_GRACE` (a backup may start at any
time of its day).

Encryption: on S3 every object checked (the newest manifest and an even sample of the content it
references) must carry a ServerSideEncryption header (SSE-S3 or SSE-KMS). A local backup directory
cannot evidence encryption at rest (that is the host's disk): in development, on the embedded default,
the control does not apply; in staging and production a local backup root is a failure.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from spotify_jobs.backup.manifest import BackupManifest, ManifestError, backup_time
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.security.data_scan import CROSS_TENANT
from spotify_jobs.security.findings import Ledger, ObjectRef
from spotify_jobs.storage.object_store import ObjectStore, S3ObjectStore, StorageError
from spotify_jobs.tenancy.registry import Tenant

FRESH = "TEN-BACKUP-FRESH"
ENCRYPTED = "TEN-BACKUP-ENCRYPTED"
BACKUP_INTERVAL = timedelta(days=1)
BACKUP_GRACE = timedelta(hours=6)
ENCRYPTION_SAMPLE = 20  # content objects whose encryption header is checked per scan
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def backup_max_age(tenant: Tenant) -> timedelta:
    """How old the newest backup of `tenant` may be: its (daily) backup interval plus the grace."""
    del tenant  # every tenant is backed up on the same daily partitions today
    return BACKUP_INTERVAL + BACKUP_GRACE


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _load_manifests(repo: TenantBackupRepository, ledger: Ledger) -> list[BackupManifest]:
    """Every manifest that is the tenant's own and intact; others become findings or notes."""
    trusted = []
    for backup_id in repo.backup_ids():
        key = repo.manifest_key(backup_id)
        ref = ObjectRef("BackupManifest", repo.tenant, repo.storage.relative(key))
        ledger.check(CROSS_TENANT, ref)
        data = repo.store.read_bytes(key)
        try:
            claimed = json.loads(data).get("tenant")
        except (ValueError, AttributeError):
            claimed = None
        if claimed is not None and claimed != repo.tenant:
            ledger.fail(CROSS_TENANT, ref, "tenant", f"backup manifest {backup_id} names tenant {claimed!r}")
            continue
        try:
            trusted.append(BackupManifest.from_json(data, tenant=repo.tenant, backup_id=backup_id))
        except ManifestError as exc:
            ledger.notes.append(f"backup {backup_id} not counted: {exc}")
    return trusted


def _sse_of(store: S3ObjectStore, key: str) -> str | None:
    full_key = store.uri(key).removeprefix(f"s3://{store.bucket}/")
    try:
        head = store.client.head_object(Bucket=store.bucket, Key=full_key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot read the headers of {store.uri(key)}: {exc}") from exc
    return head.get("ServerSideEncryption")


def _check_encryption(
    store: ObjectStore, repo: TenantBackupRepository, newest: BackupManifest, environment: str, ledger: Ledger
) -> None:
    ref = ObjectRef("Backup", repo.tenant, newest.backup_id)
    if not isinstance(store, S3ObjectStore):
        if environment == "development":
            ledger.skip(ENCRYPTED, f"local backup root {store.root}: encryption at rest is the host disk's")
        else:
            ledger.fail(ENCRYPTED, ref, "backup_root",
                        f"backups are on a local filesystem ({store.root}) in {environment}: encryption at "
                        "rest cannot be evidenced; use an s3:// backup root with default encryption")  # fmt: skip
        return
    ledger.check(ENCRYPTED, ref)
    contents = sorted({entry.sha256 for entry in newest.entries})
    step = max(1, len(contents) // ENCRYPTION_SAMPLE)
    keys = [repo.manifest_key(newest.backup_id)] + [
        repo.content_key(s) for s in contents[::step][:ENCRYPTION_SAMPLE]
    ]
    unencrypted = [key for key in keys if _sse_of(store, key) not in SSE_ALGORITHMS]
    if unencrypted:
        first = repo.storage.relative(unencrypted[0])
        ledger.fail(ENCRYPTED, ref, "ServerSideEncryption",
                    f"{len(unencrypted)} of {len(keys)} objects checked have no server-side encryption "
                    f"(e.g. {first})", count=len(unencrypted))  # fmt: skip


def check_backups(store: ObjectStore, tenant: Tenant, now: datetime, environment: str) -> Ledger:
    """Freshness, encryption and ownership of `tenant`'s backups in the backup store `store`."""
    ledger = Ledger()
    repo = TenantBackupRepository(store, tenant.id)
    manifests = _load_manifests(repo, ledger)
    ref = ObjectRef("Backups", tenant.id, store.uri(repo.storage.prefix))
    ledger.check(FRESH, ref)
    if not manifests:
        ledger.fail(FRESH, ref, "manifests", f"tenant {tenant.id} has no complete backup in {store.root}")
        ledger.skip(ENCRYPTED, "no backup to check")
        return ledger
    newest = manifests[-1]
    age = now - backup_time(newest.backup_id)
    limit = backup_max_age(tenant)
    if age > limit:
        ledger.fail(FRESH, ref, f"manifests/{newest.backup_id}.json",
                    f"newest backup {newest.backup_id} is {_age_text(age)} old; the daily schedule allows "
                    f"{_age_text(limit)}")  # fmt: skip
    _check_encryption(store, repo, newest, environment, ledger)
    return ledger
