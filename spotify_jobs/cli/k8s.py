"""`render-manifests`: the exact step Job bodies a run would submit (what DRY_RUN prints)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from spotify_jobs.automation.run_requests import tenant_run
from spotify_jobs.cli.common import fail_on_bad_input, tenant_job_spec
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.k8s.manifests import render_step_manifests, write_manifests
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry


@click.command("render-manifests")
@click.option("--job", "job_name", required=True, help="Job name, e.g. data_etl_job.")
@click.option("--tenant", required=True, help="Tenant id from the registry.")
@click.option("--priority", default=None, help="critical|high|normal|low|batch (default: the tenant's).")
@click.option(
    "--tier", default=None, help="micro|small|medium|large|xlarge|enterprise (default: the tenant's)."
)
@click.option("--date", default=None, help="Partition date for daily jobs (default: today, UTC).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@fail_on_bad_input
def render_manifests(job_name, tenant, priority, tier, date, out_dir) -> None:
    """Write one YAML file per step: the Kubernetes Job dagster-k8s would create for it."""
    settings = load_settings(executor="k8s")
    spec = tenant_job_spec(job_name)
    factory = TenantJobFactory(settings, load_registry(settings.tenant_registry))
    when = date or dt.datetime.now(dt.UTC).date().isoformat()
    run_config, tags = tenant_run(factory, spec, tenant, when, tier=tier, priority=priority)
    manifests = render_step_manifests(spec.name, run_config, tags, settings)
    paths = write_manifests(manifests, out_dir)
    click.echo(
        json.dumps(
            {
                "job": spec.name,
                "tenant": tenant,
                "namespace": manifests[0].namespace,
                "files": [str(p) for p in paths],
            }
        )
    )
