"""`run-main`: the main job of `make run` — every job type for the demo tenants on the embedded default.

Each run goes through the Dagster instance in $DAGSTER_HOME (so the UI, metering and SLA reports see it),
with the same run config and tags a schedule would give it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import click
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

from spotify_jobs.automation.run_requests import tenant_run
from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.etl.schema import landing_prefix
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.config import PlacementError
from spotify_jobs.k8s.manifests import DEFINITIONS_MODULE
from spotify_jobs.observability.sla import compute_sla
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType

MAIN_SEQUENCE = (JobType.DATA_ETL, JobType.ML_TRAINING, JobType.SECURITY_SCAN, JobType.TENANT_BACKUP)


@dataclass
class RunOutcome:
    tenant: str
    job: str
    partition: str
    status: str
    seconds: float
    detail: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def _ensure_landing(platform: PlatformResource, tenant: str, date: str, records: int, seed: int) -> str:
    storage = platform.tenant_storage(tenant)
    if next(iter(storage.list(landing_prefix(date))), None) is not None:
        return "landing data present"
    report = generate_exports(storage, date, GenerationConfig(records=records, seed=seed))
    return f"generated {report.records} records in {len(report.files)} files"


def _materialized_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    shown = {}
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.asset_materialization
        for name in ("rows", "records_in", "path", "recall_at_10", "backup_id", "total", "score"):
            if name in materialization.metadata:
                shown[f"{materialization.asset_key.to_user_string()}.{name}"] = str(
                    materialization.metadata[name].value
                )
    return shown


def run_tenant_job(
    instance: dg.DagsterInstance,
    repository: ReconstructableRepository,
    factory: TenantJobFactory,
    spec: TenantJobSpec,
    tenant: str,
    date: str,
) -> RunOutcome:
    """Execute one tenant's run of `spec` in-process against `instance`; refusals become a skipped outcome."""
    partition = spec.partition_key(tenant, date)
    try:
        run_config, tags = tenant_run(factory, spec, tenant, date)
    except PlacementError as refused:
        return RunOutcome(tenant, spec.name, partition, "SKIPPED", 0.0, str(refused))
    started = time.perf_counter()
    result = dg.execute_job(
        repository.get_reconstructable_job(spec.name),
        instance=instance,
        run_config={**run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags=tags,
        raise_on_error=False,
    )
    outcome = RunOutcome(
        tenant,
        spec.name,
        partition,
        "SUCCESS" if result.success else "FAILURE",
        time.perf_counter() - started,
        metadata=_materialized_metadata(instance, result.run_id),
    )
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        outcome.detail = failures[-1] if failures else "run failed"
    return outcome


@click.command("run-main")
@click.option("--date", default=None, help="Landing date (default: yesterday, UTC).")
@click.option("--records", default=20_000, show_default=True, help="Records generated per demo tenant.")
@click.option(
    "--tenant", "tenants", multiple=True, help="Only these tenants (default: every registered one)."
)
@fail_on_bad_input
def run_main(date: str | None, records: int, tenants: tuple[str, ...]) -> None:
    """Generate demo data when missing, then run every job type for the demo tenants; print a summary."""
    from spotify_jobs.definitions import SUPPORT_TENANT_JOBS, TENANT_JOBS

    settings = load_settings()
    registry = load_registry(settings.tenant_registry)
    chosen = [registry.get(t).id for t in tenants] or registry.ids
    today = dt.datetime.now(dt.UTC).date()
    date = date or (today - dt.timedelta(days=1)).isoformat()
    # The landing date's work, then today's metering of those runs and this month's (draft) invoice.
    sequence = [(TENANT_JOBS[job_type], date) for job_type in MAIN_SEQUENCE if job_type in TENANT_JOBS]
    sequence += [(spec, today.isoformat()) for spec in SUPPORT_TENANT_JOBS]
    sequence.append((TENANT_JOBS[JobType.BILLING_REPORT], today.isoformat()))
    platform = PlatformResource.from_settings(settings)
    factory = TenantJobFactory(settings, registry)
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs")
    outcomes: list[RunOutcome] = []
    started = dt.datetime.now(dt.UTC)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(
            tenant_partitions.name,
            [t for t in chosen if not instance.has_dynamic_partition(tenant_partitions.name, t)],
        )
        for seed, tenant in enumerate(chosen):
            click.echo(f"{tenant}: {_ensure_landing(platform, tenant, date, records, seed)}")
        for spec, when in sequence:
            for tenant in chosen:
                outcome = run_tenant_job(instance, repository, factory, spec, tenant, when)
                outcomes.append(outcome)
                click.echo(
                    f"{outcome.status:8} {outcome.job:20} {outcome.partition:28} {outcome.seconds:6.1f}s {outcome.detail}"
                )
        sla = compute_sla(instance, started, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    click.echo("\nOutputs (data root: " + platform.data_store.root + ")")
    for outcome in outcomes:
        for name, value in outcome.metadata.items():
            click.echo(f"  {outcome.tenant:20} {name} = {value}")
    click.echo("\nSLA and utilisation of this main job's runs")
    click.echo(sla.summary_table())
    failed = [o for o in outcomes if o.status == "FAILURE"]
    if failed:
        raise click.ClickException(
            f"{len(failed)} run(s) failed: " + "; ".join(f"{o.job} {o.partition}" for o in failed)
        )
