"""Run-status sensors write the tenant's audit trail and push run metrics; the backlog sensor pushes queue depth."""

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from spotify_jobs.k8s.tags import JOB_TYPE_TAG
from spotify_jobs.observability.audit import AuditTrail, config_hash
from spotify_jobs.observability.metrics import BACKLOG_GROUP_JOB, RUN_GROUP_JOB
from spotify_jobs.observability.runs import ACTOR_TAG
from spotify_jobs.observability.sensors import (
    audit_canceled_sensor,
    audit_failure_sensor,
    audit_started_sensor,
    audit_success_sensor,
    platform_backlog_sensor,
)
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key

TENANT = "premium-client-001"  # registry: tier xlarge, priority normal


@dg.asset(partitions_def=tenant_daily_partitions)
def audited_scores(context: dg.AssetExecutionContext) -> None:
    """Fails when the run asks it to."""
    if context.run.tags.get("test/fail") == "yes":
        raise ValueError("scores could not be computed")


def _run(instance, tags, date="2026-04-01"):
    instance.add_dynamic_partitions("tenants", [TENANT])
    return dg.materialize(
        [audited_scores],
        partition_key=tenant_date_key(TENANT, date),
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def _fire(sensor, instance, run_id, event_type, platform):
    entry = instance.all_logs(run_id, of_type=event_type)[0]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"platform": platform},
    )
    sensor(context)


def test_run_lifecycle_lands_in_the_tenant_audit_trail_and_the_pushgateway(settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    instance = dg.DagsterInstance.ephemeral()
    tags = {ACTOR_TAG: "cli:ops-oncall", JOB_TYPE_TAG: "data-etl"}
    ok = _run(instance, tags)
    bad = _run(instance, {**tags, "test/fail": "yes"}, date="2026-04-02")

    _fire(audit_started_sensor, instance, ok.run_id, dg.DagsterEventType.RUN_START, platform)
    _fire(audit_success_sensor, instance, ok.run_id, dg.DagsterEventType.RUN_SUCCESS, platform)
    _fire(audit_failure_sensor, instance, bad.run_id, dg.DagsterEventType.RUN_FAILURE, platform)

    trail = AuditTrail(platform.tenant_storage(TENANT))
    records = list(trail.records())
    assert [(r.action, r.run_id) for r in records] == [
        ("started", ok.run_id),
        ("succeeded", ok.run_id),
        ("failed", bad.run_id),
    ]
    assert {r.actor for r in records} == {"cli:ops-oncall"}
    assert records[1].config_hash == config_hash(instance.get_run_by_id(ok.run_id).run_config)
    assert records[1].details["partition"] == "2026-04-01|premium-client-001"
    assert records[1].details["duration_seconds"] >= 0
    assert trail.verify_chain().ok

    labels = {
        "job": RUN_GROUP_JOB,
        "tenant": TENANT,
        "job_type": "data-etl",
        "tier": "xlarge",
        "priority": "normal",
    }
    [success] = pushgateway.samples("spotify_jobs_runs_total", **labels, run_id=ok.run_id, outcome="success")
    [failure] = pushgateway.samples("spotify_jobs_runs_total", **labels, run_id=bad.run_id, outcome="failure")
    assert success.value == failure.value == 1
    record = instance.get_run_record_by_id(ok.run_id)
    [duration] = pushgateway.samples("spotify_jobs_run_duration_seconds_sum", run_id=ok.run_id)
    assert abs(duration.value - (record.end_time - record.start_time)) < 1e-6
    [ended] = pushgateway.samples("spotify_jobs_run_end_timestamp_seconds", run_id=ok.run_id)
    assert abs(ended.value - record.end_time) < 1e-6


def test_a_re_executed_run_is_audited_as_retried(platform):
    instance = dg.DagsterInstance.ephemeral()
    first = _run(instance, {"test/fail": "yes"})
    retry = _run(instance, {"dagster/parent_run_id": first.run_id, "dagster/schedule_name": "nightly"})
    _fire(audit_started_sensor, instance, retry.run_id, dg.DagsterEventType.RUN_START, platform)
    [record] = AuditTrail(platform.tenant_storage(TENANT)).records()
    assert (record.action, record.actor) == ("retried", "schedule:nightly")


def test_a_cancelled_run_is_audited(platform):
    instance = dg.DagsterInstance.ephemeral()
    run = _run(instance, {})
    instance.report_run_canceled(instance.get_run_by_id(run.run_id))
    _fire(audit_canceled_sensor, instance, run.run_id, dg.DagsterEventType.RUN_CANCELED, platform)
    [record] = AuditTrail(platform.tenant_storage(TENANT)).records()
    assert record.action == "cancelled"


def test_runs_of_no_tenant_write_no_audit_record(platform):
    @dg.asset
    def platform_wide() -> None:
        """No tenant."""

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([platform_wide], instance=instance)
    _fire(audit_success_sensor, instance, result.run_id, dg.DagsterEventType.RUN_SUCCESS, platform)
    assert not list(platform.data_store.list("tenants"))


def test_backlog_sensor_pushes_queued_and_running_runs_per_tenant(settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    instance = dg.DagsterInstance.ephemeral()
    statuses = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED]
    statuses += [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]  # ended runs are no backlog
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_job_origin("etl_job")
    for status in statuses:
        tags = {"dagster/partition/tenant": TENANT}
        create_run_for_test(instance, "etl_job", status=status, tags=tags, remote_job_origin=origin)
    create_run_for_test(instance, "etl_job", status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin)
    context = dg.build_sensor_context(instance=instance, resources={"platform": platform})
    result = platform_backlog_sensor(context)
    assert "queued 2, running 1" in result.skip_message
    assert "pruned 0 old groups" in result.skip_message and context.cursor  # first tick prunes; hourly after
    again = platform_backlog_sensor(
        dg.build_sensor_context(instance=instance, resources={"platform": platform}, cursor=context.cursor)
    )
    assert "pruned" not in again.skip_message
    [queued] = pushgateway.samples("spotify_jobs_runs_queued", job=BACKLOG_GROUP_JOB, tenant=TENANT)
    [running] = pushgateway.samples("spotify_jobs_runs_in_progress", job=BACKLOG_GROUP_JOB, tenant=TENANT)
    [idle] = pushgateway.samples("spotify_jobs_runs_queued", job=BACKLOG_GROUP_JOB, tenant="startup-042")
    assert (queued.value, running.value, idle.value) == (2, 1, 0)
