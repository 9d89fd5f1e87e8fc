"""`render-tenant` / `render-base`: the Kubernetes objects of tenant namespaces and of the platform,
written as kustomize directories (`kubectl apply -k DIR`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.k8s.tenant_objects import ClusterProfile, platform_files, render_tenants, write_files
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry

_PROFILE = click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Cluster profile YAML (e.g. deploy/k8s/profiles/production.yaml); its fields override settings.",
)
_OUT = click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)


@click.command("render-tenant")
@click.option("--tenant", "tenant_id", default=None, help="Tenant id from the registry.")
@click.option("--all", "all_tenants", is_flag=True, help="Every tenant in the registry.")
@_PROFILE
@click.option(
    "--iam-role-arn",
    default=None,
    help="Per-tenant IAM role for the step ServiceAccount, e.g. arn:aws:iam::123:role/sj-{environment}-{tenant}.",
)
@_OUT
@fail_on_bad_input
def render_tenant(tenant_id, all_tenants, profile_path, iam_role_arn, out_dir) -> None:
    """Write each tenant's namespace objects to OUT/<tenant>/ (a kustomization; kueue/ adds Kueue queues)."""
    if bool(tenant_id) == all_tenants:
        raise click.UsageError("give exactly one of --tenant T or --all")
    settings = load_settings()
    overrides = {} if iam_role_arn is None else {"iam_role_arn": iam_role_arn}
    profile = ClusterProfile.load(settings, profile_path, **overrides)
    registry = load_registry(settings.tenant_registry)
    tenant_ids = registry.ids if all_tenants else [registry.get(tenant_id).id]
    written = render_tenants(registry, profile, tenant_ids, out_dir)
    click.echo(
        json.dumps(
            {
                "environment": profile.environment,
                "tenants": tenant_ids,
                "out": str(out_dir),
                "files": sum(len(paths) for paths in written.values()),
            }
        )
    )


@click.command("render-base")
@_PROFILE
@_OUT
@fail_on_bad_input
def render_base(profile_path, out_dir) -> None:
    """Write the platform's kustomize base to OUT (kueue/ adds the Kueue cluster objects)."""
    profile = ClusterProfile.load(load_settings(), profile_path)
    written = write_files(platform_files(profile), out_dir)
    click.echo(json.dumps({"environment": profile.environment, "out": str(out_dir), "files": len(written)}))
