"""Billing assets on a real Dagster instance: metering of real tagged runs, reports, checks, finance summary."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import pytest
from dagster._core.test_utils import instance_for_test

from spotify_jobs.billing import assets as billing
from spotify_jobs.billing.ledger import read_ledger, report_key
from spotify_jobs.billing.metering import finished_runs_on
from spotify_jobs.billing.render import REPORT_FILES, read_report
from spotify_jobs.billing.usage import (
    Resource,
    UsageRecord,
    meter_tenant_day,
    read_usage,
    run_tenant,
    write_usage,
)
from spotify_jobs.k8s.config import resolve_placement
from spotify_jobs.k8s.tags import JOB_TYPE_TAG, TENANT_TAG, TIER_TAG, step_tags
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key, tenant_month_key
from spotify_jobs.tenancy.tiers import TIERS, JobType

ENTERPRISE, STARTUP = "enterprise-001", "startup-042"


@dg.asset(op_tags=step_tags(JobType.DATA_ETL))
def prepare() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"records_in": 900, "rows": 10})


@dg.asset(deps=[prepare], op_tags=step_tags(JobType.ML_TRAINING, gpu=True))
def train() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 5})


@dg.asset(op_tags=step_tags(JobType.TENANT_BACKUP))
def backup() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"bytes_uploaded": 4096})


@dg.asset(op_tags=step_tags(JobType.BILLING_REPORT))
def invoice_step() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 7})


@dg.asset(partitions_def=tenant_daily_partitions, op_tags=step_tags(JobType.DATA_ETL))
def daily_step() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset(op_tags=step_tags(JobType.DATA_ETL))
def broken() -> None:
    raise RuntimeError("fails on purpose")


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", [ENTERPRISE, STARTUP])
        yield instance


def _resources(platform) -> dict:
    return {"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)}


def _execute_tenant_runs(instance, platform) -> None:
    """Real runs the way the platform tags them, plus the odd ones metering must handle."""
    training = resolve_placement(platform.tenant(ENTERPRISE), JobType.ML_TRAINING, tier="xlarge").run_tags()
    dg.materialize([prepare, train], instance=instance, tags=training)
    dg.materialize(
        [backup, invoice_step], instance=instance, tags={TENANT_TAG: ENTERPRISE, TIER_TAG: "large"}
    )
    dg.materialize([prepare], instance=instance, tags={TENANT_TAG: STARTUP, TIER_TAG: "small"})
    dg.materialize([prepare], instance=instance)  # no tenant at all
    today = datetime.now(UTC).date().isoformat()
    dg.materialize([daily_step], instance=instance, partition_key=tenant_date_key(ENTERPRISE, today))
    dg.materialize(
        [broken], instance=instance, tags={TENANT_TAG: ENTERPRISE, TIER_TAG: "medium"}, raise_on_error=False
    )
    dg.materialize(
        [prepare],
        instance=instance,
        tags={TENANT_TAG: ENTERPRISE, JOB_TYPE_TAG: JobType.BILLING_REPORT.value},
    )


def _expected_usage(instance, tenant: str, tenant_tier: str, day: date) -> dict[tuple[str, str], Decimal]:
    """Worked out from the instance's own step stats: tier x (step end - start), metadata as reported."""
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for record in instance.get_run_records():
        run = record.dagster_run
        ended = datetime.fromtimestamp(record.end_time, UTC).date() if record.end_time else None
        owner = run.tags.get(TENANT_TAG) or run.tags.get("dagster/partition/tenant")
        if owner != tenant or ended != day or run.tags.get(JOB_TYPE_TAG) == "billing-report":
            continue
        tier = TIERS[run.tags.get(TIER_TAG, tenant_tier)]
        for stats in instance.get_run_step_stats(run.run_id):
            if stats.step_key in ("invoice_step", "usage_records"):  # billing's own steps
                continue
            ms = round((stats.end_time - stats.start_time) * 1000)
            expected[("cpu", tier.name)] += Decimal(tier.cpu_millicores * ms) / 1_000_000
            expected[("memory", tier.name)] += Decimal(tier.memory_mib * ms) / 1_024_000
            if stats.step_key == "train" and run.tags.get("spotify-jobs/gpu") == "true":
                expected[("gpu", tier.name)] += Decimal(ms) / 1000
            metadata = [event.asset_materialization.metadata for event in stats.materialization_events]
            if any("records_in" in m for m in metadata):
                expected[("records", tier.name)] += sum(
                    m["records_in"].value for m in metadata if "records_in" in m
                )
            else:
                expected[("records", tier.name)] += sum(m["rows"].value for m in metadata if "rows" in m)
            expected[("backup", tier.name)] += sum(
                m["bytes_uploaded"].value for m in metadata if "bytes_uploaded" in m
            )
    return {key: value.quantize(Decimal("1e-9")) for key, value in expected.items() if value}


