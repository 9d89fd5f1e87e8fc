"""Billing assets: daily metering per tenant, the monthly invoice per tenant, and the finance summary."""

from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg

from spotify_jobs.billing import checks
from spotify_jobs.billing.finance import summarise, write_summary
from spotify_jobs.billing.invoice import Invoice
from spotify_jobs.billing.ledger import report_key
from spotify_jobs.billing.metering import finished_runs_on
from spotify_jobs.billing.rates import load_rate_cards
from spotify_jobs.billing.render import CSV_NAME, HTML_NAME, PARQUET_NAME
from spotify_jobs.billing.report import build_month_report, month_of, verify_closed_month
from spotify_jobs.billing.usage import (
    BILLING_OWNED_PREFIXES,
    RESOURCE_ORDER,
    meter_tenant_day,
    run_tenant,
    write_usage,
)
from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.partitions import (
    DATE_DIMENSION,
    MONTH_DIMENSION,
    TENANT_DIMENSION,
    monthly_partitions,
    tenant_daily_partitions,
    tenant_monthly_partitions,
    tenant_of,
    tenant_partitions,
    time_of,
)
from spotify_jobs.tenancy.tiers import JobType

OWNERS = ["team:ml-platform"]
BILLING_TAGS = step_tags(JobType.BILLING_REPORT)
MAX_LISTED_RUNS = 20
# Each tenant-month reads the tenant's usage records of every day of that month.
DAYS_OF_MONTH = dg.MultiPartitionMapping(
    {
        DATE_DIMENSION: dg.DimensionPartitionMapping(MONTH_DIMENSION, dg.TimeWindowPartitionMapping()),
        TENANT_DIMENSION: dg.DimensionPartitionMapping(TENANT_DIMENSION, dg.IdentityPartitionMapping()),
    }
)


@dg.asset(
    partitions_def=tenant_daily_partitions,
    group_name="billing",
    kinds={"python", "parquet"},
    owners=OWNERS,
    op_tags=BILLING_TAGS,
)
def usage_records(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    """Metered usage of one tenant on one UTC day, from this Dagster instance's records of the day's runs.

    Per run that ended that day: reserved CPU core-seconds and memory GiB-seconds (run tier x step
    durations), GPU-seconds, records processed (`records_in`/`rows` metadata) and bytes backed up
    (`bytes_uploaded`); plus storage GiB-days of the tenant's data and backup prefixes. Runs that cannot
    be attributed to a tenant are listed here and billed to nobody; billing's own runs are not metered.
    """
    tenant = tenant_of(context.partition_key)
    day = date.fromisoformat(time_of(context.partition_key))
    storage = platform.tenant_storage(tenant)
    with step_meter(context, platform) as meter:
        known = context.instance.get_dynamic_partitions(tenant_partitions.name)
        runs = finished_runs_on(
            context.instance, day, load_steps=lambda tags: run_tenant(tags, known)[0] == tenant
        )
        usage = meter_tenant_day(
            runs,
            tenant,
            day,
            platform.tenant(tenant).tier,
            known,
            storage.list(),
            TenantStorage(platform.backup_store, tenant).list(),
        )
        uri = write_usage(storage, day, usage.records)
        meter.add_records(len(usage.records))
    if usage.unattributed:
        context.log.warning(
            f"{len(usage.unattributed)} run(s) that ended on {day} have no tenant and are billed to nobody: "
            + "; ".join(
                f"{u.run_id} ({u.job_name}): {u.reason}" for u in usage.unattributed[:MAX_LISTED_RUNS]
            )
        )
    if usage.tier_fallbacks:
        context.log.warning(
            f"{len(usage.tier_fallbacks)} run(s) of {tenant} had no known tier tag and were metered at the "
            f"tenant's tier: {', '.join(usage.tier_fallbacks[:MAX_LISTED_RUNS])}"
        )
    totals = {resource: Decimal(0) for resource in RESOURCE_ORDER}
    for record in usage.records:
        totals[record.resource] += record.quantity
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(uri),
            "records": len(usage.records),
            "runs_metered": len(usage.runs_metered),
            "unattributed_runs": len(usage.unattributed),
            "unattributed": dg.MetadataValue.json([asdict(u) for u in usage.unattributed[:MAX_LISTED_RUNS]]),
            "billing_runs_not_metered": len(usage.unmetered_billing_runs),
            "tier_fallback_runs": len(usage.tier_fallbacks),
            "data_bytes": usage.data_bytes,
            "backup_bytes": usage.backup_bytes,
            "not_billed_as_storage": ", ".join(BILLING_OWNED_PREFIXES),
            **{f"{resource.value} ({resource.unit}s)": float(total) for resource, total in totals.items()},
        }
    )


