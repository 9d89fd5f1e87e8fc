"""SLA and utilisation figures: the arithmetic, the figures from real runs in an instance, and the daily asset."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from spotify_jobs.k8s.tags import JOB_TYPE_TAG, TIER_TAG, step_tags
from spotify_jobs.observability.assets import platform_sla_report, platform_sla_report_stored, sla_report_key
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.observability.sla import ALL, RunFact, StepFact, compute_sla, percentile, summarise
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key
from spotify_jobs.tenancy.tiers import TIERS, JobType

T0 = datetime(2026, 5, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0], list(np.linspace(0, 99, 37))])
@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_interpolates_like_numpy(values, q):
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_of_nothing_and_bad_q():
    assert percentile([], 95) is None
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def _runs(job_type, tenant, outcomes, duration=60.0):
    return [
        RunFact(f"{job_type}-{tenant}-{i}", tenant, job_type, outcome, 1000.0 + i, 1000.0 + i + duration)
        for i, outcome in enumerate(outcomes)
    ]


def _steps(job_type, tenant, outcomes, cpu=1.0, wall=10.0, cores=1.0, peak=2**30, reserved=4 * 2**30):
    return [
        StepFact(
            f"{job_type}-{tenant}-{i}", "s", 0, tenant, job_type, o, wall, cpu, peak, cores, reserved, True
        )
        for i, o in enumerate(outcomes)
    ]


@pytest.mark.parametrize(
    ("succeeded", "failed", "breached"),
    [(199, 1, False), (198, 2, True), (5, 0, False), (0, 1, True)],
)
def test_success_rate_target_is_99_5_percent(succeeded, failed, breached):
    runs = _runs("data-etl", "t", ["success"] * succeeded + ["failure"] * failed)
    row = summarise(runs, [], T0, T1).row("data-etl", "t")
    assert row.success_rate == pytest.approx(succeeded / (succeeded + failed))
    assert any("success rate" in b for b in row.breaches) is breached


@pytest.mark.parametrize(("failures", "breached"), [(0, False), (1, True)])
def test_error_rate_limit_is_below_0_1_percent(failures, breached):
    steps = _steps("billing-report", "t", ["failure"] * failures + ["success"] * (1000 - failures))
    row = summarise([], steps, T0, T1).row("billing-report", "t")
    assert row.error_rate == failures / 1000
    assert any("error rate" in b for b in row.breaches) is breached


@pytest.mark.parametrize(
    ("job_type", "duration", "breached"),
    [("security-scan", 7200, False), ("security-scan", 7201, True), ("ml-training", 8 * 3600 - 1, False)],
)
def test_p95_duration_is_held_to_the_job_types_sla(job_type, duration, breached):
    row = summarise(_runs(job_type, "t", ["success"] * 20, duration), [], T0, T1).row(job_type, "t")
    assert row.p95_seconds == pytest.approx(duration)
    assert any("p95 duration" in b for b in row.breaches) is breached


def test_utilisation_against_reservation_and_its_limits():
    # 8 s CPU in 10 s on 1 reserved core = 80 %: at the limit, not over it; memory 3.5 of 4 GiB = 87.5 %: over.
    steps = _steps("data-etl", "a", ["success"] * 2, cpu=8.0, peak=int(3.5 * 2**30))
    steps += _steps("data-etl", "b", ["success"], cpu=9.0, peak=2**30)
    report = summarise([], steps, T0, T1)
    a, b = report.row("data-etl", "a"), report.row("data-etl", "b")
    assert (a.cpu_seconds, a.reserved_cpu_seconds, a.cpu_utilisation) == (16.0, 20.0, 0.8)
    assert a.memory_utilisation_max == 0.875
    assert [x for x in a.breaches if "CPU" in x] == [] and [x for x in a.breaches if "memory" in x]
    assert b.cpu_utilisation == 0.9 and any("CPU" in x for x in b.breaches)
    assert report.row("data-etl").cpu_utilisation == pytest.approx(25 / 30)
    assert report.total.memory_utilisation_mean == pytest.approx((0.875 * 2 + 0.25) / 3)
    assert len(report.breaches()) == sum(len(r.breaches) for r in report.rows)


def test_summary_table_lists_every_row_and_breach():
    report = summarise(_runs("data-etl", "t", ["success", "failure"]), [], T0, T1)
    table = report.summary_table()
    lines = table.splitlines()
    assert lines[0].startswith("SLA 2026-05-01T00:00:00+00:00")
    assert lines[1].split()[:3] == ["job_type", "tenant", "runs"]
    assert [line.split()[:3] for line in lines[2:5]] == [
        ["data-etl", "t", "2"],
        ["data-etl", "*", "2"],
        ["*", "*", "2"],
    ]
    assert "BREACH data-etl/t: success rate 50.00% < 99.50%" in lines


# --- figures from real runs in an instance ---------------------------------------------------------------

ETL_TENANT, TRAIN_TENANT = "startup-042", "premium-client-001"  # tiers small and xlarge


@dg.asset(partitions_def=tenant_daily_partitions, op_tags=step_tags(JobType.DATA_ETL))
def sla_etl(context: dg.AssetExecutionContext, platform: PlatformResource) -> None:
    """Metered work that fails when asked; on `test/flaky` its first attempt fails and the retry succeeds."""
    with step_meter(context, platform) as meter:
        meter.add_records(sum(1 for _ in range(200_000)))
        if context.run.tags.get("test/fail") == "yes":
            raise RuntimeError("bad input")
        if context.run.tags.get("test/flaky") == "yes" and context.retry_number == 0:
            raise dg.RetryRequested(max_retries=1)


@dg.asset(partitions_def=tenant_daily_partitions, op_tags=step_tags(JobType.ML_TRAINING, gpu=True))
def sla_model(context: dg.AssetExecutionContext, platform: PlatformResource) -> None:
    """Metered work of another job type."""
    with step_meter(context, platform) as meter:
        meter.add_records(sum(1 for _ in range(100_000)))


def _materialize(instance, platform, asset, tenant, tags=None, date="2026-05-01"):
    return dg.materialize(
        [asset],
        partition_key=tenant_date_key(tenant, date),
        resources={"platform": platform},
        instance=instance,
        tags=tags or {},
        raise_on_error=False,
    )


@pytest.fixture
def instance():
    test_instance = dg.DagsterInstance.ephemeral()
    test_instance.add_dynamic_partitions("tenants", [ETL_TENANT, TRAIN_TENANT])
    return test_instance


def test_compute_sla_from_real_succeeded_failed_retried_and_cancelled_runs(instance, platform):
    before_window = _materialize(instance, platform, sla_etl, ETL_TENANT, {"test/fail": "yes"})
    since = datetime.fromtimestamp(instance.get_run_record_by_id(before_window.run_id).end_time, UTC)
    since += timedelta(milliseconds=1)
    etl = [
        _materialize(instance, platform, sla_etl, ETL_TENANT),
        _materialize(instance, platform, sla_etl, ETL_TENANT, {"test/flaky": "yes"}),
        _materialize(instance, platform, sla_etl, ETL_TENANT, {"test/fail": "yes"}),
    ]
    cancelled = _materialize(instance, platform, sla_etl, ETL_TENANT)
    instance.report_run_canceled(instance.get_run_by_id(cancelled.run_id))
    train = [_materialize(instance, platform, sla_model, TRAIN_TENANT, {TIER_TAG: "large"}) for _ in range(2)]
    until = datetime.now(UTC) + timedelta(seconds=1)

    report = compute_sla(instance, since, until)

    etl_row = report.row("data-etl", ETL_TENANT)
    assert (etl_row.runs, etl_row.succeeded, etl_row.failed, etl_row.canceled) == (4, 2, 1, 1)
    assert etl_row.success_rate == pytest.approx(2 / 3)
    # executions: ok, flaky attempt 0 (failed), flaky attempt 1, failed, cancelled-run step = 5, 2 failed
    assert (etl_row.step_executions, etl_row.step_failures) == (5, 2)
    assert etl_row.error_rate == pytest.approx(2 / 5)
    records = [instance.get_run_record_by_id(r.run_id) for r in etl]
    durations = [r.end_time - r.start_time for r in records]
    assert etl_row.p50_seconds == pytest.approx(np.percentile(durations, 50))
    assert etl_row.p95_seconds == pytest.approx(np.percentile(durations, 95))
    assert etl_row.p95_sla_seconds == 3 * 3600
    assert any("success rate" in b for b in etl_row.breaches) and any(
        "error rate" in b for b in etl_row.breaches
    )

    train_row = report.row("ml-training", TRAIN_TENANT)
    assert (train_row.runs, train_row.succeeded, train_row.success_rate, train_row.error_rate) == (
        2,
        2,
        1.0,
        0.0,
    )
    usage = [
        {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
        for r in train
        for e in r.get_asset_materialization_events()
    ]
    large = TIERS["large"]
    assert train_row.cpu_seconds == pytest.approx(sum(u["usage/cpu_seconds"] for u in usage))
    expected_reserved = sum(u["usage/wall_seconds"] * large.cpu_millicores / 1000 for u in usage)
    assert train_row.reserved_cpu_seconds == pytest.approx(expected_reserved)
    assert train_row.memory_utilisation_max == pytest.approx(
        max(u["usage/peak_memory_bytes"] for u in usage) / (large.memory_mib * 2**20)
    )
    # the failed run that ended before the window is not counted
    assert (report.total.runs, report.total.failed, report.row("data-etl", ALL).runs) == (6, 1, 4)


def test_compute_sla_refuses_naive_or_empty_windows(instance):
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_sla(instance, datetime(2026, 5, 1), datetime(2026, 5, 2))
    with pytest.raises(ValueError, match="empty window"):
        compute_sla(instance, T1, T0)


def test_platform_sla_report_asset_reports_the_day_and_meters_itself(instance, settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    _materialize(instance, platform, sla_etl, ETL_TENANT)
    _materialize(instance, platform, sla_etl, ETL_TENANT, {"test/fail": "yes", JOB_TYPE_TAG: "data-etl"})
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    result = dg.materialize(
        [platform_sla_report, platform_sla_report_stored],
        partition_key=today,
        resources={"platform": platform},
        instance=instance,
    )

    metadata = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert (metadata["runs"].value, metadata["succeeded"].value, metadata["failed"].value) == (2, 1, 1)
    assert metadata["success_rate"].value == 0.5 and metadata["breaches"].value >= 1
    assert "BREACH data-etl/startup-042" in metadata["summary"].value
    stored = json.loads(platform.data_store.read_bytes(sla_report_key(today)))
    assert stored["breaches"] and {r["job_type"] for r in stored["rows"]} == {"data-etl", "*"}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["within_sla_targets"].passed is False
    assert checks["platform_sla_report_stored"].passed is True
    # the reference integration of step_meter: the report step's own usage, in the instance and the gateway
    assert (
        metadata["usage/job_type"].value == "billing-report" and metadata["usage/tenant"].value == "platform"
    )
    assert metadata["usage/records"].value == 2 and metadata["usage/pushed"].value is True
    assert pushgateway.samples("spotify_jobs_steps_total", run_id=result.run_id, step="platform_sla_report")