def _by_resource_and_tier(records) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in records:
        if r.resource is not Resource.STORAGE:
            totals[(r.resource.value, r.tier)] += r.quantity
    return dict(totals)


def test_metering_real_runs_gives_the_quantities_the_instance_recorded(instance, platform):
    _execute_tenant_runs(instance, platform)
    day = datetime.fromtimestamp(instance.get_run_records(limit=1)[0].end_time, UTC).date()
    expected = _expected_usage(instance, ENTERPRISE, "enterprise", day)
    # Training ran at xlarge with a GPU step, backup at large, the partitioned run at the tenant's tier.
    assert {("gpu", "xlarge"), ("backup", "large"), ("cpu", "enterprise"), ("cpu", "medium")} <= set(expected)
    assert expected[("records", "xlarge")] == 905 and expected[("backup", "large")] == 4096

    known = instance.get_dynamic_partitions("tenants")
    runs = finished_runs_on(instance, day, load_steps=lambda tags: run_tenant(tags, known)[0] == ENTERPRISE)
    usage = meter_tenant_day(runs, ENTERPRISE, day, "enterprise", known, [], [])
    assert _by_resource_and_tier(usage.records) == expected
    assert len(usage.runs_metered) == 4  # training, backup, partitioned, failed
    assert len(usage.unattributed) == 1 and len(usage.unmetered_billing_runs) == 1
    assert len(usage.tier_fallbacks) == 1  # the partitioned run has no tier tag

    # The asset does the same from inside a run, and adds the tenant's storage.
    storage = platform.tenant_storage(ENTERPRISE)
    storage.write_bytes(b"x" * 2048, "landing", day.isoformat(), "export.json")
    result = dg.materialize(
        [billing.usage_records],
        instance=instance,
        partition_key=tenant_date_key(ENTERPRISE, day.isoformat()),
        resources=_resources(platform),
    )
    metadata = result.asset_materializations_for_node("usage_records")[0].metadata
    assert metadata["unattributed_runs"].value == 1 and metadata["runs_metered"].value == 4
    assert metadata["data_bytes"].value == 2048
    records = read_usage(storage, day)
    assert _by_resource_and_tier(records) == expected
    assert [r.quantity for r in records if r.resource is Resource.STORAGE] == [
        (Decimal(2048) / 1024**3).quantize(Decimal("1e-9"))
    ]


def _check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _materialize_report(instance, platform, tenant: str, month: str):
    return dg.materialize(
        [billing.billing_report, *billing.asset_checks],
        instance=instance,
        partition_key=tenant_month_key(tenant, f"{month}-01"),
        resources=_resources(platform),
    )


def _use(platform, tenant: str, day: str, tier: str, *quantities: tuple[Resource, str]) -> None:
    records = [UsageRecord(day, tenant, r, tier, "data-etl", Decimal(q), 1) for r, q in quantities]
    write_usage(platform.tenant_storage(tenant), date.fromisoformat(day), records)


