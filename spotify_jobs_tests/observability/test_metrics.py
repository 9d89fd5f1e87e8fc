"""Pushing to a real Pushgateway: groups per run/step never collide, old groups are pruned, failures never raise."""

import time

import pytest

from spotify_jobs.observability.metrics import (
    BACKLOG_GROUP_JOB,
    PUSH_FAILURES,
    RUN_GROUP_JOB,
    STEP_GROUP_JOB,
    MetricLabels,
    Reservation,
    backlog_registry,
    list_groups,
    prune_groups,
    push_group,
    run_registry,
    step_registry,
)
from spotify_jobs.observability.usage import StepUsage


def _usage(wall: float, outcome: str = "success") -> StepUsage:
    return StepUsage(wall, wall / 2, 300 * 2**20, 0.0, 0, 10, 100, outcome, end_timestamp=time.time())


LABELS = MetricLabels("startup-042", "data-etl", "small", "low", "success")


def test_concurrent_runs_and_retried_steps_keep_separate_groups(pushgateway):
    reservation = Reservation(0.25, 512 * 2**20)
    for run_id, attempt, wall in (("run-a", "0", 3.0), ("run-a", "1", 4.0), ("run-b", "0", 5.0)):
        registry = step_registry(_usage(wall), LABELS, reservation, asset="daily_track_stats")
        key = {"run_id": run_id, "step": "daily_track_stats", "attempt": attempt}
        assert push_group(pushgateway.url, STEP_GROUP_JOB, registry, key).pushed

    sums = {
        (s.labels["run_id"], s.labels["attempt"]): s.value
        for s in pushgateway.samples("spotify_jobs_step_duration_seconds_sum", job=STEP_GROUP_JOB)
    }
    assert sums == {("run-a", "0"): 3.0, ("run-a", "1"): 4.0, ("run-b", "0"): 5.0}
    [ratio] = pushgateway.samples("spotify_jobs_step_memory_utilisation_ratio", run_id="run-b")
    assert ratio.value == pytest.approx(300 / 512)
    [cpu_ratio] = pushgateway.samples("spotify_jobs_step_cpu_utilisation_ratio", run_id="run-b")
    assert cpu_ratio.value == pytest.approx(2.5 / (5.0 * 0.25))
    [le_3h] = pushgateway.samples("spotify_jobs_step_duration_seconds_bucket", run_id="run-b", le="10800")
    assert le_3h.value == 1


def test_run_group_without_a_start_has_no_duration_observation(pushgateway):
    assert push_group(
        pushgateway.url, RUN_GROUP_JOB, run_registry(LABELS, None, time.time(), "etl_job"), {"run_id": "r"}
    )
    [count] = pushgateway.samples("spotify_jobs_run_duration_seconds_count", run_id="r")
    [runs] = pushgateway.samples("spotify_jobs_runs_total", run_id="r", dagster_job="etl_job")
    assert (count.value, runs.value) == (0, 1)


def test_prune_deletes_only_old_step_and_run_groups(pushgateway):
    push_group(
        pushgateway.url,
        STEP_GROUP_JOB,
        step_registry(_usage(1.0), LABELS, None, "a"),
        {"run_id": "old", "step": "a", "attempt": "0"},
    )
    push_group(pushgateway.url, RUN_GROUP_JOB, run_registry(LABELS, 1.0, time.time(), "j"), {"run_id": "old"})
    push_group(pushgateway.url, BACKLOG_GROUP_JOB, backlog_registry({"startup-042": 2}, {}))
    groups = list_groups(pushgateway.url)
    assert {g["labels"]["job"] for g in groups} == {STEP_GROUP_JOB, RUN_GROUP_JOB, BACKLOG_GROUP_JOB}
    assert all(abs(g["push_time_seconds"] - time.time()) < 60 for g in groups)

    assert prune_groups(pushgateway.url, max_age_seconds=3600) == 0  # all fresh
    assert prune_groups(pushgateway.url, max_age_seconds=3600, now=time.time() + 7200) == 2
    assert [g["labels"]["job"] for g in list_groups(pushgateway.url)] == [BACKLOG_GROUP_JOB]
    with pytest.raises(ValueError, match="max_age_seconds"):
        prune_groups(pushgateway.url, 0)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "not a url at all"])
def test_a_failed_push_is_counted_and_never_raises(url):
    before = PUSH_FAILURES.labels(group_job=RUN_GROUP_JOB)._value.get()
    outcome = push_group(url, RUN_GROUP_JOB, run_registry(LABELS, 1.0, 1.0, "j"), {"run_id": "x"}, timeout=2)
    assert not outcome.pushed and outcome.error
    assert PUSH_FAILURES.labels(group_job=RUN_GROUP_JOB)._value.get() == before + 1


def test_no_url_means_metrics_are_off_not_failing():
    before = PUSH_FAILURES.labels(group_job=RUN_GROUP_JOB)._value.get()
    assert (
        push_group(None, RUN_GROUP_JOB, run_registry(LABELS, 1.0, 1.0, "j")).error
        == "no pushgateway_url configured"
    )
    assert PUSH_FAILURES.labels(group_job=RUN_GROUP_JOB)._value.get() == before
