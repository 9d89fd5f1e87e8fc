"""Op-based jobs for restoring a tenant's backup and migrating a tenant to another environment."""

import dagster as dg
from pydantic import Field

from spotify_jobs.backup.assets import backup_store_for
from spotify_jobs.backup.manifest import LATEST
from spotify_jobs.backup.restore import RestoreRefused, RestoreResult, migrate_tenant, restore_backup
from spotify_jobs.backup.store import open_file_store
from spotify_jobs.k8s.tags import JOB_TYPE_TAG, step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.registry import validate_tenant_id
from spotify_jobs.tenancy.tiers import JobType


class RestoreConfig(dg.Config):
    tenant: str = Field(description="Tenant id whose backup to restore.")
    backup: str = Field(LATEST, description="Backup id, or 'latest'.")
    target_root: str | None = Field(
        None, description="Data root to restore into (directory or s3://bucket/prefix); default: this one."
    )
    target_s3_endpoint_url: str | None = Field(None, description="S3 endpoint of the target, if another.")
    dry_run: bool = Field(False, description="Only list what would change.")
    overwrite: bool = Field(False, description="Replace files that differ from the backup.")


class MigrationConfig(dg.Config):
    tenant: str = Field(description="Tenant id to copy.")
    target_root: str = Field(
        description="The other environment's data root (directory or s3://bucket/prefix)."
    )
    target_s3_endpoint_url: str | None = Field(None, description="S3 endpoint of the target, if another.")
    dry_run: bool = Field(False, description="Back up, then only list what the restore would change.")
    overwrite: bool = Field(False, description="Replace files in the target that differ.")


def _restore_metadata(result: RestoreResult) -> dict[str, object]:
    return {
        "backup_id": result.backup_id,
        "target": result.target,
        "dry_run": result.dry_run,
        "files": result.files,
        "created": result.created,
        "overwritten": result.overwritten,
        "unchanged": result.unchanged,
        "verified": result.verified,
        "bytes_written": result.bytes_written,
        "failed": len(result.failed),
        "seconds": result.seconds,
        "changes": dg.MetadataValue.json([{"path": c.path, "action": c.action} for c in result.changes]),
        "extra_in_target": len(result.extra),
    }


def _fail_unless_ok(result: RestoreResult) -> None:
    if not result.ok:
        shown = "; ".join(f"{f['path']}: {f['error']}" for f in result.failed[:10])
        raise dg.Failure(
            description=f"{len(result.failed)} of {result.files} files failed verification: {shown}",
            metadata=_restore_metadata(result),
        )


@dg.op(out=dg.Out(dg.Nothing), tags=step_tags(JobType.TENANT_BACKUP))
def restore_tenant_backup(
    context: dg.OpExecutionContext, config: RestoreConfig, platform: PlatformResource
) -> dg.Output:
    """Restore a backup (an id or `latest`) into the platform's data root or `target_root`, verifying
    every file's SHA-256; differing files are overwritten only with `overwrite`."""
    tenant = validate_tenant_id(config.tenant)
    target = open_file_store(
        config.target_root or platform.data_root, config.target_s3_endpoint_url or platform.s3_endpoint_url
    )
    with step_meter(context, platform, tenant=tenant) as meter:
        try:
            result = restore_backup(
                backup_store_for(platform),
                tenant,
                target,
                backup=config.backup,
                dry_run=config.dry_run,
                overwrite=config.overwrite,
            )
        except RestoreRefused as exc:
            raise dg.Failure(description=str(exc)) from exc
        meter.add_records(result.files)
        meter.add_bytes(result.bytes_written)
        context.log.info(f"restore of {tenant} from {result.backup_id}: {result.as_dict(with_changes=False)}")
        _fail_unless_ok(result)
    return dg.Output(None, metadata=_restore_metadata(result))


@dg.op(out=dg.Out(dg.Nothing), tags=step_tags(JobType.TENANT_BACKUP))
def migrate_tenant_data(
    context: dg.OpExecutionContext, config: MigrationConfig, platform: PlatformResource
) -> dg.Output:
    """Back up the tenant now and restore exactly that backup, verified, into `target_root` (another
    environment's data root, bucket or prefix)."""
    tenant = validate_tenant_id(config.tenant)
    endpoint = config.target_s3_endpoint_url or platform.s3_endpoint_url
    if config.target_root == platform.data_root and endpoint == platform.s3_endpoint_url:
        raise dg.Failure(description=f"migration target {config.target_root} is the tenant's own data root")
    with step_meter(context, platform, tenant=tenant) as meter:
        try:
            result = migrate_tenant(
                platform.data_store,
                backup_store_for(platform),
                tenant,
                open_file_store(config.target_root, endpoint),
                overwrite=config.overwrite,
                dry_run=config.dry_run,
            )
        except RestoreRefused as exc:
            raise dg.Failure(description=str(exc)) from exc
        meter.add_records(result.restore.files)
        meter.add_bytes(result.backup.bytes_uploaded + result.restore.bytes_written)
        context.log.info(f"migration of {tenant}: {result.as_dict()}")
        _fail_unless_ok(result.restore)
    metadata = _restore_metadata(result.restore)
    metadata["bytes_uploaded"] = result.backup.bytes_uploaded
    return dg.Output(None, metadata=metadata)


@dg.job(tags={JOB_TYPE_TAG: JobType.TENANT_BACKUP.value})
def tenant_restore_job() -> None:
    """Restore one tenant's backup, every file verified, with a dry run that lists what would change."""
    restore_tenant_backup()


@dg.job(tags={JOB_TYPE_TAG: JobType.TENANT_BACKUP.value})
def tenant_migration_job() -> None:
    """Copy one tenant's data to another environment, bucket or prefix through a backup and a verified
    restore."""
    migrate_tenant_data()


jobs = [tenant_restore_job, tenant_migration_job]
