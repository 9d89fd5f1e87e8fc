"""`spotify-jobs`: the job-management CLI. Each domain adds its commands from its own module here."""

from __future__ import annotations

import click

from spotify_jobs.cli import backup, observability, ops, ops_health
from spotify_jobs.cli.bench import bench
from spotify_jobs.cli.billing import billing
from spotify_jobs.cli.deploy import render_base, render_tenant
from spotify_jobs.cli.etl import bench_etl, generate_data
from spotify_jobs.cli.k8s import render_manifests
from spotify_jobs.cli.main_job import run_main
from spotify_jobs.cli.security import compliance_check, security_scan
from spotify_jobs.cli.train import bench_train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run and inspect spotify_jobs' multi-tenant batch jobs."""


bench.add_command(bench_etl)
bench.add_command(bench_train)
for command in (
    generate_data,
    bench,
    render_manifests,
    render_tenant,
    render_base,
    run_main,
    billing,
    security_scan,
    compliance_check,
    *backup.commands,
    *observability.commands,
    *ops.commands,
    *ops_health.commands,
):
    main.add_command(command)
