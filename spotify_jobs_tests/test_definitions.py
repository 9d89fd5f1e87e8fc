"""Protects the code location: it loads without a cluster, every asset is documented and grouped, every job,
schedule and sensor resolves, and Dagster's own validator accepts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from spotify_jobs.definitions import TENANT_JOBS, build_definitions, defs
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.tiers import JobType

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_job_schedule_and_sensor_resolves():
    repository = defs.get_repository_def()
    job_names = {job.name for job in repository.get_all_jobs()}
    assert {spec.job_name for spec in (jt.spec for jt in JobType)} <= job_names
    for schedule in repository.schedule_defs:
        assert schedule.job_name in job_names
    for sensor in repository.sensor_defs:
        assert sensor.name


def test_every_asset_has_a_docstring_group_owner_and_kind():
    for assets_def in defs.resolve_asset_graph().assets_defs:
        for key in assets_def.keys:
            spec = assets_def.specs_by_key[key]
            assert spec.description, f"{key.to_user_string()} has no docstring"
            assert spec.group_name and spec.group_name != "default", f"{key.to_user_string()} has no group"
            assert spec.owners, f"{key.to_user_string()} has no owner"
            assert spec.kinds, f"{key.to_user_string()} has no kinds"


def test_jobs_tag_runs_with_the_partitions_tenant_placement():
    spec = TENANT_JOBS[JobType.DATA_ETL]
    job = defs.resolve_job_def(spec.name)
    key = spec.partition_key("startup-042", "2026-11-01")
    tags = job.partitioned_config.get_tags_for_partition_key(key, job.name)
    assert tags["spotify-jobs/tenant"] == "startup-042"
    assert tags["spotify-jobs/tier"] == "small"
    assert tags["spotify-jobs/priority"] == "low"
    assert tags["dagster/priority"] == "1"


def test_k8s_executor_is_chosen_by_settings():
    k8s_defs = build_definitions(load_settings(executor="k8s"))
    job = k8s_defs.resolve_job_def(TENANT_JOBS[JobType.DATA_ETL].name)
    assert job.executor_def.name == "k8s"
    key = TENANT_JOBS[JobType.DATA_ETL].partition_key("startup-042", "2026-11-01")
    config = job.partitioned_config.get_run_config_for_partition_key(key)
    assert config["execution"]["config"]["job_namespace"] == "sj-dev-startup-042"
    assert defs.resolve_job_def(TENANT_JOBS[JobType.DATA_ETL].name).executor_def.name == "in_process"


def test_dagster_definitions_validate_accepts_the_code_location(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "spotify_jobs.definitions"],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_torch_import_when_loading_the_code_location():
    probe = "import sys, spotify_jobs.definitions; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_dagster_job_execute_runs_a_tenant_partition(tmp_path):
    data_root = tmp_path / "data"
    storage = TenantStorage(LocalObjectStore(data_root), "startup-042")
    generate_exports(storage, "2026-11-20", GenerationConfig(records=300, seed=1))
    home = tmp_path / "home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:  # onboarded, as the sensor or CLI would
        instance.add_dynamic_partitions("tenants", ["startup-042"])
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "spotify_jobs.definitions", "-j", "data_etl_job",
         "--tags", '{"dagster/partition": "2026-11-20|startup-042"}'],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home), "SPOTIFY_JOBS_DATA_ROOT": str(data_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert storage.exists("assets/daily_track_stats/date=2026-11-20.parquet")
