"""`spotify-jobs`: the job-management CLI. Each domain adds its commands from its own module here."""

from __future__ import annotations

import click

from spotify_jobs.cli.k8s import render_manifests


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run and inspect spotify_jobs' multi-tenant batch jobs."""


for command in (render_manifests,):
    main.add_command(command)
