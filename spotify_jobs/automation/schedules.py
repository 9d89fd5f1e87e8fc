"""Schedules of every tenant job (UTC): one tick asks for one run per onboarded tenant.

Each run works on the UTC day that ended before the tick (the month that ended, for the billing run on
the 1st); jobs partitioned by tenant only ignore the date. Run keys are `<tick>|<tenant>`, so a re-evaluated
tick never launches twice and every tick launches afresh. A tenant that cannot run a job type (say, no GPU
quota for training) is skipped and named in the tick's log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from spotify_jobs.automation.run_requests import onboarded_tenants, tenant_run_request, time_partition_exists
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.config import PlacementError
from spotify_jobs.tenancy.tiers import JobType


@dataclass(frozen=True)
class JobSchedule:
    """When one job type runs for every tenant."""

    cron: str
    cadence: str  # daily | weekly | monthly: part of the schedule's name


# Backups first, then the ETL of the day that ended, the scan of its output, training on Sundays once the
# ETL is done, and billing on the 1st once the month's last ETL has run.
JOB_SCHEDULES: dict[JobType, JobSchedule] = {
    JobType.TENANT_BACKUP: JobSchedule("0 1 * * *", "daily"),
    JobType.DATA_ETL: JobSchedule("0 2 * * *", "daily"),
    JobType.SECURITY_SCAN: JobSchedule("0 3 * * *", "daily"),
    JobType.ML_TRAINING: JobSchedule("0 4 * * 0", "weekly"),
    JobType.BILLING_REPORT: JobSchedule("0 6 1 * *", "monthly"),
}


def schedule_name(spec: TenantJobSpec, plan: JobSchedule | None = None) -> str:
    return f"{spec.name.removesuffix('_job')}_{(plan or JOB_SCHEDULES[spec.job_type]).cadence}"


def partition_date(tick: datetime) -> str:
    """The UTC day that ended before `tick` (on the 1st, a day of the month that ended)."""
    return (tick.astimezone(UTC) - timedelta(days=1)).date().isoformat()


def schedule_run_requests(
    factory: TenantJobFactory, spec: TenantJobSpec, tenants: Iterable[str], tick: datetime
) -> tuple[list[dg.RunRequest], list[str]]:
    """The runs of one tick for these tenants, and why any tenant was skipped."""
    when = partition_date(tick)
    if not time_partition_exists(spec, when):
        return [], [f"{when} is not a partition date of {spec.name}"]
    stamp = tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    requests, refused = [], []
    for tenant in tenants:
        try:
            requests.append(
                tenant_run_request(
                    factory, spec, tenant, when, run_key=f"{stamp}|{tenant}", trigger="schedule"
                )
            )
        except PlacementError as exc:
            refused.append(str(exc))
    return requests, refused


def build_schedule(
    factory: TenantJobFactory, spec: TenantJobSpec, plan: JobSchedule | None = None
) -> dg.ScheduleDefinition:
    """The schedule of one tenant job (at its job type's cadence unless `plan` says otherwise), over every
    tenant that is registered and onboarded."""
    plan = plan or JOB_SCHEDULES[spec.job_type]

    @dg.schedule(
        name=schedule_name(spec, plan),
        cron_schedule=plan.cron,
        job_name=spec.name,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{spec.name} for every onboarded tenant, {plan.cadence} ({plan.cron} UTC).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(UTC)
        tenants = onboarded_tenants(context.instance, factory.registry.ids)
        requests, refused = schedule_run_requests(factory, spec, tenants, tick)
        for reason in refused:
            context.log.info(f"skipped: {reason}")
        if not requests:
            return dg.SkipReason(
                f"no tenant can run {spec.name}: {len(tenants)} onboarded, {len(refused)} refused"
            )
        return requests

    return _schedule


def build_schedules(
    factory: TenantJobFactory,
    specs: Iterable[TenantJobSpec],
    extra: Iterable[tuple[TenantJobSpec, JobSchedule]] = (),
) -> list[dg.ScheduleDefinition]:
    """One schedule per tenant job (`TENANT_JOBS.values()`) at the cadence of its job type, plus one per
    (spec, schedule) of `extra` for tenant jobs beyond the five (e.g. daily usage metering)."""
    return [
        *(build_schedule(factory, spec) for spec in specs),
        *(build_schedule(factory, spec, plan) for spec, plan in extra),
    ]
