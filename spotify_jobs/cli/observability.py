"""`spotify-jobs audit` (a tenant's audit trail, and its verification) and `spotify-jobs sla-report`.

`audit --tenant T` prints the trail's records oldest first, one JSON line each; `--verify` prints one JSON
line with the chain check instead and exits 1 when the chain is broken. `sla-report` prints the SLA and
utilisation table (or `--json`, one line) of the runs in the Dagster instance of $DAGSTER_HOME that ended in
the window; `--fail-on-breach` exits 1 when a target was missed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import dagster as dg
from dagster._core.errors import DagsterHomeNotSetError

from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.observability.audit import AuditTrail
from spotify_jobs.observability.sla import compute_sla
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.object_store import open_store
from spotify_jobs.storage.tenant_storage import TenantStorage


def _emit(payload: object) -> None:
    click.echo(json.dumps(payload, default=str, sort_keys=True))


@click.command("audit")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--verify", is_flag=True, help="Check the hash chain instead of listing records.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N records.")
@click.option("--expected-head", default=None, help="With --verify: the head hash recorded earlier.")
@fail_on_bad_input
def audit(tenant: str, verify: bool, limit: int | None, expected_head: str | None) -> None:
    """Show (or verify) a tenant's audit trail: who started, retried, cancelled, restored, ... what, when."""
    settings = load_settings()
    trail = AuditTrail(TenantStorage(open_store(settings.data_root, settings.s3_endpoint_url), tenant))
    if verify:
        report = trail.verify_chain(expected_head=expected_head)
        _emit(report.as_dict())
        if not report.ok:
            raise SystemExit(1)
        return
    if expected_head is not None:
        raise click.UsageError("--expected-head only applies with --verify")
    records = list(trail.records())
    for record in records[-limit:] if limit else records:
        _emit(record.__dict__)


def _moment(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time", param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("sla-report")
@click.option("--since", default=None, help="Window start, ISO date or date-time (UTC if no offset).")
@click.option("--until", default=None, help="Window end (default: now).")
@click.option(
    "--hours",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Window length without --since.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON line instead of the table.")
@click.option("--fail-on-breach", is_flag=True, help="Exit 1 when a target was missed.")
@fail_on_bad_input
def sla_report(since: str | None, until: str | None, hours: int, as_json: bool, fail_on_breach: bool) -> None:
    """SLA and utilisation per job type and tenant, from the runs in the Dagster instance."""
    end = _moment(until, "--until") if until else datetime.now(UTC)
    start = _moment(since, "--since") if since else end - timedelta(hours=hours)
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise click.UsageError(
            "set DAGSTER_HOME to the directory of the Dagster instance to report on"
        ) from None
    report = compute_sla(instance, start, end)
    if as_json:
        _emit(report.as_dict())
    else:
        click.echo(report.summary_table())
    if fail_on_breach and report.breaches():
        raise SystemExit(1)


commands = [audit, sla_report]
