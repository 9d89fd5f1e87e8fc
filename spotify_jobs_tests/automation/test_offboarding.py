"""Protects offboarding: the tenant's partition is removed only after its final backup succeeded (audited),
a failed backup leaves the tenant onboarded and is re-submitted on the next try, a pending one is waited
for rather than duplicated; the CLI refuses tenants that are not onboarded."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.test_utils import instance_for_test

from spotify_jobs.automation.offboarding import FINAL_BACKUP, OFFBOARD_TAG, NotOnboarded, offboard
from spotify_jobs.automation.run_queue import instance_queue_config, open_workspace
from spotify_jobs.observability.audit import AuditTrail
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.automation.conftest import cli, json_lines
from spotify_jobs_tests.automation.location import TEST_JOBS

BACKUP = TEST_JOBS[JobType.TENANT_BACKUP]


@pytest.fixture
def workspace(tmp_path, settings):
    path = tmp_path / "workspace.yaml"
    location = {"module_name": "spotify_jobs_tests.automation.location", "location_name": "spotify_jobs"}
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    overrides = {
        **instance_queue_config(load_registry(settings.tenant_registry), 10),
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    with instance_for_test(overrides=overrides) as instance, open_workspace(instance, path) as context:
        instance.add_dynamic_partitions(tenant_partitions.name, ["startup-042"])
        yield context


def attempt(workspace, factory, platform):
    return offboard(
        workspace,
        factory,
        BACKUP,
        platform,
        "startup-042",
        "2026-11-30",
        actor="user:ops",
        timeout=0,
        interval=0.1,
    )


def end_run(instance, run_id: str, event: DagsterEventType) -> None:
    """What the run worker reports when the backup run ends."""
    run = instance.get_run_by_id(run_id)
    instance.report_dagster_event(
        DagsterEvent(event_type_value=event.value, job_name=run.job_name), run_id=run_id
    )


def test_the_partition_goes_only_after_the_final_backup_succeeded(workspace, factory, platform):
    instance = workspace.instance
    pending = attempt(workspace, factory, platform)

    assert pending.offboarded is False
    assert pending.backup.status == dg.DagsterRunStatus.QUEUED
    assert pending.backup.job_name == BACKUP.name
    assert pending.backup.tags[OFFBOARD_TAG] == FINAL_BACKUP
    assert pending.backup.tags["spotify-jobs/priority"] == "high"
    assert instance.has_dynamic_partition(tenant_partitions.name, "startup-042")

    again = attempt(workspace, factory, platform)
    assert again.backup.run_id == pending.backup.run_id, (
        "a pending final backup is waited for, not duplicated"
    )

    end_run(instance, pending.backup.run_id, DagsterEventType.RUN_SUCCESS)
    done = attempt(workspace, factory, platform)

    assert done.offboarded is True
    assert not instance.has_dynamic_partition(tenant_partitions.name, "startup-042")
    [record] = AuditTrail(platform.tenant_storage("startup-042")).records()
    assert (record.action, record.actor, record.run_id) == ("offboarded", "user:ops", pending.backup.run_id)
    with pytest.raises(NotOnboarded, match="nothing to offboard"):
        attempt(workspace, factory, platform)


def test_a_failed_final_backup_keeps_the_tenant_and_is_submitted_again(workspace, factory, platform):
    instance = workspace.instance
    first = attempt(workspace, factory, platform)
    end_run(instance, first.backup.run_id, DagsterEventType.RUN_FAILURE)

    second = attempt(workspace, factory, platform)

    assert second.offboarded is False
    assert second.backup.run_id != first.backup.run_id
    assert instance.has_dynamic_partition(tenant_partitions.name, "startup-042")
    assert not list(AuditTrail(platform.tenant_storage("startup-042")).records())


def test_the_cli_refuses_a_tenant_that_is_not_onboarded(home_instance):
    result = cli("offboard-tenant", "--tenant", "startup-042", "--timeout", "0", workspace=True)
    assert result.exit_code == 2
    assert "has no 'tenants' partition: nothing to offboard" in result.output
    assert "unknown tenant 'nobody-999'" in cli("offboard-tenant", "--tenant", "nobody-999").output


def test_the_cli_queues_the_final_backup_and_waits(home_instance):
    home_instance.add_dynamic_partitions(tenant_partitions.name, ["startup-042"])
    dry = cli("offboard-tenant", "--tenant", "startup-042", "--dry-run")
    assert json_lines(dry)[0]["final_backup"] == "would submit tenant_backup_job"
    assert not home_instance.get_runs()

    result = cli("offboard-tenant", "--tenant", "startup-042", "--timeout", "0", workspace=True)

    assert result.exit_code == 1
    [line] = json_lines(result)
    assert (line["offboarded"], line["status"]) == (False, "QUEUED")
    assert home_instance.get_run_by_id(line["final_backup_run"]).tags[OFFBOARD_TAG] == FINAL_BACKUP
    assert home_instance.has_dynamic_partition(tenant_partitions.name, "startup-042")
