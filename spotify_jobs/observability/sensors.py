"""Sensors that watch every run of the code location: audit records, run metrics, and the run backlog.

- `audit_<status>_sensor` (started, success, failure, canceled): appends a record to the tenant's audit
  trail (`started` or `retried`, `succeeded`, `failed`, `cancelled`) with the actor from the run tags and the
  run config's hash, and, once a run has ended, pushes its run group (duration, outcome) to the Pushgateway.
  Runs that name no tenant (platform reports) have no tenant trail and are skipped with a log line.
- `platform_backlog_sensor`: every minute, pushes queued and running runs per tenant (the dashboard's
  backlog panel, and the heartbeat behind the Pushgateway-stale alert); hourly, deletes the per-run and
  per-step groups older than 8 days, which would otherwise pile up in the Pushgateway for ever.

All run by default. An audit write that fails raises, so the tick fails visibly and the event is retried;
a Pushgateway that is down is only logged (see metrics.push_group).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import dagster as dg

from spotify_jobs.observability.audit import AuditRecord, AuditTrail, config_hash
from spotify_jobs.observability.metering import platform_labels
from spotify_jobs.observability.metrics import (
    BACKLOG_GROUP_JOB,
    RUN_GROUP_JOB,
    MetricLabels,
    backlog_registry,
    prune_groups,
    push_group,
    run_registry,
)
from spotify_jobs.observability.runs import PARENT_RUN_TAG, run_actor, run_job_type, run_tenant
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.registry import UnknownTenant
from spotify_jobs.tenancy.tiers import job_type_of

RunStatus = dg.DagsterRunStatus
_ACTION = {
    RunStatus.SUCCESS: "succeeded",
    RunStatus.FAILURE: "failed",
    RunStatus.CANCELED: "cancelled",
}
_OUTCOME = {RunStatus.SUCCESS: "success", RunStatus.FAILURE: "failure", RunStatus.CANCELED: "canceled"}
PUSHGATEWAY_RETENTION_SECONDS = 8 * 86400  # longer than the dashboard's 7 days and every alert window
PRUNE_EVERY_SECONDS = 3600
QUEUED_STATUSES = [RunStatus.QUEUED, RunStatus.NOT_STARTED]
IN_PROGRESS_STATUSES = [RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING]


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds") if timestamp else None


def record_run_status(
    instance: dg.DagsterInstance, run: dg.DagsterRun, status: RunStatus, platform: PlatformResource, log
) -> AuditRecord | None:
    """Audit (and, for an ended run, push metrics for) one run reaching `status`; None for runs of no tenant."""
    tags = run.tags
    tenant = run_tenant(tags)
    record = instance.get_run_record_by_id(run.run_id)
    start = record.start_time if record else None
    end = record.end_time if record else None
    job_type_tag = run_job_type(tags)
    job_type = job_type_of(job_type_tag) if job_type_tag else None

    if status in _OUTCOME:
        labels, _reservation = platform_labels(platform, tags, tenant, job_type, log.warning)
        labels = MetricLabels(**{**labels.values(), "outcome": _OUTCOME[status]})
        end_timestamp = end or datetime.now(UTC).timestamp()
        duration = end_timestamp - start if start else None
        push_group(
            platform.pushgateway_url,
            RUN_GROUP_JOB,
            run_registry(labels, duration, end_timestamp, run.job_name),
            {"run_id": run.run_id},
        )

    if tenant is None:
        log.info(f"run {run.run_id} names no tenant; no audit record")
        return None
    try:
        platform.tenant(tenant)
    except UnknownTenant:
        log.warning(
            f"run {run.run_id} names tenant {tenant!r}, which the registry does not hold; no audit record"
        )
        return None
    if status == RunStatus.STARTED:
        action = "retried" if run.parent_run_id or tags.get(PARENT_RUN_TAG) else "started"
        when = _iso(start)
    else:
        action = _ACTION[status]
        when = _iso(end)
    details = {
        "dagster_job": run.job_name,
        "status": status.value,
        "partition": tags.get("dagster/partition"),
        "assets": sorted(key.to_user_string() for key in run.asset_selection or ()),
        "parent_run_id": run.parent_run_id,
        "job_type": job_type_tag,
    }
    if start and end:
        details["duration_seconds"] = round(end - start, 3)
    return AuditTrail(platform.tenant_storage(tenant)).append(
        actor=run_actor(tags),
        action=action,
        subject=run.job_name,
        run_id=run.run_id,
        config_hash=config_hash(run.run_config),
        details={k: v for k, v in details.items() if v not in (None, [])},
        time=when,
    )


def _audit_sensor(status: RunStatus) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        run_status=status,
        name=f"audit_{status.value.lower()}_sensor",
        description=f"Audit trail (and run metrics) of every run that reaches {status.value}.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.RunStatusSensorContext, platform: PlatformResource):
        record_run_status(context.instance, context.dagster_run, status, platform, context.log)

    return _sensor


audit_started_sensor = _audit_sensor(RunStatus.STARTED)
audit_success_sensor = _audit_sensor(RunStatus.SUCCESS)
audit_failure_sensor = _audit_sensor(RunStatus.FAILURE)
audit_canceled_sensor = _audit_sensor(RunStatus.CANCELED)


def run_backlog(instance: dg.DagsterInstance, tenants: list[str]) -> tuple[Counter, Counter]:
    """Queued and in-progress runs per tenant (every tenant in `tenants` present, zeros included)."""
    queued: Counter = Counter(dict.fromkeys(tenants, 0))
    running: Counter = Counter(dict.fromkeys(tenants, 0))
    for counter, statuses in ((queued, QUEUED_STATUSES), (running, IN_PROGRESS_STATUSES)):
        for record in instance.get_run_records(dg.RunsFilter(statuses=statuses)):
            tenant = run_tenant(record.dagster_run.tags)
            if tenant:
                counter[tenant] += 1
    return queued, running


def _prune_due(cursor: str | None, now: float) -> bool:
    try:
        return now - float(cursor or 0) >= PRUNE_EVERY_SECONDS
    except ValueError:
        return True


@dg.sensor(
    name="platform_backlog_sensor",
    minimum_interval_seconds=60,
    description=(
        "Pushes queued and running runs per tenant to the Pushgateway every minute; hourly, deletes "
        "step and run groups older than the retention."
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def platform_backlog_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    queued, running = run_backlog(context.instance, platform.registry.ids)
    outcome = push_group(platform.pushgateway_url, BACKLOG_GROUP_JOB, backlog_registry(queued, running))
    state = "pushed" if outcome.pushed else f"not pushed ({outcome.error})"
    message = f"backlog {state}: queued {sum(queued.values())}, running {sum(running.values())}"
    now = time.time()
    if outcome.pushed and _prune_due(context.cursor, now):
        try:
            pruned = prune_groups(platform.pushgateway_url, PUSHGATEWAY_RETENTION_SECONDS, now=now)
        except (OSError, ValueError) as exc:  # the gateway went away between push and prune
            context.log.warning(f"pruning the Pushgateway failed: {exc}")
        else:
            context.update_cursor(str(now))
            message += f"; pruned {pruned} old groups"
    return dg.SkipReason(message)


audit_sensors = [audit_started_sensor, audit_success_sensor, audit_failure_sensor, audit_canceled_sensor]
sensors = [*audit_sensors, platform_backlog_sensor]
