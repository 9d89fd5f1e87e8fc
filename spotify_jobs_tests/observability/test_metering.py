"""step_meter records a step's usage in the instance and in a real Pushgateway, and a dead gateway fails nothing."""

import logging

import dagster as dg
import pytest

from spotify_jobs.k8s.tags import PRIORITY_TAG, TIER_TAG, step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.observability.metrics import PUSH_FAILURES, STEP_GROUP_JOB
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key
from spotify_jobs.tenancy.tiers import TIERS, JobType

TENANT = "startup-042"  # registry: tier small, priority low
DATE = "2026-03-01"


@dg.asset(partitions_def=tenant_daily_partitions, op_tags=step_tags(JobType.DATA_ETL))
def metered_events(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    """Sums two million integers inside a step meter; fails when the run asks it to."""
    with step_meter(context, platform) as meter:
        values = list(range(2_000_000))
        meter.add_records(len(values))
        meter.add_bytes(8 * len(values))
        if context.run.tags.get("test/fail") == "yes":
            raise RuntimeError("listening events unreadable for alice@example.com")
        total = sum(values)
    return dg.MaterializeResult(metadata={"total": total})


def _materialize(platform, instance, tags=None, raise_on_error=True):
    instance.add_dynamic_partitions("tenants", [TENANT])
    return dg.materialize(
        [metered_events],
        partition_key=tenant_date_key(TENANT, DATE),
        resources={"platform": platform},
        instance=instance,
        tags=tags or {},
        raise_on_error=raise_on_error,
    )


def _usage(metadata) -> dict[str, object]:
    return {k.removeprefix("usage/"): v.value for k, v in metadata.items() if k.startswith("usage/")}


def test_success_is_recorded_in_instance_and_pushgateway(settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(platform, instance)

    [event] = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    usage = _usage(metadata)
    assert metadata["total"].value == sum(range(2_000_000))
    small = TIERS["small"]
    assert usage["tenant"] == TENANT and usage["job_type"] == "data-etl"
    assert usage["tier"] == "small" and usage["priority"] == "low"
    assert usage["records"] == 2_000_000 and usage["bytes_processed"] == 16_000_000
    assert usage["outcome"] == "success" and usage["pushed"] is True
    assert usage["reserved_cpu_cores"] == small.cpu_millicores / 1000
    assert usage["reserved_memory_bytes"] == small.memory_mib * 2**20
    assert usage["wall_seconds"] > 0 and usage["cpu_seconds"] > 0
    assert usage["peak_memory_bytes"] > 10 * 2**20  # this Python process holds far more than 10 MiB
    assert usage["memory_utilisation"] == pytest.approx(
        usage["peak_memory_bytes"] / small.memory_mib / 2**20, 1e-3
    )

    group = {"job": STEP_GROUP_JOB, "run_id": result.run_id, "step": "metered_events", "attempt": "0"}
    labels = {**group, "tenant": TENANT, "job_type": "data-etl", "tier": "small", "priority": "low"}
    [steps] = pushgateway.samples("spotify_jobs_steps_total", **labels, outcome="success")
    assert steps.value == 1
    [records] = pushgateway.samples("spotify_jobs_step_records_total", **labels)
    assert records.value == 2_000_000
    [cpu] = pushgateway.samples("spotify_jobs_step_cpu_seconds_total", **labels)
    assert cpu.value == pytest.approx(usage["cpu_seconds"], abs=1e-3)
    [count] = pushgateway.samples("spotify_jobs_step_duration_seconds_count", **labels)
    assert count.value == 1
    [reserved] = pushgateway.samples("spotify_jobs_step_reserved_memory_bytes", **labels)
    assert reserved.value == small.memory_mib * 2**20
    [pushed_at] = pushgateway.samples("push_time_seconds", **group)
    assert pushed_at.value > 0


def test_run_tags_override_the_registry_tier_and_priority(settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    result = _materialize(
        platform, dg.DagsterInstance.ephemeral(), tags={TIER_TAG: "large", PRIORITY_TAG: "high"}
    )
    usage = _usage(result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata)
    assert (usage["tier"], usage["priority"], usage["reserved_cpu_cores"]) == ("large", "high", 2.0)
    assert pushgateway.samples(
        "spotify_jobs_steps_total", run_id=result.run_id, tier="large", priority="high"
    )


def test_failed_step_is_observed_and_pushed_with_outcome_failure(settings, pushgateway):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": pushgateway.url})
    )
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(platform, instance, tags={"test/fail": "yes"}, raise_on_error=False)

    assert not result.success
    step_failure = result.get_step_failure_events()[0]
    assert step_failure.event_specific_data.error.cause.cls_name == "RuntimeError"  # the step's own error
    observations = [
        record.event_log_entry.dagster_event.asset_observation_data.asset_observation
        for record in instance.fetch_observations(dg.AssetKey("metered_events"), limit=10).records
    ]
    [observation] = observations
    usage = _usage(observation.metadata)
    assert usage["outcome"] == "failure" and usage["records"] == 2_000_000
    assert "alice@example.com" not in usage["error"] and "RuntimeError" in usage["error"]
    [steps] = pushgateway.samples("spotify_jobs_steps_total", run_id=result.run_id, outcome="failure")
    assert steps.value == 1


def test_stopped_pushgateway_never_fails_the_step(settings, stopped_pushgateway_url):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pushgateway_url": stopped_pushgateway_url})
    )
    failures_before = PUSH_FAILURES.labels(group_job=STEP_GROUP_JOB)._value.get()

    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(platform, instance)

    assert result.success
    usage = _usage(result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata)
    assert usage["pushed"] is False and "Connection refused" in usage["push_error"]
    assert usage["records"] == 2_000_000 and usage["wall_seconds"] > 0  # the instance still has the numbers
    assert PUSH_FAILURES.labels(group_job=STEP_GROUP_JOB)._value.get() == failures_before + 1
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "Pushgateway push failed" in entry.user_message
    ]
    assert len(warnings) == 1


def test_without_pushgateway_url_nothing_is_pushed_and_nothing_fails(settings):
    platform = PlatformResource.from_settings(settings)
    assert platform.pushgateway_url is None
    result = _materialize(platform, dg.DagsterInstance.ephemeral())
    usage = _usage(result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata)
    assert usage["pushed"] is False and usage["push_error"] == "no pushgateway_url configured"


def test_a_malformed_tier_tag_mislabels_but_never_fails_the_step(settings):
    platform = PlatformResource.from_settings(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(platform, instance, tags={TIER_TAG: "gigantic"})
    assert result.success
    usage = _usage(result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata)
    assert usage["tier"] == "unknown" and "reserved_cpu_cores" not in usage
    assert any("unknown resource tier 'gigantic'" in e.user_message for e in instance.all_logs(result.run_id))
