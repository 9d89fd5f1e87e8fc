"""Observability assets: the daily platform SLA and utilisation report."""

import json

import dagster as dg

from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.observability.sla import compute_sla
from spotify_jobs.resources import PlatformResource
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.tenancy.partitions import daily_partitions
from spotify_jobs.tenancy.tiers import JobType

SLA_REPORT_PREFIX = "platform/observability/sla_report"
WITHIN_TARGETS_CHECK = "within_sla_targets"


def sla_report_key(date: str) -> str:
    """Key of one day's report in the data store (platform-wide, outside every tenant's prefix)."""
    return f"{SLA_REPORT_PREFIX}/date={date}.json"


@dg.asset(
    partitions_def=daily_partitions,
    group_name="observability",
    kinds={"python", "json"},
    owners=["team:ml-platform"],
    # Reporting work: the billing-report job type's tier and queue fit it; it needs no GPU.
    op_tags=step_tags(JobType.BILLING_REPORT),
    check_specs=[dg.AssetCheckSpec(WITHIN_TARGETS_CHECK, asset="platform_sla_report")],
)
def platform_sla_report(
    context: dg.AssetExecutionContext, platform: PlatformResource
) -> dg.MaterializeResult:
    """SLA and utilisation of every run that ended on this UTC day, per job type and tenant.

    Success rate, step error rate, p50/p95 run duration against each job type's p95 SLA, and CPU and
    memory used versus what the tier reserved (from the steps' `usage/...` metadata). Written as JSON to
    `platform/observability/sla_report/date=<day>.json` in the data store; the check flags missed targets.
    """
    window = context.partition_time_window
    with step_meter(context, platform) as meter:
        report = compute_sla(context.instance, window.start, window.end)
        payload = json.dumps(report.as_dict(), indent=2, sort_keys=True).encode()
        key = sla_report_key(context.partition_key)
        platform.data_store.write_bytes(key, payload)
        meter.add_records(report.total.runs)
        meter.add_bytes(len(payload))
    total = report.total
    breaches = report.breaches()
    figures = {
        "runs": total.runs,
        "succeeded": total.succeeded,
        "failed": total.failed,
        "canceled": total.canceled,
        "success_rate": total.success_rate,
        "error_rate": total.error_rate,
        "p50_seconds": total.p50_seconds,
        "p95_seconds": total.p95_seconds,
        "cpu_utilisation": total.cpu_utilisation,
        "memory_utilisation_max": total.memory_utilisation_max,
    }
    return dg.MaterializeResult(
        metadata={
            **{name: value for name, value in figures.items() if value is not None},
            "breaches": len(breaches),
            "summary": dg.MetadataValue.md(f"```\n{report.summary_table()}\n```"),
            "path": dg.MetadataValue.path(platform.data_store.uri(key)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=WITHIN_TARGETS_CHECK,
                passed=not breaches,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"breaches": dg.MetadataValue.json(breaches)},
            )
        ],
    )


@dg.asset_check(asset=platform_sla_report, description="The latest day's report is stored and readable.")
def platform_sla_report_stored(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    event = context.instance.get_latest_materialization_event(platform_sla_report.key)
    if event is None or event.asset_materialization is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "never materialised"})
    materialization = event.asset_materialization
    key = sla_report_key(materialization.partition)
    try:
        stored = json.loads(platform.data_store.read_bytes(key))
    except (StorageError, ValueError) as exc:
        return dg.AssetCheckResult(passed=False, metadata={"problem": f"{key}: {exc}"})
    total = next(row for row in stored["rows"] if row["job_type"] == "*" and row["tenant"] == "*")
    expected = materialization.metadata["runs"].value
    return dg.AssetCheckResult(
        passed=total["runs"] == expected,
        metadata={
            "partition": materialization.partition,
            "stored_runs": total["runs"],
            "materialised_runs": expected,
        },
    )


assets = [platform_sla_report]
asset_checks = [platform_sla_report_stored]
