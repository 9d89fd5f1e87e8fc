"""Dagster wiring of tenant backups: the daily backup asset and the checks that prove it restorable."""

import dagster as dg

from spotify_jobs.backup.core import back_up_and_prune
from spotify_jobs.backup.restore import restore_drill, verify_backup
from spotify_jobs.backup.store import FileStore, open_file_store
from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_of
from spotify_jobs.tenancy.tiers import JobType

# A daily backup that finds a garbage collection of the same tenant running (another run's) waits this
# long for it (collections are bounded to well under their 30-minute lease) before failing.
GC_WAIT_SECONDS = 20 * 60.0
BACKUP_ID = "backup_id"


def backup_store_for(platform: PlatformResource) -> FileStore:
    """The backup store at the platform's backup root."""
    return open_file_store(
        platform.backup_root, platform.s3_endpoint_url, kms_key_id=platform.backup_kms_key_id
    )


@dg.asset(
    partitions_def=tenant_daily_partitions,
    group_name="backup",
    kinds={"python", "s3"},
    owners=["team:ml-platform"],
    op_tags=step_tags(JobType.TENANT_BACKUP),
)
def tenant_backup(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    """A verified, content-addressed snapshot of everything under the tenant's data prefix (events,
    stats, models, reports). Unchanged content is not uploaded again; the manifest is written last, so a
    backup that did not finish does not exist. Afterwards the tenant's retention policy (daily, weekly,
    monthly) is applied and content no remaining manifest references is collected."""
    tenant = platform.tenant(tenant_of(context.partition_key))
    with step_meter(context, platform) as meter:
        result = back_up_and_prune(
            platform.data_store, backup_store_for(platform), tenant, gc_wait_seconds=GC_WAIT_SECONDS
        )
        meter.add_records(result.backup.files)
        meter.add_bytes(result.backup.bytes_uploaded)
    backup, collection = result.backup, result.collection
    context.log.info(
        f"backup {backup.backup_id} of {tenant.id}: {backup.files} files, {backup.bytes_uploaded} bytes "
        f"uploaded, {backup.bytes_deduplicated} deduplicated; collection {collection.status}"
    )
    return dg.MaterializeResult(
        metadata={
            BACKUP_ID: backup.backup_id,
            "files": backup.files,
            "bytes_total": backup.bytes_total,
            "bytes_uploaded": backup.bytes_uploaded,
            "bytes_deduplicated": backup.bytes_deduplicated,
            "seconds": backup.seconds,
            "manifest": dg.MetadataValue.path(backup.manifest_uri),
            "backups_kept": len(result.retention.kept),
            "backups_deleted": len(result.retention.deleted),
            "collection_status": collection.status,
            "content_objects_deleted": collection.deleted_objects,
            "content_bytes_deleted": collection.deleted_bytes,
        }
    )


def _checked_backup_id(context: dg.AssetCheckExecutionContext) -> str | None:
    """The backup the latest materialization of this partition made (the one of this run, when the check
    runs with the asset)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=tenant_backup.key, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get(BACKUP_ID)
    return value.value if value is not None else None


def _no_backup(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        description=f"no tenant_backup materialization with a backup id for partition {context.partition_key}",
    )


@dg.asset_check(
    asset=tenant_backup,
    partitions_def=tenant_daily_partitions,
    blocking=True,
    op_tags=step_tags(JobType.TENANT_BACKUP),
)
def tenant_backup_manifest_verified(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """The backup's manifest is intact (matches its digest) and every file it lists has its content
    object in the store with the right size."""
    backup_id = _checked_backup_id(context)
    if backup_id is None:
        return _no_backup(context)
    result = verify_backup(backup_store_for(platform), tenant_of(context.partition_key), backup_id)
    return dg.AssetCheckResult(
        passed=result.ok,
        metadata={
            BACKUP_ID: backup_id,
            "files": result.files,
            "missing": len(result.missing),
            "wrong_size": len(result.wrong_size),
            "first_problems": ", ".join((result.missing + result.wrong_size)[:10]) or "none",
        },
    )


@dg.asset_check(
    asset=tenant_backup,
    partitions_def=tenant_daily_partitions,
    op_tags=step_tags(JobType.TENANT_BACKUP),
)
def tenant_backup_restore_drill(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """Restore drill: the backup is restored into a scratch prefix of the backup root, every file is read
    back and its SHA-256 compared with the manifest, and the scratch prefix is deleted."""
    backup_id = _checked_backup_id(context)
    if backup_id is None:
        return _no_backup(context)
    result = restore_drill(
        backup_store_for(platform),
        platform.backup_root,
        tenant_of(context.partition_key),
        backup=backup_id,
        s3_endpoint_url=platform.s3_endpoint_url,
    )
    return dg.AssetCheckResult(
        passed=result.ok and result.verified == result.files,
        metadata={
            BACKUP_ID: backup_id,
            "files": result.files,
            "verified": result.verified,
            "failed": len(result.failed),
            "bytes_restored": result.bytes_written,
            "seconds": result.seconds,
            "first_failures": ", ".join(f["path"] for f in result.failed[:10]) or "none",
        },
    )


assets = [tenant_backup]
asset_checks = [tenant_backup_manifest_verified, tenant_backup_restore_drill]
