"""Protects restore: overwrite refusal, dry-run plans, idempotent re-runs, hostile manifests, migration."""

from __future__ import annotations

import pytest

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.manifest import BackupManifest, ManifestEntry
from spotify_jobs.backup.repository import BackupNotFound, TenantBackupRepository
from spotify_jobs.backup.restore import RestoreRefused, migrate_tenant, restore_backup
from spotify_jobs.backup.store import LocalFileStore
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage, UnsafeKeyError
from spotify_jobs_tests.backup.helpers import s3_store, seed_tenant, tenant_files

TENANT = "enterprise-001"


@pytest.fixture
def backed_up(data_store, local_backups):
    files = seed_tenant(data_store, TENANT)
    return files, run_backup(data_store, local_backups, TENANT)


def test_restore_refuses_to_overwrite_differing_files(backed_up, local_backups, tmp_path):
    files, _ = backed_up
    target = LocalFileStore(tmp_path / "target")
    live = TenantStorage(target, TENANT)
    live.write_bytes(b"newer data the backup does not have", "reports/summary.json")
    live.write_bytes(b"only in the target", "reports/extra.json")
    with pytest.raises(RestoreRefused, match=r"overwrite 1 files that differ: reports/summary.json"):
        restore_backup(local_backups, TENANT, target)
    assert live.read_bytes("reports/summary.json") == b"newer data the backup does not have"
    assert [info.key for info in live.list()] == ["reports/extra.json", "reports/summary.json"]

    result = restore_backup(local_backups, TENANT, target, overwrite=True)
    assert result.ok and result.overwritten == 1 and result.created == len(files) - 1
    assert result.extra == ["reports/extra.json"]  # never deleted
    assert {k: v for k, v in tenant_files(target, TENANT).items() if k != "reports/extra.json"} == files


def test_dry_run_lists_changes_and_writes_nothing(backed_up, local_backups, tmp_path):
    files, _ = backed_up
    target = LocalFileStore(tmp_path / "target")
    live = TenantStorage(target, TENANT)
    live.write_bytes(files["models/m1000.bin"], "models/m1000.bin")
    live.write_bytes(b"x" * 1000, "models/m70000.bin")
    plan = restore_backup(local_backups, TENANT, target, dry_run=True)
    actions = {c.path: c.action for c in plan.changes}
    assert actions["models/m1000.bin"] == "unchanged"
    assert actions["models/m70000.bin"] == "overwrite"
    assert sum(a == "create" for a in actions.values()) == len(files) - 2
    assert [c["path"] for c in plan.as_dict()["changes"] if c["action"] == "overwrite"] == [
        "models/m70000.bin"
    ]
    assert sorted(info.key for info in live.list()) == ["models/m1000.bin", "models/m70000.bin"]
    assert live.read_bytes("models/m70000.bin") == b"x" * 1000


def test_second_restore_finds_everything_unchanged(backed_up, local_backups, tmp_path):
    files, _ = backed_up
    target = LocalFileStore(tmp_path / "target")
    restore_backup(local_backups, TENANT, target)
    again = restore_backup(local_backups, TENANT, target)
    assert (again.created, again.overwritten, again.unchanged, again.bytes_written) == (0, 0, len(files), 0)
    assert again.verified == len(files)


def test_unknown_backup_and_malformed_ids(backed_up, local_backups, tmp_path):
    target = LocalFileStore(tmp_path / "target")
    with pytest.raises(BackupNotFound, match=r"no backup 20200101T000000\.000000Z-00000000"):
        restore_backup(local_backups, TENANT, target, backup="20200101T000000.000000Z-00000000")
    with pytest.raises(ValueError, match="invalid backup id"):
        restore_backup(local_backups, TENANT, target, backup="../../manifests/x")
    with pytest.raises(BackupNotFound, match="has no complete backup"):
        restore_backup(local_backups, "startup-042", target)


def test_hostile_manifest_path_is_refused_before_writing(local_backups, tmp_path):
    repo = TenantBackupRepository(local_backups, TENANT)
    good = "0" * 64
    manifest = BackupManifest(
        tenant=TENANT,
        backup_id="20261101T000000.000000Z-0badc0de",
        created_at="2026-11-01T00:00:00+00:00",
        source="x",
        entries=(ManifestEntry("a.txt", 1, good, 0.0), ManifestEntry("../startup-042/pwned", 1, good, 0.0)),
    )
    repo.write_manifest(manifest)
    with pytest.raises(UnsafeKeyError):
        restore_backup(local_backups, TENANT, LocalFileStore(tmp_path / "target"), backup=manifest.backup_id)
    assert not (tmp_path / "target").exists()


def test_restore_into_the_backup_location_is_refused(backed_up, local_backups):
    with pytest.raises(StorageError, match="overlaps"):
        restore_backup(local_backups, TENANT, local_backups)


def test_migration_to_another_bucket_is_verified_and_identical(
    backed_up, data_store, local_backups, s3_endpoint, s3_bucket
):
    files, _ = backed_up
    other_env = s3_store(s3_endpoint, s3_bucket, prefix="staging-data")
    result = migrate_tenant(data_store, local_backups, TENANT, other_env)
    assert result.ok and result.restore.verified == len(files)
    assert result.restore.backup_id == result.backup.backup_id
    assert result.backup.bytes_uploaded == 0  # the earlier backup already holds every content
    assert tenant_files(other_env, TENANT) == files
    plan = migrate_tenant(data_store, local_backups, TENANT, other_env, dry_run=True)
    assert {c.action for c in plan.restore.changes} == {"unchanged"}
