"""Protects the run queue: runs submitted like the CLI does are dequeued by Dagster's own
QueuedRunCoordinatorDaemon highest priority first, a tenant at its registry limit holds back only its own
runs, GPU runs respect the GPU limit — on SQLite and on PostgreSQL — and dagster.yaml matches the registry."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.test_utils import instance_for_test
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from spotify_jobs.automation.run_queue import instance_queue_config, open_workspace, submit_tenant_run
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.k8s.tags import PRIORITY_TAG, TENANT_TAG
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.automation.conftest import tenant_entry, write_registry
from spotify_jobs_tests.automation.location import TEST_JOBS
from spotify_jobs_tests.fixtures.postgres import create_database

REPO_ROOT = Path(__file__).resolve().parents[2]
# Runs are "launched" by the run launcher Dagster's own queue tests use: it records them and runs nothing.
RECORDING_LAUNCHER = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
ETL, TRAINING = TEST_JOBS[JobType.DATA_ETL], TEST_JOBS[JobType.ML_TRAINING]
MAX_CONCURRENT_RUNS = 10


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return load_registry(
        write_registry(
            tmp_path_factory.mktemp("registry") / "tenants.yaml",
            [
                tenant_entry("tenant-a", max_concurrent_runs=1),
                tenant_entry("tenant-b", max_concurrent_runs=3),
                tenant_entry(
                    "gpu-tenant",
                    tier="xlarge",
                    max_concurrent_runs=3,
                    quota={"cpu": "48", "memory": "96Gi", "gpu": 1, "pods": 8, "jobs": 8},
                ),
            ],
        )
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def queue_backend(request, registry, tmp_path_factory):
    """(factory, workspace process context, daemon): an instance configured like dagster.yaml (at most 10
    runs at once) whose workspace is the test code location, loaded the way the CLI loads it."""
    root = tmp_path_factory.mktemp("queue")
    workspace_file = root / "workspace.yaml"
    location = {"module_name": "spotify_jobs_tests.automation.location", "location_name": "spotify_jobs"}
    workspace_file.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    overrides = {**instance_queue_config(registry, MAX_CONCURRENT_RUNS), "run_launcher": RECORDING_LAUNCHER}
    if request.param == "postgres":
        overrides["storage"] = {
            "postgres": {"postgres_url": create_database(request.getfixturevalue("postgres_server"))}
        }
    settings = load_settings(data_root=str(root / "data"), backup_root=str(root / "backups"))
    with (
        instance_for_test(overrides=overrides) as instance,
        open_workspace(instance, workspace_file) as context,
    ):
        yield TenantJobFactory(settings, registry), context, QueuedRunCoordinatorDaemon(interval_seconds=1)


@pytest.fixture
def queue(queue_backend):
    queue_backend[1].instance.wipe()
    return queue_backend


def submit(factory, context, tenant, priority, spec=ETL, day="2026-11-01") -> str:
    run = submit_tenant_run(
        context.create_request_context(), factory, spec, tenant, day, priority=priority, actor="user:test"
    )
    assert run.status == dg.DagsterRunStatus.QUEUED
    return run.run_id


def dequeue(daemon, context) -> list[str]:
    """One daemon iteration; the run ids it launched, in launch order."""
    launcher = context.instance.run_launcher
    before = len(launcher.queue())
    list(daemon.run_iteration(context))
    return [run.run_id for run in launcher.queue()[before:]]


def finish(instance, run_id: str) -> None:
    run = instance.get_run_by_id(run_id)
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name),
        run_id=run_id,
    )


def test_critical_runs_dequeue_before_normal_and_batch(queue):
    factory, context, daemon = queue
    batch = submit(factory, context, "tenant-a", "batch")
    normal = submit(factory, context, "tenant-a", "normal")
    critical = submit(factory, context, "tenant-a", "critical")  # submitted last

    order = []
    for _ in range(3):
        [launched] = dequeue(daemon, context)
        order.append(launched)
        assert dequeue(daemon, context) == [], "tenant-a runs one at a time"
        finish(context.instance, launched)

    assert order == [critical, normal, batch]
    tags = context.instance.get_run_by_id(critical).tags
    assert (tags[TENANT_TAG], tags[PRIORITY_TAG], tags["dagster/priority"]) == ("tenant-a", "critical", "4")
    assert tags["dagster/partition"] == "2026-11-01|tenant-a"
    assert tags["spotify-jobs/actor"] == "user:test"


def test_within_one_dequeue_higher_priority_launches_first(queue):
    factory, context, daemon = queue
    low = submit(factory, context, "tenant-b", "low")
    high = submit(factory, context, "gpu-tenant", "high")
    critical = submit(factory, context, "tenant-b", "critical")

    assert dequeue(daemon, context) == [critical, high, low]


def test_a_tenant_at_its_limit_does_not_block_other_tenants(queue):
    factory, context, daemon = queue
    a_runs = [submit(factory, context, "tenant-a", "critical", day=f"2026-11-0{d}") for d in (1, 2, 3)]
    b_run = submit(factory, context, "tenant-b", "batch")

    launched = dequeue(daemon, context)

    assert launched == [a_runs[0], b_run], "tenant-a's limit is 1; tenant-b's batch run still goes"
    assert {context.instance.get_run_by_id(r).status for r in a_runs[1:]} == {dg.DagsterRunStatus.QUEUED}
    finish(context.instance, a_runs[0])
    assert dequeue(daemon, context) == [a_runs[1]]


def test_gpu_runs_respect_the_gpu_limit(queue):
    factory, context, daemon = queue
    first_gpu = submit(factory, context, "gpu-tenant", "high", spec=TRAINING)
    second_gpu = submit(factory, context, "gpu-tenant", "high", spec=TRAINING)
    cpu_run = submit(factory, context, "gpu-tenant", "normal")

    assert dequeue(daemon, context) == [first_gpu, cpu_run]  # one GPU run per tenant; 1 GPU in all
    finish(context.instance, first_gpu)
    assert dequeue(daemon, context) == [second_gpu]


def test_tenant_limits_come_from_the_registry(registry):
    limits = instance_queue_config(registry)["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 3} in limits
    per_tenant = {limit["value"]: limit["limit"] for limit in limits if isinstance(limit["value"], str)}
    assert per_tenant == {"tenant-a": 1, "tenant-b": 3, "gpu-tenant": 3, "true": 1}
    assert {"key": "spotify-jobs/gpu", "value": "true", "limit": 1} in limits


def test_dagster_yaml_holds_the_queue_of_the_repo_registry(monkeypatch):
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    expected = instance_queue_config(load_registry())
    assert config["run_coordinator"] == expected["run_coordinator"], (
        "regenerate: spotify-jobs render-run-queue"
    )
    assert config["run_retries"] == expected["run_retries"]
    monkeypatch.setenv("PARALLEL_JOBS", "3")
    with instance_for_test(overrides=config) as instance:
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 3
