"""`spotify-jobs backup run|list|restore` and `backup-configs` / `restore-configs`: one JSON line each.

The same functions as the `tenant_backup` asset and the restore job; exit code 0 on success, 1 when a
restore fails verification or is refused (the JSON line says why), 2 on bad input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from spotify_jobs.backup.assets import backup_store_for
from spotify_jobs.backup.configs import PROJECT_ROOT, ConfigRestoreRefused, backup_configs, restore_configs
from spotify_jobs.backup.core import BackupConflict, back_up_and_prune
from spotify_jobs.backup.manifest import LATEST, ManifestError
from spotify_jobs.backup.repository import BackupNotFound, TenantBackupRepository
from spotify_jobs.backup.restore import RestoreRefused, restore_backup
from spotify_jobs.backup.store import open_file_store
from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.object_store import open_store
from spotify_jobs.tenancy.registry import load_registry, validate_tenant_id


def _emit(payload: dict[str, object]) -> None:
    click.echo(json.dumps(payload, default=str))


def _fail(payload: dict[str, object]) -> None:
    _emit({"ok": False, **payload})
    raise SystemExit(1)


@click.group("backup")
def backup() -> None:
    """Back up, list and restore one tenant's data (content-addressed, SHA-256 verified)."""


@backup.command("run")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--rehash", is_flag=True, help="Read and hash every file, not trusting size and mtime.")
@fail_on_bad_input
def run_backup_command(tenant: str, rehash: bool) -> None:
    """Back up the tenant now, then apply its retention policy and collect unreferenced content."""
    settings = load_settings()
    tenant_spec = load_registry(settings.tenant_registry).get(tenant)
    try:
        result = back_up_and_prune(
            open_store(settings.data_root, settings.s3_endpoint_url),
            backup_store_for(PlatformResource.from_settings(settings)),
            tenant_spec,
            rehash=rehash,
        )
    except (BackupConflict, ManifestError) as exc:
        _fail({"tenant": tenant, "error": str(exc)})
    _emit({"ok": True, **result.as_dict()})


@backup.command("list")
@click.option("--tenant", required=True, help="Tenant id.")
@fail_on_bad_input
def list_backups(tenant: str) -> None:
    """The tenant's complete backups, oldest first."""
    settings = load_settings()
    repo = TenantBackupRepository(backup_store_for(PlatformResource.from_settings(settings)), tenant)
    _emit({"tenant": repo.tenant, "backups": [m.summary() for m in repo.manifests()]})


@backup.command("restore")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--backup", "backup_id", default=LATEST, show_default=True, help="Backup id or 'latest'.")
@click.option("--target", required=True, help="Data root to restore into: a directory or s3://bucket/prefix.")
@click.option("--dry-run", is_flag=True, help="Only list what would change.")
@click.option("--overwrite", is_flag=True, help="Replace files that differ from the backup.")
@fail_on_bad_input
def restore(tenant: str, backup_id: str, target: str, dry_run: bool, overwrite: bool) -> None:
    """Restore a backup into TARGET's tenants/<tenant>/ prefix, verifying every file's SHA-256."""
    settings = load_settings()
    tenant = validate_tenant_id(tenant)
    try:
        result = restore_backup(
            backup_store_for(PlatformResource.from_settings(settings)),
            tenant,
            open_file_store(target, settings.s3_endpoint_url, kms_key_id=settings.backup_kms_key_id),
            backup=backup_id,
            dry_run=dry_run,
            overwrite=overwrite,
        )
    except (RestoreRefused, BackupNotFound, ManifestError) as exc:
        _fail({"tenant": tenant, "backup_id": backup_id, "error": str(exc)})
    if not result.ok:
        _fail(result.as_dict())
    _emit(result.as_dict(with_changes=dry_run))


_repo_root_option = click.option(
    "--repo-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=PROJECT_ROOT,
    show_default=True,
    help="Checkout holding spotify_jobs/billing/rate_cards/ and deploy/.",
)


@click.command("backup-configs")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write (default: ./spotify-jobs-configs-<UTC time>.tar.gz).",
)
@_repo_root_option
@fail_on_bad_input
def backup_configs_command(output: Path | None, repo_root: Path) -> None:
    """Archive the tenant registry, rate cards and deploy values with a SHA-256 manifest."""
    settings = load_settings()
    now = datetime.now(UTC)
    output = output or Path(f"spotify-jobs-configs-{now.strftime('%Y%m%dT%H%M%SZ')}.tar.gz")
    result = backup_configs(output, registry_path=settings.tenant_registry, repo_root=repo_root, now=now)
    _emit({"ok": True, **result.as_dict()})


@click.command("restore-configs")
@click.option(
    "--file", "archive", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--dry-run", is_flag=True, help="Only list what would change.")
@click.option("--overwrite", is_flag=True, help="Replace config files that differ from the archive.")
@_repo_root_option
@fail_on_bad_input
def restore_configs_command(archive: Path, dry_run: bool, overwrite: bool, repo_root: Path) -> None:
    """Verify a config archive against its manifest, then restore its files to their places."""
    settings = load_settings()
    try:
        result = restore_configs(
            archive,
            registry_path=settings.tenant_registry,
            repo_root=repo_root,
            overwrite=overwrite,
            dry_run=dry_run,
        )
    except ConfigRestoreRefused as exc:
        _fail({"archive": str(archive), "error": str(exc)})
    _emit({"ok": True, **result.as_dict()})


commands = [backup, backup_configs_command, restore_configs_command]
