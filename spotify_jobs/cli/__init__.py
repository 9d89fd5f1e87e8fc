"""`spotify-jobs`: the job-management CLI. Each domain adds its commands from its own module here."""

from __future__ import annotations

import click

from spotify_jobs.cli.deploy import render_base, render_tenant
from spotify_jobs.cli.k8s import render_manifests
from spotify_jobs.cli.main_job import run_main


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run and inspect spotify_jobs' multi-tenant batch jobs."""


for command in (render_manifests, render_tenant, render_base, run_main):
    main.add_command(command)
