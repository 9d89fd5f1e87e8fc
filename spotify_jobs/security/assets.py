"""Dagster wiring of the daily security scan: one compliance report per tenant and day, and its checks."""

import dagster as dg

from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.security.report import REPORT_JSON, SCORE_WARN_THRESHOLD, report_key
from spotify_jobs.security.scan import run_scans
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_of, time_of
from spotify_jobs.tenancy.tiers import JobType

MARKDOWN_PREVIEW_CHARS = 20_000


def _tenant_and_date(partition_key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    return tenant_of(partition_key), time_of(partition_key)


@dg.asset(
    partitions_def=tenant_daily_partitions,
    group_name="security",
    kinds={"python", "kubernetes"},
    owners=["team:ml-platform"],
    op_tags=step_tags(JobType.SECURITY_SCAN),
)
def security_scan(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    """The tenant's security and compliance report of the day, as JSON and Markdown under
    `reports/security/<date>/`: Pod Security Standards (baseline and restricted) and hardening checks of
    every step Job the platform would launch for the tenant and of its namespace; personal data in clear
    and secrets in its files (clean outputs fail, raw landing files are risk); isolation and backup
    evidence; a score per framework (PCI DSS v4.0, SOX ITGC, GDPR, HIPAA, ISO/IEC 27001:2022) and the
    trend against the previous scan."""
    tenant, date = _tenant_and_date(context.partition_key)
    with step_meter(context, platform) as meter:
        [report] = run_scans(platform, load_settings(), [tenant], date)
        meter.add_records(
            report.coverage.get("kubernetes_objects", 0) + report.coverage.get("rows_scanned", 0)
        )
    storage = platform.tenant_storage(tenant)
    markdown = report.to_markdown()
    fails = [f for f in report.findings if f.status.value == "fail"]
    metadata: dict[str, object] = {
        "passed": report.passed,
        "critical_failures": ", ".join(r.id for r in report.critical_failures) or "none",
        "failed_controls": sum(r.status == "fail" for r in report.controls),
        "failing_findings": len(fails),
        "risk_findings": len(report.findings) - len(fails),
        "files_scanned": report.coverage.get("files_scanned", 0),
        "kubernetes_objects": report.coverage.get("kubernetes_objects", 0),
        "report_json": dg.MetadataValue.path(storage.uri(report_key(date, REPORT_JSON))),
        "report": dg.MetadataValue.md(markdown[:MARKDOWN_PREVIEW_CHARS]),
    }
    for framework, entry in report.scores.items():
        if entry["score"] is not None:
            metadata[f"score {framework}"] = dg.MetadataValue.float(entry["score"])
    context.log.info(
        f"security scan of {tenant} for {date}: {'PASS' if report.passed else 'FAIL'}, "
        f"lowest score {report.lowest_score}, {len(fails)} failing findings"
    )
    return dg.MaterializeResult(metadata=metadata)


def _stored_report(context: dg.AssetCheckExecutionContext, platform: PlatformResource) -> dict:
    tenant, date = _tenant_and_date(context.partition_key)
    return platform.tenant_storage(tenant).read_json(report_key(date, REPORT_JSON))


@dg.asset_check(
    asset=security_scan,
    partitions_def=tenant_daily_partitions,
    op_tags=step_tags(JobType.SECURITY_SCAN),
    description="Fails (error) when a critical control failed in the tenant's report of the day.",
)
def security_scan_no_critical_failures(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    report = _stored_report(context, platform)
    critical = report["critical_failures"]
    findings = [f for f in report["findings"] if f["status"] == "fail" and f["control"] in critical]
    return dg.AssetCheckResult(
        passed=not critical,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "critical_controls_failed": ", ".join(critical) or "none",
            "critical_findings": len(findings),
            "first": "; ".join(f"{f['control']} {f['object']['name']} {f['field']}" for f in findings[:5])
            or "-",
        },
    )


@dg.asset_check(
    asset=security_scan,
    partitions_def=tenant_daily_partitions,
    op_tags=step_tags(JobType.SECURITY_SCAN),
    description=f"Warns when a framework's compliance score is under {SCORE_WARN_THRESHOLD:.0f} %.",
)
def security_scan_scores_at_least_95(
    context: dg.AssetCheckExecutionContext, platform: PlatformResource
) -> dg.AssetCheckResult:
    report = _stored_report(context, platform)
    scores = {name: entry["score"] for name, entry in report["scores"].items() if entry["score"] is not None}
    low = {name: score for name, score in scores.items() if score < SCORE_WARN_THRESHOLD}
    return dg.AssetCheckResult(
        passed=not low,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "below_threshold": ", ".join(f"{n} {s:.1f} %" for n, s in sorted(low.items())) or "none",
            **{f"score {name}": dg.MetadataValue.float(score) for name, score in scores.items()},
        },
    )


assets = [security_scan]
asset_checks = [security_scan_no_critical_failures, security_scan_scores_at_least_95]
