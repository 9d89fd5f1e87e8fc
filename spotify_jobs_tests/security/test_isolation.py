"""Protects the backup evidence: fresh within the daily schedule, encrypted on S3, and the tenant's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.store import LocalFileStore, open_file_store
from spotify_jobs.security.isolation import BACKUP_GRACE, BACKUP_INTERVAL, check_backups
from spotify_jobs.security.report import evaluate_controls
from spotify_jobs.storage.object_store import LocalObjectStore, S3ObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import load_registry

TENANT = load_registry().get("startup-042")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def statuses(ledger) -> dict[str, str]:
    return {r.id: r.status for r in evaluate_controls(ledger) if r.id.startswith("TEN-")}


@pytest.fixture
def data_store(tmp_path):
    store = LocalObjectStore(tmp_path / "data")
    storage = TenantStorage(store, TENANT.id)
    storage.write_bytes(b"one", "assets/a/date=2026-11-26.parquet")
    storage.write_bytes(b"two", "landing/2026-11-26/export-a/Streaming_History_Audio_2026_0.json")
    return store


@pytest.fixture
def s3_backups(s3_endpoint, s3_bucket):
    return open_file_store(f"s3://{s3_bucket}/backups", s3_endpoint)


def test_a_fresh_encrypted_backup_on_s3_passes(data_store, s3_backups):
    run_backup(data_store, s3_backups, TENANT.id, now=NOW - timedelta(hours=20))
    ledger = check_backups(s3_backups, TENANT, NOW, "production")
    assert ledger.findings == []
    assert statuses(ledger) == {"TEN-CROSS-TENANT-OBJECT": "pass", "TEN-BACKUP-FRESH": "pass",
                                "TEN-BACKUP-ENCRYPTED": "pass"}  # fmt: skip


def test_a_backup_older_than_the_schedule_allows_fails(data_store, s3_backups):
    age = BACKUP_INTERVAL + BACKUP_GRACE + timedelta(minutes=5)
    run_backup(data_store, s3_backups, TENANT.id, now=NOW - age)
    [finding] = check_backups(s3_backups, TENANT, NOW, "production").findings
    assert finding.control == "TEN-BACKUP-FRESH"
    assert "30.1 h old" in finding.message and "allows 30.0 h" in finding.message
    assert (
        "164.308(a)(7)(ii)(A)" in finding.frameworks["HIPAA"]
        and "A.8.13" in finding.frameworks["ISO-27001-2022"]
    )


def test_no_backup_at_all_fails_freshness(s3_backups):
    ledger = check_backups(s3_backups, TENANT, NOW, "production")
    assert [f.control for f in ledger.findings] == ["TEN-BACKUP-FRESH"]
    assert "no complete backup" in ledger.findings[0].message
    assert statuses(ledger)["TEN-BACKUP-ENCRYPTED"] == "not_applicable"


def test_unencrypted_backup_objects_on_s3_fail(data_store, s3_backups, s3_endpoint, s3_bucket):
    run_backup(data_store, s3_backups, TENANT.id, now=NOW - timedelta(hours=1))
    # Rewrite the manifest without server-side encryption, as a store without SSE would have written it.
    plain = S3ObjectStore(s3_bucket, "backups", endpoint_url=s3_endpoint)
    repo = TenantBackupRepository(s3_backups, TENANT.id)
    [backup_id] = repo.backup_ids()
    key = repo.manifest_key(backup_id)
    plain.write_bytes(key, s3_backups.read_bytes(key))
    [finding] = check_backups(s3_backups, TENANT, NOW, "production").findings
    assert finding.control == "TEN-BACKUP-ENCRYPTED"
    assert finding.message.startswith("1 of 3 objects checked have no server-side encryption")
    assert "3.5.1" in finding.frameworks["PCI-DSS-4.0"]


def test_local_backups_do_not_apply_in_development_and_fail_elsewhere(data_store, tmp_path):
    backups = LocalFileStore(tmp_path / "backups")
    run_backup(data_store, backups, TENANT.id, now=NOW - timedelta(hours=2))
    development = check_backups(backups, TENANT, NOW, "development")
    assert development.findings == []
    assert statuses(development)["TEN-BACKUP-ENCRYPTED"] == "not_applicable"
    assert "host disk" in development.not_applicable["TEN-BACKUP-ENCRYPTED"]
    [finding] = check_backups(backups, TENANT, NOW, "production").findings
    assert finding.control == "TEN-BACKUP-ENCRYPTED" and "local filesystem" in finding.message


def test_a_manifest_naming_another_tenant_is_a_cross_tenant_object(data_store, tmp_path):
    backups = LocalFileStore(tmp_path / "backups")
    run_backup(data_store, backups, TENANT.id, now=NOW - timedelta(hours=3))
    repo = TenantBackupRepository(backups, TENANT.id)
    [backup_id] = repo.backup_ids()
    body = json.loads(backups.read_bytes(repo.manifest_key(backup_id)))
    body["tenant"] = "enterprise-001"
    backups.write_bytes(repo.manifest_key(backup_id), json.dumps(body).encode())
    ledger = check_backups(backups, TENANT, NOW, "development")
    assert {f.control for f in ledger.findings} == {"TEN-CROSS-TENANT-OBJECT", "TEN-BACKUP-FRESH"}
    crossed = next(f for f in ledger.findings if f.control == "TEN-CROSS-TENANT-OBJECT")
    assert crossed.object.kind == "BackupManifest" and "'enterprise-001'" in crossed.message


def test_a_tampered_manifest_does_not_count_as_a_backup(data_store, tmp_path):
    backups = LocalFileStore(tmp_path / "backups")
    run_backup(data_store, backups, TENANT.id, now=NOW - timedelta(hours=3))
    repo = TenantBackupRepository(backups, TENANT.id)
    [backup_id] = repo.backup_ids()
    body = json.loads(backups.read_bytes(repo.manifest_key(backup_id)))
    body["entries"] = body["entries"][:1]
    backups.write_bytes(repo.manifest_key(backup_id), json.dumps(body).encode())
    ledger = check_backups(backups, TENANT, NOW, "development")
    assert [f.control for f in ledger.findings] == ["TEN-BACKUP-FRESH"]
    assert any("not counted" in note for note in ledger.notes)