def _lines_preview(invoice: Invoice) -> str:
    rows = ["| # | Description | Quantity | Unit | Unit price | Amount |", "|---|---|---|---|---|---|"]
    for number, line in enumerate(invoice.lines, start=1):
        quantity = "" if line.quantity is None else str(line.quantity)
        price = "" if line.unit_price is None else str(line.unit_price)
        rows.append(f"| {number} | {line.description} | {quantity} | {line.unit} | {price} | {line.amount} |")
    rows.append(f"| | **Total** | | | | **{invoice.total} {invoice.currency}** |")
    return "\n".join(rows)


@dg.asset(
    partitions_def=tenant_monthly_partitions,
    deps=[dg.AssetDep(usage_records, partition_mapping=DAYS_OF_MONTH)],
    group_name="billing",
    kinds={"csv", "parquet", "html"},
    owners=OWNERS,
    op_tags=BILLING_TAGS,
)
def billing_report(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    """One tenant's invoice for one month: line items, discounts, credits and total, exact to the cent.

    Priced from the month's usage records with the rate card in force on each day, plus adjustment lines
    for usage of already-closed months that was recorded after they closed. CSV and Parquet for machines,
    HTML for people, each carrying the hash of the inputs and the rate-card versions. The first
    materialisation after the month ends closes it: from then on it is re-rendered byte for byte from the
    closed-month ledger.
    """
    tenant = tenant_of(context.partition_key)
    month = month_of(time_of(context.partition_key))
    storage = platform.tenant_storage(tenant)
    with step_meter(context, platform) as meter:
        report = build_month_report(
            storage, load_rate_cards(), month, now=datetime.now(UTC), close=True, store=True
        )
        meter.add_records(len(report.invoice.lines))
    invoice = report.invoice
    if report.missing_usage_days:
        context.log.warning(
            f"{tenant} {month}: no usage records for {', '.join(report.missing_usage_days)}; usage of those days "
            "recorded later is billed as an adjustment of the next month to close"
        )
    if report.late_usage:
        context.log.warning(
            f"{tenant} {month} is closed; {len(report.late_usage)} usage change(s) recorded since will be billed "
            "as adjustments in the next month to close"
        )
    if report.matches_ledger is False:
        context.log.error(
            f"{tenant} {month}: re-rendering the closed month does not reproduce the ledger's files"
        )
    return dg.MaterializeResult(
        metadata={
            "status": invoice.status,
            "total": float(invoice.total),
            "total_exact": f"{invoice.total} {invoice.currency}",
            "subtotal": str(invoice.subtotal),
            "discounts": str(invoice.discounts),
            "credits": str(invoice.credits),
            "currency": invoice.currency,
            "input_hash": invoice.input_hash,
            "rate_card_versions": ", ".join(invoice.rate_card_versions),
            "lines": len(invoice.lines),
            "adjustment_lines": sum(1 for line in invoice.lines if line.kind == "adjustment"),
            "reproduced_from_ledger": report.reproduced,
            "missing_usage_days": len(report.missing_usage_days),
            "late_usage_pending": len(report.late_usage),
            "invoice": dg.MetadataValue.md(_lines_preview(invoice)),
            "csv": dg.MetadataValue.path(storage.uri(report_key(month, CSV_NAME))),
            "parquet": dg.MetadataValue.path(storage.uri(report_key(month, PARQUET_NAME))),
            "html": dg.MetadataValue.path(storage.uri(report_key(month, HTML_NAME))),
        }
    )


def _check_target(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> tuple[TenantStorage, str]:
    tenant = tenant_of(context.partition_key)
    return platform.tenant_storage(tenant), month_of(time_of(context.partition_key))


def _result(problems: list[str], **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": dg.MetadataValue.json(problems), **metadata},
    )


@dg.asset_check(asset=billing_report, partitions_def=tenant_monthly_partitions, op_tags=BILLING_TAGS)
def billing_report_lines_sum_to_total(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """The stored lines add up to the total (CSV and Parquet alike), and subtotal + discounts + credits too."""
    storage, month = _check_target(context, platform)
    facts, rows, csv_rows = checks.stored_report(storage, month)
    return _result(checks.reconcile_lines(facts, rows, csv_rows), total=str(facts["total"]))


@dg.asset_check(asset=billing_report, partitions_def=tenant_monthly_partitions, op_tags=BILLING_TAGS)
def billing_report_usage_matches_records(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """Usage the report bills equals the sum of the month's usage records, per resource and tier.

    For a closed month, the records it was closed with (its ledger entry); usage recorded after the close
    is reported as pending and billed in the next month to close.
    """
    storage, month = _check_target(context, platform)
    _, rows, _ = checks.stored_report(storage, month)
    recorded, source = checks.recorded_usage(storage, month)
    return _result(checks.compare_usage(checks.reported_usage(rows), recorded), compared_with=source)


@dg.asset_check(asset=billing_report, partitions_def=tenant_monthly_partitions, op_tags=BILLING_TAGS)
def billing_report_no_negative_amounts(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """No usage line, unit price or total is negative and no credit adds to the bill."""
    storage, month = _check_target(context, platform)
    facts, rows, _ = checks.stored_report(storage, month)
    return _result(checks.negative_amounts(facts, rows))


@dg.asset_check(asset=billing_report, partitions_def=tenant_monthly_partitions, op_tags=BILLING_TAGS)
def billing_report_closed_month_reproducible(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    """A closed month re-rendered from its ledger is byte-identical to the stored files and their recorded hashes."""
    storage, month = _check_target(context, platform)
    files = verify_closed_month(storage, month)
    if files is None:
        return dg.AssetCheckResult(passed=True, metadata={"closed": False, "note": "month still open"})
    problems = [f"{name}: {facts}" for name, facts in files.items() if not facts["identical"]]
    return _result(problems, closed=True, files=dg.MetadataValue.json(files))


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep(
            billing_report,
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                partition_dimension_name=MONTH_DIMENSION
            ),
        )
    ],
    group_name="billing",
    kinds={"python", "csv"},
    owners=OWNERS,
    op_tags=BILLING_TAGS,
)
def billing_finance_summary(
    context: dg.AssetExecutionContext, platform: PlatformResource
) -> dg.MaterializeResult:
    """Platform revenue for one month from every tenant's billing report: per tenant tier and top tenants.

    Written as CSV under `finance/billing/month=<YYYY-MM>/` of the data store; tenants without a report for
    the month are listed, not skipped silently.
    """
    month = month_of(context.partition_key)
    tenants = sorted(context.instance.get_dynamic_partitions(tenant_partitions.name))
    tiers = {t.id: t.tier for t in platform.registry.tenants}
    with step_meter(context, platform) as meter:
        summary = summarise(month, [platform.tenant_storage(t) for t in tenants], tiers)
        uris = write_summary(platform.data_store, summary)
        meter.add_records(len(summary.tenants))
    if summary.missing:
        context.log.warning(f"{month}: no billing report for {', '.join(summary.missing)}")
    by_tier = ["| Tier | Tenants | Revenue |", "|---|---|---|"] + [
        f"| {tier} | {count} | {revenue} {summary.currency} |" for tier, count, revenue in summary.by_tier()
    ]
    top = ["| Tenant | Tier | Status | Total |", "|---|---|---|---|"] + [
        f"| {t.tenant} | {t.tier} | {t.status} | {t.total} {t.currency} |" for t in summary.top()
    ]
    return dg.MaterializeResult(
        metadata={
            "revenue": float(summary.revenue),
            "revenue_exact": f"{summary.revenue} {summary.currency}",
            "tenants_reported": len(summary.tenants),
            "tenants_without_report": dg.MetadataValue.json(list(summary.missing)),
            "draft_reports": sum(1 for t in summary.tenants if t.status != "closed"),
            "revenue_by_tier": dg.MetadataValue.md("\n".join(by_tier)),
            "top_tenants": dg.MetadataValue.md("\n".join(top)),
            "files": dg.MetadataValue.json(uris),
        }
    )


assets = [usage_records, billing_report, billing_finance_summary]
asset_checks = [
    billing_report_lines_sum_to_total,
    billing_report_usage_matches_records,
    billing_report_no_negative_amounts,
    billing_report_closed_month_reproducible,
]