def test_report_asset_closes_the_month_passes_its_checks_and_re_runs_byte_identical(instance, platform):
    _use(platform, ENTERPRISE, "2026-03-03", "enterprise", (Resource.CPU, "720000"), (Resource.STORAGE, "40"))
    first = _materialize_report(instance, platform, ENTERPRISE, "2026-03")
    assert set(_check_results(first).values()) == {True} and len(_check_results(first)) == 4
    storage = platform.tenant_storage(ENTERPRISE)
    stored = {name: storage.read_bytes(report_key("2026-03", name)) for name in REPORT_FILES}
    facts, _ = read_report(stored["invoice.parquet"])
    assert facts["status"] == "closed" and facts["input_hash"] == read_ledger(storage, "2026-03").input_hash
    # 200 core-hours x 0.0400 = 8.00; 40 GiB-days x 0.0008 = 0.03 (0.032); enterprise-commit 12.5%:
    # -1.00375 -> -1.00; total 7.03
    assert facts["total"] == "7.03"
    _use(platform, ENTERPRISE, "2026-03-31", "enterprise", (Resource.CPU, "36000"))  # late: 10 core-hours
    again = _materialize_report(instance, platform, ENTERPRISE, "2026-03")
    assert set(_check_results(again).values()) == {True}
    assert {name: storage.read_bytes(report_key("2026-03", name)) for name in REPORT_FILES} == stored
    metadata = again.asset_materializations_for_node("billing_report")[0].metadata
    assert metadata["reproduced_from_ledger"].value is True and metadata["late_usage_pending"].value == 1
    april = _materialize_report(instance, platform, ENTERPRISE, "2026-04")
    _, rows = read_report(storage.read_bytes(report_key("2026-04", "invoice.parquet")))
    # 10 core-hours x 0.0400 = 0.40, less 12.5% = 0.05 -> total 0.35
    assert [(r["kind"], r["usage_month"], r["amount"]) for r in rows] == [
        ("adjustment", "2026-03", Decimal("0.40")),
        ("discount", "", Decimal("-0.05")),
        ("total", "", Decimal("0.35")),
    ]
    assert set(_check_results(april).values()) == {True}


def test_checks_fail_when_a_closed_report_is_tampered_with(instance, platform):
    _use(platform, STARTUP, "2026-02-10", "small", (Resource.CPU, "360000"))
    _materialize_report(instance, platform, STARTUP, "2026-02")
    storage = platform.tenant_storage(STARTUP)
    text = storage.read_bytes(report_key("2026-02", "invoice.csv")).decode().replace(",4.80,", ",5.80,")
    storage.write_bytes(text.encode(), report_key("2026-02", "invoice.csv"))
    results = _check_results(_materialize_report(instance, platform, STARTUP, "2026-02"))
    assert results["billing_report_closed_month_reproducible"] is False
    assert results["billing_report_lines_sum_to_total"] is False
    assert results["billing_report_no_negative_amounts"] is True


def test_finance_summary_adds_up_every_tenants_report_by_tier(instance, platform):
    _use(platform, ENTERPRISE, "2026-03-03", "enterprise", (Resource.CPU, "720000"))
    _use(platform, STARTUP, "2026-03-04", "small", (Resource.CPU, "3600000"))
    for tenant in (ENTERPRISE, STARTUP):
        _materialize_report(instance, platform, tenant, "2026-03")
    instance.add_dynamic_partitions("tenants", ["premium-client-001"])  # no report: listed as missing
    result = dg.materialize(
        [billing.billing_finance_summary],
        instance=instance,
        partition_key="2026-03-01",
        resources=_resources(platform),
    )
    metadata = result.asset_materializations_for_node("billing_finance_summary")[0].metadata
    # enterprise: 200 h x 0.04 = 8.00 - 12.5% = 7.00; startup: 1000 h x 0.048 = 48.00 - 100.00 credit = 0.00
    assert metadata["revenue_exact"].value == "7.00 EUR"
    assert metadata["tenants_without_report"].value == ["premium-client-001"]
    by_tier = platform.data_store.read_bytes("finance/billing/month=2026-03/revenue_by_tier.csv").decode()
    assert list(csv.reader(io.StringIO(by_tier)))[1:] == [
        ["2026-03", "small", "1", "0.00", "EUR"],
        ["2026-03", "enterprise", "1", "7.00", "EUR"],
    ]


def test_billing_report_job_runs_a_partition_given_as_a_string_key(instance, platform):
    defs = dg.Definitions(
        assets=billing.assets,
        asset_checks=billing.asset_checks,
        resources=_resources(platform),
        jobs=[
            dg.define_asset_job("billing_report_job", selection=[billing.billing_report]),
            dg.define_asset_job("billing_usage_job", selection=[billing.usage_records]),
            dg.define_asset_job("billing_finance_job", selection=[billing.billing_finance_summary]),
        ],
    )
    for name in ("billing_usage_job", "billing_finance_job"):
        defs.resolve_job_def(name)
    result = defs.resolve_job_def("billing_report_job").execute_in_process(
        partition_key=f"2026-01-01|{STARTUP}", instance=instance
    )
    assert len(_check_results(result)) == 4 and all(_check_results(result).values())
    assert read_ledger(platform.tenant_storage(STARTUP), "2026-01").total == "0.00"  # a zero-usage month
