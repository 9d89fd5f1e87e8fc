"""Protects the operator verbs against a real instance in a temp DAGSTER_HOME (the repo's dagster.yaml) and
the real code location: create-* queue runs with the tenant's placement or print run config, tags and
step manifests under DRY_RUN; bad input is refused with what is allowed; list, monitor and cancel work on
real runs; render-run-queue reproduces dagster.yaml."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from spotify_jobs.automation.run_queue import instance_queue_config
from spotify_jobs.cli import ops
from spotify_jobs.definitions import TENANT_JOBS, build_definitions
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.k8s.tags import PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.automation.conftest import REPO_ROOT, cli, json_lines


@pytest.fixture
def instance(home_instance):
    """Runs are read from the instance the CLI writes to."""
    return home_instance


def queue_etl(tenant: str, *extra: str) -> dict:
    result = cli("create-etl-job", "--tenant", tenant, "--date", "2026-11-01", *extra, workspace=True)
    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    return line


def test_create_queues_a_run_with_the_tenants_placement(instance):
    line = queue_etl("startup-042")

    assert (line["submitted"], line["status"], line["job"]) == (True, "QUEUED", "data_etl_job")
    run = instance.get_run_by_id(line["run_id"])
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert (run.tags[TENANT_TAG], run.tags[TIER_TAG], run.tags[PRIORITY_TAG]) == (
        "startup-042",
        "small",
        "low",
    )
    assert run.tags["dagster/priority"] == "1"
    assert run.tags["dagster/partition"] == "2026-11-01|startup-042"
    assert run.tags["spotify-jobs/actor"].startswith("user:")
    assert run.remote_job_origin.location_name == "spotify_jobs", "the daemon finds the location by this name"
    assert instance.has_dynamic_partition(tenant_partitions.name, "startup-042"), "onboarded on the spot"


def test_priority_and_tier_overrides_and_the_tenant_from_the_environment(instance, env):
    env.setenv("TENANT_ID", "enterprise-001")
    result = cli(
        "create-etl-job", "--priority", "critical", "--tier", "large", "--date", "2026-11-02", workspace=True
    )
    assert result.exit_code == 0, result.output
    run = instance.get_run_by_id(json_lines(result)[0]["run_id"])
    assert (run.tags[TENANT_TAG], run.tags[PRIORITY_TAG], run.tags[TIER_TAG]) == (
        "enterprise-001",
        "critical",
        "large",
    )
    assert run.tags["dagster/priority"] == "4"


@pytest.mark.parametrize(("verb", "job_type"), list(ops.CREATE_VERBS.items()))
def test_every_create_verb_queues_its_job(instance, verb, job_type):
    result = cli(verb, "--tenant", "enterprise-001", "--date", "2026-11-01", workspace=True)

    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    assert line["job"] == job_type.spec.job_name
    run = instance.get_run_by_id(line["run_id"])
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags["spotify-jobs/job-type"] == job_type.value
    # training is partitioned by tenant only; billing's month starting 2026-11-01 has the same key as the day
    expected = "enterprise-001" if job_type is JobType.ML_TRAINING else "2026-11-01|enterprise-001"
    assert run.tags["dagster/partition"] == expected


def test_dry_run_prints_run_config_tags_and_step_manifests_and_submits_nothing(instance, env):
    env.setenv("DRY_RUN", "true")
    result = cli("create-etl-job", "--tenant", "startup-042", "--date", "2026-11-01", workspace=True)

    assert result.exit_code == 0, result.output
    header, *manifests = list(yaml.safe_load_all(result.stdout))
    assert header["dry_run"] is True and header["submitted"] is False
    assert header["partition"] == "2026-11-01|startup-042"
    assert header["tags"][TENANT_TAG] == "startup-042"
    executor = header["run_config"]["execution"]["config"]
    assert executor["job_namespace"] == "sj-dev-startup-042"
    assert len(manifests) == len(header["steps"]) >= 1
    for manifest in manifests:
        assert manifest["kind"] == "Job"
        assert manifest["metadata"]["namespace"] == "sj-dev-startup-042"
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"cpu": "250m", "memory": "512Mi"}
    assert not instance.get_runs()
    assert not instance.has_dynamic_partition(tenant_partitions.name, "startup-042")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nobody-999"], "unknown tenant 'nobody-999'; registered: enterprise-001"),
        (["--tenant", "../etc"], "not a DNS-1123 label"),
        (
            ["--tenant", "startup-042", "--tier", "huge"],
            "allowed: micro, small, medium, large, xlarge, enterprise",
        ),
        (["--tenant", "startup-042", "--priority", "urgent"], "allowed: critical, high, normal, low, batch"),
        (["--tenant", "startup-042", "--tier", "enterprise"], "quota"),
        ([], "no tenant: pass --tenant or set TENANT_ID; registered: enterprise-001"),
    ],
)
def test_bad_input_is_refused_with_what_is_allowed(instance, args, message):
    result = cli("create-etl-job", *args, workspace=True)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not instance.get_runs()


def test_create_tenant_jobs_queues_every_job_the_tenant_can_run(instance):
    result = cli("create-tenant-jobs", "--tenant", "startup-042", "--date", "2026-11-01", workspace=True)

    assert result.exit_code == 0, result.output
    lines = {line["job"]: line for line in json_lines(result)}
    assert set(lines) == {spec.name for spec in TENANT_JOBS.values()}
    for job_type, spec in TENANT_JOBS.items():
        if job_type is JobType.ML_TRAINING:  # startup-042: small tier, no GPU quota
            assert lines[spec.name]["submitted"] is False
            assert "GPU" in lines[spec.name]["refused"] or "tier" in lines[spec.name]["refused"]
        else:
            assert lines[spec.name]["submitted"] is True
    submitted = [line for line in lines.values() if line["submitted"]]
    assert len(instance.get_runs()) == len(submitted)


def test_list_jobs_filters_by_status_and_tenant(instance):
    queued = queue_etl("startup-042")
    queue_etl("enterprise-001")

    table = cli("list-jobs")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "RUN_ID",
        "JOB",
        "TENANT",
        "PARTITION",
        "PRIORITY",
        "STATUS",
        "CREATED",
        "DURATION",
    ]
    assert len(rows) == 2

    mine = json_lines(cli("list-jobs", "--filter", "queued", "--tenant", "startup-042", "--json"))
    assert [row["run_id"] for row in mine] == [queued["run_id"]]
    assert cli("list-jobs", "--filter", "succeeded").stdout.strip() == "no runs match"
    bad = cli("list-jobs", "--filter", "exploded")
    assert bad.exit_code == 2 and "queued" in bad.output and "succeeded" in bad.output
    assert "unknown tenant" in cli("list-jobs", "--tenant", "nobody-999").output


def test_cancel_a_queued_run(instance, env):
    line = queue_etl("startup-042")
    short = line["run_id"][:8]

    env.setenv("DRY_RUN", "true")
    dry = cli("cancel-job", "--run", short)
    assert json_lines(dry)[0]["would_cancel"] is True
    assert instance.get_run_by_id(line["run_id"]).status == dg.DagsterRunStatus.QUEUED

    env.setenv("DRY_RUN", "false")
    done = cli("cancel-job", "--run", short)
    assert done.exit_code == 0, done.output
    assert json_lines(done)[0]["status"] == "CANCELED"
    again = cli("cancel-job", "--run", line["run_id"])
    assert again.exit_code == 2 and "already ended (CANCELED)" in again.output
    assert "no run 'feedbeef'" in cli("cancel-job", "--run", "feedbeef").output


def test_monitor_a_finished_run_shows_its_steps_and_logs(instance):
    settings = load_settings()
    platform = PlatformResource.from_settings(settings)
    generate_exports(
        platform.tenant_storage("startup-042"), "2026-11-01", GenerationConfig(records=300, seed=7)
    )
    instance.add_dynamic_partitions(tenant_partitions.name, ["startup-042"])
    job = build_definitions(settings).resolve_job_def(TENANT_JOBS[JobType.DATA_ETL].name)
    result = job.execute_in_process(instance=instance, partition_key="2026-11-01|startup-042")

    shown = cli("monitor-job", "--run", result.run_id[:8], "--lines", "5")

    assert shown.exit_code == 0, shown.output
    head, steps = shown.stdout.split("\nsteps:\n")
    assert head.splitlines()[0] == (
        f"run {result.run_id}  job data_etl_job  tenant startup-042  partition 2026-11-01|startup-042  status SUCCESS"
    )
    assert len([line for line in head.splitlines()[1:] if line]) == 5
    assert "RUN_SUCCESS" in head or "Finished execution of run" in head
    step_rows = {
        line.split()[0]: line.split()[1] for line in steps.splitlines()[1:] if line and "status:" not in line
    }
    assert step_rows and set(step_rows.values()) == {"SUCCESS"}
    assert shown.stdout.rstrip().endswith("status: SUCCESS")


def test_monitor_stops_following_at_the_timeout_and_reports_failures(instance):
    line = queue_etl("startup-042")

    waiting = cli("monitor-job", "--run", line["run_id"], "--timeout", "0")
    assert waiting.exit_code == 3, waiting.output
    assert "status: QUEUED" in waiting.stdout

    instance.report_run_failed(instance.get_run_by_id(line["run_id"]))
    failed = cli("monitor-job", "--run", line["run_id"], "--no-follow")
    assert failed.exit_code == 1
    assert "status: FAILURE" in failed.stdout


def test_render_run_queue_reproduces_dagster_yaml(env):
    result = cli("render-run-queue")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == instance_queue_config(load_registry())
    repo = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    rendered = yaml.safe_load(result.stdout)
    assert {k: repo[k] for k in rendered} == rendered
