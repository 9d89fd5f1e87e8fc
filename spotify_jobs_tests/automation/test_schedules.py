"""Protects the schedules: one run per onboarded tenant per tick, on the right partition, with the tenant's
placement tags and deterministic run keys, for every job type, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from spotify_jobs.automation.schedules import JOB_SCHEDULES, JobSchedule, build_schedules, schedule_name
from spotify_jobs.k8s.tags import JOB_TYPE_TAG, PRIORITY_TAG, RUN_PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.automation.location import TEST_JOBS

DEMO_TENANTS = ("enterprise-001", "premium-client-001", "startup-042")
TICK = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # a Sunday and the 1st: every cron could fire here
EXPECTED_PARTITION = {
    JobType.DATA_ETL: "2026-10-31|{t}",
    JobType.TENANT_BACKUP: "2026-10-31|{t}",
    JobType.SECURITY_SCAN: "2026-10-31|{t}",
    JobType.ML_TRAINING: "{t}",
    JobType.BILLING_REPORT: "2026-10-01|{t}",
}


def _tick(test_defs, instance, job_type: JobType, when: datetime = TICK):
    schedule = test_defs.get_schedule_def(schedule_name(TEST_JOBS[job_type]))
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=test_defs.get_repository_def()
    )
    return schedule, schedule.evaluate_tick(context)


@pytest.mark.parametrize("job_type", list(JobType))
def test_one_run_per_onboarded_tenant_with_its_placement(test_defs, instance, onboard, job_type):
    onboard(*DEMO_TENANTS)
    schedule, result = _tick(test_defs, instance, job_type)

    assert schedule.cron_schedule == JOB_SCHEDULES[job_type].cron
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == job_type.spec.job_name
    # training needs a GPU and tier xlarge: startup-042 (small, no GPU quota) is skipped, the rest run
    expected = [t for t in DEMO_TENANTS if not (job_type is JobType.ML_TRAINING and t == "startup-042")]
    requests = {r.tags[TENANT_TAG]: r for r in result.run_requests}
    assert sorted(requests) == sorted(expected)
    placement = {
        "enterprise-001": ("enterprise", "high", "3"),
        "premium-client-001": ("xlarge", "normal", "2"),
        "startup-042": ("small", "low", "1"),
    }
    for tenant, request in requests.items():
        tier, priority, run_priority = placement[tenant]
        assert request.job_name == job_type.spec.job_name
        assert request.partition_key == EXPECTED_PARTITION[job_type].format(t=tenant)
        assert request.run_key == f"2026-11-01T02:00Z|{tenant}"
        assert request.tags[JOB_TYPE_TAG] == job_type.value
        assert (request.tags[TIER_TAG], request.tags[PRIORITY_TAG]) == (tier, priority)
        assert request.tags[RUN_PRIORITY_TAG] == run_priority
        assert request.tags["spotify-jobs/trigger"] == "schedule"


def test_run_keys_are_deterministic_per_tick_and_new_each_tick(test_defs, instance, onboard):
    onboard(*DEMO_TENANTS)
    first = [r.run_key for r in _tick(test_defs, instance, JobType.DATA_ETL)[1].run_requests]
    again = [r.run_key for r in _tick(test_defs, instance, JobType.DATA_ETL)[1].run_requests]
    next_day = _tick(test_defs, instance, JobType.DATA_ETL, datetime(2026, 11, 2, 2, 0, tzinfo=UTC))[1]
    assert first == again
    assert not set(first) & {r.run_key for r in next_day.run_requests}
    assert {r.partition_key.split("|")[0] for r in next_day.run_requests} == {"2026-11-01"}


def test_only_onboarded_tenants_get_runs(test_defs, instance, onboard):
    _, nothing = _tick(test_defs, instance, JobType.TENANT_BACKUP)
    assert not nothing.run_requests
    assert "0 onboarded" in nothing.skip_message

    onboard("startup-042", "offboarded-tenant-not-in-registry")
    _, result = _tick(test_defs, instance, JobType.TENANT_BACKUP)
    assert [r.tags[TENANT_TAG] for r in result.run_requests] == ["startup-042"]


def test_a_tick_where_no_tenant_can_run_the_job_skips_with_the_reason(test_defs, instance, onboard):
    onboard("startup-042")
    _, result = _tick(test_defs, instance, JobType.ML_TRAINING)
    assert not result.run_requests
    assert "1 refused" in result.skip_message


def test_every_schedule_ticks_at_its_utc_time():
    after = datetime(2026, 10, 31, 23, 0, tzinfo=UTC).timestamp()  # Saturday 31 October, 23:00 UTC
    expected = {
        JobType.TENANT_BACKUP: datetime(2026, 11, 1, 1, 0, tzinfo=UTC),
        JobType.DATA_ETL: datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
        JobType.SECURITY_SCAN: datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
        JobType.ML_TRAINING: datetime(2026, 11, 1, 4, 0, tzinfo=UTC),  # Sunday
        JobType.BILLING_REPORT: datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # the 1st
    }
    for job_type, first in expected.items():
        ticks = cron_string_iterator(after, JOB_SCHEDULES[job_type].cron, "UTC")
        assert next(ticks) == first
    weekly = cron_string_iterator(after, JOB_SCHEDULES[JobType.ML_TRAINING].cron, "UTC")
    next(weekly)
    assert next(weekly) == datetime(2026, 11, 8, 4, 0, tzinfo=UTC)
    monthly = cron_string_iterator(after, JOB_SCHEDULES[JobType.BILLING_REPORT].cron, "UTC")
    next(monthly)
    assert next(monthly) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_extra_tenant_jobs_get_their_own_cadence(test_defs, factory, instance, onboard):
    onboard("startup-042")
    [schedule] = build_schedules(
        factory, [], extra=[(TEST_JOBS[JobType.DATA_ETL], JobSchedule("30 0 * * *", "nightly"))]
    )
    assert (schedule.name, schedule.cron_schedule) == ("data_etl_nightly", "30 0 * * *")
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=test_defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-10-31|startup-042"
