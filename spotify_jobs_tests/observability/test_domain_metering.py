"""Domain steps carry their step meter: the backup asset and the restore op record their usage in the instance."""

from __future__ import annotations

import dagster as dg

from spotify_jobs.backup.assets import tenant_backup
from spotify_jobs.backup.jobs import tenant_restore_job
from spotify_jobs.tenancy.partitions import tenant_date_key
from spotify_jobs_tests.backup.helpers import seed_tenant
from spotify_jobs_tests.backup.test_assets import TENANT, _materialize, _run_config
from spotify_jobs_tests.observability.test_metering import _usage


def _stored_usage(instance, date: str) -> dict[str, object]:
    """The `usage/...` metadata of the backup's materialisation of `date`, as the instance stored it."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=tenant_backup.key, asset_partitions=[tenant_date_key(TENANT, date)]),
        limit=1,
    ).records
    return _usage(record.asset_materialization.metadata)


def test_backup_asset_records_files_and_uploaded_bytes_in_the_instance(platform):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    files = seed_tenant(platform.data_store, TENANT)
    assert _materialize(platform, instance, date="2026-11-01").success
    assert _materialize(platform, instance, date="2026-11-02").success

    first, second = _stored_usage(instance, "2026-11-01"), _stored_usage(instance, "2026-11-02")
    assert first["outcome"] == "success" and first["wall_seconds"] > 0
    assert first["tenant"] == TENANT and first["job_type"] == "tenant-backup"
    assert first["tier"] == "small" and first["priority"] == "low"  # startup-042 in the registry
    assert first["records"] == len(files)
    # Content-addressed: the first backup uploads each distinct content once, the next one nothing.
    assert first["bytes_processed"] == sum(len(content) for content in set(files.values())) > 0
    assert second["records"] == len(files) and second["bytes_processed"] == 0


def test_restore_op_records_files_and_restored_bytes_on_its_output(platform, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    files = seed_tenant(platform.data_store, TENANT)
    assert _materialize(platform, instance).success

    target = tmp_path / "restored"
    result = tenant_restore_job.execute_in_process(
        run_config=_run_config("restore_tenant_backup", tenant=TENANT, target_root=str(target)),
        resources={"platform": platform},
        instance=instance,
    )
    [output] = [
        event
        for event in result.events_for_node("restore_tenant_backup")
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT
    ]
    usage = _usage(output.step_output_data.metadata)
    assert usage["outcome"] == "success" and usage["wall_seconds"] > 0
    assert usage["tenant"] == TENANT and usage["job_type"] == "tenant-backup"
    assert usage["records"] == len(files)
    assert usage["bytes_processed"] == sum(len(content) for content in files.values()) > 0
