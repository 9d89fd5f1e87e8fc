"""Protects the Dagster wiring: the backup asset's metadata, its manifest and restore-drill checks (which
must fail on a damaged backup), and the restore and migration jobs."""

from __future__ import annotations

import dagster as dg
import pytest

from spotify_jobs.backup.assets import (
    asset_checks,
    assets,
    tenant_backup,
)
from spotify_jobs.backup.jobs import jobs, tenant_migration_job, tenant_restore_job
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.store import LocalFileStore
from spotify_jobs.k8s.tags import JOB_TYPE_TAG
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key
from spotify_jobs_tests.backup.helpers import seed_tenant, tenant_files

TENANT = "startup-042"


@pytest.fixture
def instance():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    return instance


def _resources(platform) -> dict:
    return {"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)}


def _materialize(platform, instance, date="2026-11-01"):
    return dg.materialize(
        [*assets, *asset_checks],
        partition_key=tenant_date_key(TENANT, date),
        resources=_resources(platform),
        instance=instance,
    )


def _run_checks_only(platform, instance, date="2026-11-01"):
    job = dg.define_asset_job(
        "backup_checks",
        selection=dg.AssetSelection.checks_for_assets(tenant_backup),
        partitions_def=tenant_daily_partitions,
    )
    defs = dg.Definitions(
        assets=assets, asset_checks=asset_checks, jobs=[job], resources=_resources(platform)
    )
    # A checks-only selection has no asset to take partitions from, so the partition comes as run tags,
    # as the UI and schedules set them.
    key = tenant_date_key(TENANT, date)
    return defs.resolve_job_def("backup_checks").execute_in_process(
        instance=instance,
        tags=dict(tenant_daily_partitions.get_tags_for_partition_key(key)),
        raise_on_error=False,
    )


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_definitions_follow_the_platform_conventions():
    assert tenant_backup.op.tags[JOB_TYPE_TAG] == "tenant-backup"
    assert tenant_backup.group_names_by_key[tenant_backup.key] == "backup"
    assert tenant_backup.descriptions_by_key[tenant_backup.key]
    assert {j.name for j in jobs} == {"tenant_restore_job", "tenant_migration_job"}
    for job in jobs:
        assert job.tags[JOB_TYPE_TAG] == "tenant-backup"
        assert "platform" in job.required_resource_keys


def test_backup_asset_metadata_and_checks(platform, instance):
    files = seed_tenant(platform.data_store, TENANT)
    result = _materialize(platform, instance)
    assert result.success
    [materialization] = result.asset_materializations_for_node("tenant_backup")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["files"] == len(files)
    assert meta["bytes_uploaded"] + meta["bytes_deduplicated"] == meta["bytes_total"] > 0
    repo = TenantBackupRepository(LocalFileStore(platform.backup_root), TENANT)
    assert repo.backup_ids() == [meta["backup_id"]]
    checks = _checks(result)
    assert checks["tenant_backup_manifest_verified"].passed
    drill = checks["tenant_backup_restore_drill"]
    assert drill.passed and drill.metadata["verified"].value == len(files)

    again = _materialize(platform, instance, date="2026-11-02")
    [second] = again.asset_materializations_for_node("tenant_backup")
    assert second.metadata["bytes_uploaded"].value == 0
    assert not list(LocalFileStore(platform.backup_root).list("restore-drills"))  # the drill cleaned up


def test_checks_fail_on_a_damaged_backup(platform, instance):
    seed_tenant(platform.data_store, TENANT)
    _materialize(platform, instance)
    repo = TenantBackupRepository(LocalFileStore(platform.backup_root), TENANT)
    manifest = repo.load_manifest("latest")
    victim = max(manifest.entries, key=lambda e: e.size)
    repo.store.delete(repo.content_key(victim.sha256))
    rerun = _run_checks_only(platform, instance)
    assert not rerun.asset_materializations_for_node("tenant_backup")  # checks only
    checks = _checks(rerun)
    assert not checks["tenant_backup_manifest_verified"].passed
    assert checks["tenant_backup_manifest_verified"].metadata["missing"].value >= 1
    assert not checks["tenant_backup_restore_drill"].passed
    assert victim.path in checks["tenant_backup_restore_drill"].metadata["first_failures"].value


def _run_config(op: str, **config) -> dict:
    return {"ops": {op: {"config": config}}}


def test_restore_job_dry_run_refusal_and_restore(platform, instance, tmp_path):
    files = seed_tenant(platform.data_store, TENANT)
    _materialize(platform, instance)
    live = TenantStorage(platform.data_store, TENANT)
    live.write_bytes(b"changed after the backup", "reports/summary.json")
    resources = {"platform": platform}

    dry = tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT, dry_run=True),
        resources=resources,
        instance=instance,
    )
    assert dry.success
    assert live.read_bytes("reports/summary.json") == b"changed after the backup"

    refused = tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not refused.success
    assert live.read_bytes("reports/summary.json") == b"changed after the backup"

    done = tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT, overwrite=True),
        resources=resources,
        instance=instance,
    )
    assert done.success
    assert tenant_files(platform.data_store, TENANT) == files

    elsewhere = tmp_path / "elsewhere"
    tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT, target_root=str(elsewhere)),
        resources=resources,
        instance=instance,
    )
    assert tenant_files(LocalFileStore(elsewhere), TENANT) == files


def test_restore_job_fails_when_verification_fails(platform, instance, tmp_path):
    seed_tenant(platform.data_store, TENANT)
    _materialize(platform, instance)
    repo = TenantBackupRepository(LocalFileStore(platform.backup_root), TENANT)
    victim = max(repo.load_manifest("latest").entries, key=lambda e: e.size)
    (tmp_path / "backups" / repo.content_key(victim.sha256)).write_bytes(b"\0" * victim.size)
    result = tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT, target_root=str(tmp_path / "t")),
        resources={"platform": platform},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "failed verification" in failure.step_failure_data.error.message


def test_migration_job(platform, instance, tmp_path):
    files = seed_tenant(platform.data_store, TENANT)
    target = tmp_path / "other-environment"
    result = tenant_migration_job.execute_in_process(
        run_config=_run_config("migrate_tenant_data", tenant=TENANT, target_root=str(target)),
        resources={"platform": platform},
        instance=instance,
    )
    assert result.success
    assert tenant_files(LocalFileStore(target), TENANT) == files
    same = tenant_migration_job.execute_in_process(
        run_config=_run_config("migrate_tenant_data", tenant=TENANT, target_root=platform.data_root),
        resources={"platform": platform},
        instance=instance,
        raise_on_error=False,
    )
    assert not same.success
