"""`security-scan` and `compliance-check`: the security_scan asset's code, from the command line.

Both scan the chosen tenants (the same `run_scans` the asset calls), store each report under the
tenant's `reports/security/<date>/` (unless --no-store) and exit 1 when a critical control failed,
2 on bad input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.resources import PlatformResource
from spotify_jobs.security.report import ScanReport
from spotify_jobs.security.scan import run_scans
from spotify_jobs.settings import load_settings


def _scan(tenant_ids, all_tenants, date, profile_path, checkov, no_store) -> list[ScanReport]:
    settings = load_settings()
    platform = PlatformResource.from_settings(settings)
    if all_tenants and tenant_ids:
        raise click.UsageError("give --tenant or --all, not both")
    chosen = platform.registry.ids if all_tenants or not tenant_ids else list(tenant_ids)
    day = date or dt.datetime.now(dt.UTC).date().isoformat()
    dt.date.fromisoformat(day)  # ValueError (exit 2) for a malformed --date
    return run_scans(
        platform, settings, chosen, day, profile_path=profile_path, checkov=checkov, store=not no_store
    )


def _scan_options(command):
    options = (
        click.option("--tenant", "tenant_ids", multiple=True, help="Tenant id (repeatable)."),
        click.option("--all", "all_tenants", is_flag=True, help="Every tenant in the registry."),
        click.option("--date", default=None, help="Report date, YYYY-MM-DD (default: today, UTC)."),
        click.option(
            "--profile",
            "profile_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Cluster profile YAML (e.g. deploy/k8s/profiles/production.yaml) whose namespaces to check.",
        ),
        click.option(
            "--checkov",
            default=None,
            help="checkov executable in its own environment (default: `checkov` on PATH, if any; '' disables).",
        ),
        click.option("--no-store", is_flag=True, help="Do not write the reports to tenant storage."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _exit_for(reports: list[ScanReport]) -> None:
    if any(not report.passed for report in reports):
        raise SystemExit(1)


@click.command("security-scan")
@_scan_options
@click.option("--format", "output_format", type=click.Choice(["json", "markdown"]), default="json")
@fail_on_bad_input
def security_scan(tenant_ids, all_tenants, date, profile_path, checkov, no_store, output_format) -> None:
    """Scan tenants (--tenant T or --all): findings and per-framework scores, one JSON line per tenant
    (or the Markdown report); exit 1 when a critical control failed."""
    if not tenant_ids and not all_tenants:
        raise click.UsageError("give --tenant T (repeatable) or --all")
    reports = _scan(tenant_ids, all_tenants, date, profile_path, checkov, no_store)
    for report in reports:
        if output_format == "markdown":
            click.echo(report.to_markdown())
            continue
        full = report.to_dict()
        keys = ("tenant", "date", "passed", "critical_failures", "scores", "findings", "notes", "trend")
        click.echo(json.dumps({key: full[key] for key in keys}))
    _exit_for(reports)


@click.command("compliance-check")
@_scan_options
@fail_on_bad_input
def compliance_check(tenant_ids, all_tenants, date, profile_path, checkov, no_store) -> None:
    """Verdict per tenant (every tenant unless --tenant): one JSON line with the scores and the critical
    controls that failed; exit 1 when any critical control failed."""
    reports = _scan(tenant_ids, all_tenants, date, profile_path, checkov, no_store)
    for report in reports:
        line = {
            "tenant": report.tenant,
            "date": report.date,
            "passed": report.passed,
            "critical_failures": [r.id for r in report.critical_failures],
            "failed_controls": [r.id for r in report.controls if r.status == "fail"],
            "scores": {name: entry["score"] for name, entry in report.scores.items()},
            "lowest_score": report.lowest_score,
        }
        click.echo(json.dumps(line))
    _exit_for(reports)
