"""Protects backups: byte-identical round trips, dedup, incremental uploads, tenant scoping and encryption."""

from __future__ import annotations

import json

import pytest

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.manifest import BackupManifest, ManifestError
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.restore import restore_backup, verify_backup
from spotify_jobs.backup.store import LocalFileStore, open_file_store
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import InvalidTenantId, load_registry
from spotify_jobs_tests.backup.helpers import seed_tenant, tenant_files

DEMO_TENANTS = load_registry().ids


def test_round_trip_is_byte_identical_for_every_demo_tenant(data_store, backups, tmp_path):
    originals = {t: seed_tenant(data_store, t, seed=i) for i, t in enumerate(DEMO_TENANTS)}
    target = LocalFileStore(tmp_path / "restored")
    for tenant, files in originals.items():
        result = run_backup(data_store, backups, tenant)
        assert result.files == len(files)
        assert result.bytes_total == sum(len(b) for b in files.values())
        restored = restore_backup(backups, tenant, target, backup=result.backup_id)
        assert restored.ok and restored.verified == len(files) and restored.created == len(files)
        assert tenant_files(target, tenant) == files


def test_content_is_stored_once_and_unchanged_data_uploads_nothing(data_store, backups):
    files = seed_tenant(data_store, "startup-042")
    first = run_backup(data_store, backups, "startup-042")
    distinct = {bytes(b) for b in files.values()}
    assert first.bytes_uploaded == sum(len(b) for b in distinct)
    assert first.bytes_deduplicated == first.bytes_total - first.bytes_uploaded > 0
    repo = TenantBackupRepository(backups, "startup-042")
    assert len(repo.present_content()) == len(distinct)

    second = run_backup(data_store, backups, "startup-042")
    assert (second.bytes_uploaded, second.bytes_deduplicated) == (0, second.bytes_total)
    rehashed = run_backup(data_store, backups, "startup-042", rehash=True)
    assert rehashed.bytes_uploaded == 0
    assert len(repo.backup_ids()) == 3
    assert repo.load_manifest(second.backup_id).entries == repo.load_manifest(rehashed.backup_id).entries


def test_incremental_uploads_only_changed_content(data_store, backups):
    seed_tenant(data_store, "startup-042")
    run_backup(data_store, backups, "startup-042")
    storage = TenantStorage(data_store, "startup-042")
    storage.write_bytes(b"a new model, 23 bytes..", "models/m1000.bin")
    storage.write_bytes(b"brand new", "reports/new.txt")
    result = run_backup(data_store, backups, "startup-042")
    assert result.bytes_uploaded == 23 + 9
    assert verify_backup(backups, "startup-042", result.backup_id, rehash=True).ok


def test_content_older_than_the_previous_backup_is_found_not_uploaded(data_store, backups):
    storage = TenantStorage(data_store, "startup-042")
    storage.write_bytes(b"model v1" * 100, "models/current.pt")
    run_backup(data_store, backups, "startup-042")
    storage.write_bytes(b"model v2" * 100, "models/current.pt")
    run_backup(data_store, backups, "startup-042")
    storage.write_bytes(
        b"model v1" * 100, "models/current.pt"
    )  # rolled back: v1 is not in the latest manifest
    rolled_back = run_backup(data_store, backups, "startup-042")
    assert (rolled_back.bytes_uploaded, rolled_back.bytes_deduplicated) == (0, 800)


def test_empty_tenant_gives_an_empty_restorable_backup(data_store, local_backups, tmp_path):
    result = run_backup(data_store, local_backups, "startup-042")
    assert (result.files, result.bytes_total) == (0, 0)
    assert restore_backup(local_backups, "startup-042", LocalFileStore(tmp_path / "t")).ok


def test_keys_are_tenant_scoped(data_store, local_backups):
    seed_tenant(data_store, "startup-042")
    seed_tenant(data_store, "enterprise-001", seed=7)
    run_backup(data_store, local_backups, "startup-042")
    keys = [info.key for info in local_backups.list("tenants")]
    assert keys and all(k.startswith("tenants/startup-042/") for k in keys)


@pytest.mark.parametrize("tenant", ["../enterprise-001", "Enterprise-001", "a/b", "", "x" * 41, "-a", "a_b"])
def test_hostile_tenant_ids_are_rejected_before_any_io(data_store, local_backups, tmp_path, tenant):
    with pytest.raises(InvalidTenantId):
        run_backup(data_store, local_backups, tenant)
    with pytest.raises(InvalidTenantId):
        restore_backup(local_backups, tenant, LocalFileStore(tmp_path / "t"))
    assert not (tmp_path / "backups").exists()


def test_backup_store_inside_the_data_is_refused(tmp_path, data_store):
    seed_tenant(data_store, "startup-042")
    inside = open_file_store(str(tmp_path / "data" / "tenants" / "startup-042" / "bk"))
    with pytest.raises(StorageError, match="overlaps"):
        run_backup(data_store, inside, "startup-042")


def test_s3_objects_are_encrypted(data_store, s3_backups, s3_client):
    seed_tenant(data_store, "startup-042")
    run_backup(data_store, s3_backups, "startup-042")
    keys = [info.key for info in s3_backups.list("tenants/startup-042")]
    assert any("/content/" in k for k in keys) and any("/manifests/" in k for k in keys)
    for key in keys:
        head = s3_client.head_object(Bucket=s3_backups.bucket, Key=f"{s3_backups.prefix}/{key}")
        assert head["ServerSideEncryption"] == "AES256"


def test_kms_key_from_settings_reaches_every_object(data_store, s3_endpoint, s3_bucket, s3_client):
    store = open_file_store(f"s3://{s3_bucket}/bk", s3_endpoint, kms_key_id="alias/tenant-backups")
    seed_tenant(data_store, "startup-042")
    run_backup(data_store, store, "startup-042")
    for info in store.list("tenants"):
        head = s3_client.head_object(Bucket=s3_bucket, Key=f"bk/{info.key}")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/tenant-backups")


def test_multipart_content_round_trips_on_s3(data_store, s3_backups, tmp_path):
    files = seed_tenant(data_store, "premium-client-001", big_bytes=11 * 1024 * 1024)
    result = run_backup(data_store, s3_backups, "premium-client-001")
    assert result.bytes_uploaded >= 11 * 1024 * 1024
    target = LocalFileStore(tmp_path / "restored")
    assert restore_backup(s3_backups, "premium-client-001", target).ok
    assert tenant_files(target, "premium-client-001") == files


def test_tampered_manifest_is_rejected(data_store, local_backups):
    seed_tenant(data_store, "startup-042")
    result = run_backup(data_store, local_backups, "startup-042")
    repo = TenantBackupRepository(local_backups, "startup-042")
    key = repo.manifest_key(result.backup_id)
    body = json.loads(local_backups.read_bytes(key))
    body["entries"][0]["size"] += 1
    local_backups.write_bytes(key, json.dumps(body).encode())
    with pytest.raises(ManifestError, match="altered or truncated"):
        repo.load_manifest(result.backup_id)
    with pytest.raises(ManifestError, match="claims tenant"):
        BackupManifest.from_json(
            local_backups.read_bytes(key), tenant="enterprise-001", backup_id=result.backup_id
        )
