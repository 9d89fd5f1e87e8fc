"""Metering rules on plain run facts: attribution, tiers, GPU steps, billing's own runs, storage by day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from spotify_jobs.billing.usage import (
    Resource,
    RunFacts,
    StepFacts,
    UsageFileError,
    meter_runs,
    meter_tenant_day,
    read_usage,
    records_processed,
    run_tenant,
    write_usage,
)
from spotify_jobs.k8s.tags import GPU_TAG, JOB_TYPE_TAG, TENANT_TAG, TIER_TAG, step_tags
from spotify_jobs.storage.object_store import ObjectInfo
from spotify_jobs.tenancy.tiers import JobType

DAY = date(2026, 3, 10)
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()


def run(run_id: str, tags: dict, *steps: StepFacts, end: float = NOON) -> RunFacts:
    return RunFacts(run_id, "job", "SUCCESS", tags, end, steps)


def step(
    key: str, ms: int, job_type: JobType = JobType.DATA_ETL, gpu: bool = False, *meta: dict
) -> StepFacts:
    return StepFacts(key, step_tags(job_type, gpu=gpu), ms, tuple(meta))


def quantities(usage) -> dict[tuple[str, str, str], Decimal]:
    return {(r.resource.value, r.tier, r.job_type): r.quantity for r in usage.records}


@pytest.mark.parametrize(
    ("tags", "known", "tenant"),
    [
        ({TENANT_TAG: "acme"}, (), "acme"),
        ({"dagster/partition/tenant": "acme", "dagster/partition": "2026-03-10|acme"}, (), "acme"),
        ({"dagster/partition": "acme"}, ("acme",), "acme"),
        ({"dagster/partition": "2026-03-10"}, ("acme",), None),
        ({}, ("acme",), None),
        ({TENANT_TAG: "acme", "dagster/partition/tenant": "zeta"}, (), None),
        ({TENANT_TAG: "Not A Tenant"}, (), None),
    ],
)
def test_run_tenant_comes_from_the_tag_or_the_tenant_partition(tags, known, tenant):
    found, reason = run_tenant(tags, known)
    assert found == tenant
    assert bool(reason) == (tenant is None)


def test_reserved_cpu_memory_and_gpu_follow_the_run_tier_and_step_durations():
    runs = [
        run(
            "r1",
            {TENANT_TAG: "acme", TIER_TAG: "xlarge", GPU_TAG: "true", JOB_TYPE_TAG: "ml-training"},
            step("prepare", 1500, JobType.DATA_ETL, False, {"records_in": 900, "rows": 10}),
            step("train", 2000, JobType.ML_TRAINING, True, {"rows": 5}),
        ),
        # GPU op tag without the run's GPU placement: no GPU was attached, so none is billed.
        run("r2", {TENANT_TAG: "acme", TIER_TAG: "small"}, step("train", 1000, JobType.ML_TRAINING, True)),
    ]
    usage = meter_runs(runs, "acme", DAY, tenant_tier="medium")
    # xlarge = 8000 millicores, 16384 MiB; small = 250 millicores, 512 MiB.
    assert quantities(usage) == {
        ("cpu", "small", "ml-training"): Decimal("0.25"),  # 0.25 core x 1 s
        ("cpu", "xlarge", "data-etl"): Decimal("12"),  # 8 cores x 1.5 s
        ("cpu", "xlarge", "ml-training"): Decimal("16"),
        ("memory", "small", "ml-training"): Decimal("0.5"),  # 0.5 GiB x 1 s
        ("memory", "xlarge", "data-etl"): Decimal("24"),  # 16 GiB x 1.5 s
        ("memory", "xlarge", "ml-training"): Decimal("32"),
        ("gpu", "xlarge", "ml-training"): Decimal("2"),
        ("records", "xlarge", "data-etl"): Decimal("900"),  # records_in wins over rows
        ("records", "xlarge", "ml-training"): Decimal("5"),
    }
    assert usage.runs_metered == ["r1", "r2"] and usage.tier_fallbacks == []
    assert {r.resource: r.runs for r in usage.records if r.tier == "xlarge"}[Resource.GPU] == 1


def test_unattributed_other_tenants_billing_and_other_days_are_not_billed_to_the_tenant():
    runs = [
        run(
            "mine",
            {TENANT_TAG: "acme"},
            step("load", 1000, JobType.TENANT_BACKUP, False, {"bytes_uploaded": 4096}),
        ),
        run("theirs", {TENANT_TAG: "zeta"}, step("load", 1000)),
        run("nobody", {}, step("load", 1000)),
        run("billing", {TENANT_TAG: "acme", JOB_TYPE_TAG: "billing-report"}, step("usage", 1000)),
        run(
            "billing-step",
            {TENANT_TAG: "acme", TIER_TAG: "large"},
            step("usage", 1000, JobType.BILLING_REPORT),
        ),
        run("yesterday", {TENANT_TAG: "acme"}, step("load", 1000), end=NOON - 86400),
        run("tomorrow", {TENANT_TAG: "acme"}, step("load", 1000), end=NOON + 86400),
    ]
    usage = meter_runs(runs, "acme", DAY, tenant_tier="medium")
    assert [u.run_id for u in usage.unattributed] == ["nobody"]
    assert "no spotify-jobs/tenant tag" in usage.unattributed[0].reason
    assert usage.unmetered_billing_runs == ["billing"]
    # 'billing-step' is metered as a run but its only step is billing's own, so it adds nothing.
    assert quantities(usage) == {
        ("cpu", "medium", "tenant-backup"): Decimal("0.5"),
        ("memory", "medium", "tenant-backup"): Decimal("1"),
        ("backup", "medium", "tenant-backup"): Decimal("4096"),
    }
    assert usage.tier_fallbacks == ["mine"]


def test_unknown_tier_tag_falls_back_to_the_tenants_tier_and_is_reported():
    usage = meter_runs(
        [run("r", {TENANT_TAG: "acme", TIER_TAG: "gigantic"}, step("s", 1000))], "acme", DAY, "large"
    )
    assert usage.tier_fallbacks == ["r"]
    assert quantities(usage)[("cpu", "large", "data-etl")] == Decimal("2")


@pytest.mark.parametrize(
    ("materialisations", "records"),
    [
        (({"records_in": 1000, "rows": 950}, {"rows": 40}), 1000),  # input count, not outputs again
        (({"rows": 950}, {"rows": 40}), 990),
        (({"bytes_uploaded": 7},), 0),
        ((), 0),
    ],
)
def test_records_processed_prefers_the_input_count_of_a_step(materialisations, records):
    assert records_processed(materialisations) == records


def test_quantities_are_exact_or_rounded_half_even_at_nine_places():
    # micro = 128 MiB: 1 ms -> 0.125 GiB x 0.001 s = 0.000125 GiB-s, exact (every tier is whole 128 MiB).
    usage = meter_runs(
        [run("r", {TENANT_TAG: "acme", TIER_TAG: "micro"}, step("s", 1))], "acme", DAY, "micro"
    )
    assert quantities(usage)[("memory", "micro", "data-etl")] == Decimal("0.000125")
    # 1 byte = 1/2^30 GiB = 0.00000000093... -> 0.000000001 GiB-days; 3 bytes = 0.0000000028 -> 0.000000003
    for size, expected in ((1, "0.000000001"), (3, "0.000000003")):
        usage = meter_tenant_day([], "acme", DAY, "small", (), [ObjectInfo("a", size, NOON)], [])
        assert usage.records[0].quantity == Decimal(expected)


def test_storage_counts_data_and_backups_existing_by_the_end_of_the_day_excluding_billing_files():
    before = datetime(2026, 3, 10, 23, 59, tzinfo=UTC).timestamp()
    after = datetime(2026, 3, 11, 0, 0, tzinfo=UTC).timestamp()
    gib = 1024**3
    data = [
        ObjectInfo("landing/2026-03-10/a.json", gib, before),
        ObjectInfo("landing/2026-03-11/b.json", 5 * gib, after),
        ObjectInfo("billing/reports/month=2026-02/invoice.csv", gib, before),
        ObjectInfo("assets/usage_records/date=2026-03-09.parquet", gib, before),
    ]
    backups = [ObjectInfo("20260310T031500Z-1a2b3c4d/manifest.json", gib // 2, before)]
    usage = meter_tenant_day([], "acme", DAY, "small", (), data, backups)
    assert (usage.data_bytes, usage.backup_bytes) == (gib, gib // 2)
    assert [(r.resource, r.tier, r.quantity) for r in usage.records] == [
        (Resource.STORAGE, "small", Decimal("1.5"))
    ]


def test_usage_files_round_trip_and_refuse_foreign_records(platform):
    storage = platform.tenant_storage("acme")
    assert read_usage(storage, DAY) is None
    usage = meter_runs([run("r", {TENANT_TAG: "acme"}, step("s", 1234))], "acme", DAY, "enterprise")
    write_usage(storage, DAY, usage.records)
    assert read_usage(storage, DAY) == usage.records
    with pytest.raises(UsageFileError, match="cannot go into"):
        write_usage(platform.tenant_storage("zeta"), DAY, usage.records)
    with pytest.raises(UsageFileError, match="cannot go into"):
        write_usage(storage, date(2026, 3, 11), usage.records)
