"""Protects the production instance: the dagster.yaml the Helm values produce (Postgres storage, K8sRunLauncher,
QueuedRunCoordinator with the per-tenant limits, run monitoring and retries) loads against a real PostgreSQL
server, stores a real tenant run there and queues runs with their priority and tenant tags."""

from __future__ import annotations

from urllib.parse import urlparse

import dagster as dg
import pytest
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresRunStorage

from spotify_jobs.automation.run_queue import open_workspace, submit_tenant_run
from spotify_jobs.definitions import TENANT_JOBS, build_definitions
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.k8s.manifests import write_offline_kubeconfig
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.deploy.helm import chart_run_launcher_config, merged_values
from spotify_jobs_tests.deploy.tree import DEPLOY

PLATFORM_NAMESPACE = "spotify-ai-agent-prd"
DATE = "2026-11-20"


def production_instance_yaml(values: dict, postgres_url: str, kubeconfig: str) -> dict:
    """dagster.yaml as the chart's instance template writes it from `values`, pointed at a test database
    (host, port, database) and an offline kubeconfig instead of the in-cluster one."""
    url = urlparse(postgres_url)
    pg = values["postgresql"]
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    launcher = chart_run_launcher_config(values, PLATFORM_NAMESPACE)
    launcher.update(load_incluster_config=False, kubeconfig_file=kubeconfig)
    storage = {
        "hostname": url.hostname,
        "port": url.port,
        "username": url.username,
        "password": "",
        "db_name": url.path.lstrip("/"),
        "params": {k: v for k, v in pg["postgresqlParams"].items() if k != "sslmode"},
    }
    return {
        "storage": {"postgres": {"postgres_db": storage}},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": coordinator["maxConcurrentRuns"],
                "dequeue_interval_seconds": coordinator["dequeueIntervalSeconds"],
                "tag_concurrency_limits": coordinator["tagConcurrencyLimits"],
            },
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher},
        "run_monitoring": {
            "enabled": daemon["runMonitoring"]["enabled"],
            "start_timeout_seconds": daemon["runMonitoring"]["startTimeoutSeconds"],
            "max_resume_run_attempts": daemon["runMonitoring"]["maxResumeRunAttempts"],
        },
        "run_retries": {
            "enabled": daemon["runRetries"]["enabled"],
            "max_retries": daemon["runRetries"]["maxRetries"],
            "retry_on_asset_or_op_failure": daemon["runRetries"]["retryOnAssetOrOpFailure"],
        },
        "telemetry": {"enabled": False},
    }


@pytest.fixture
def production_instance(tmp_path, postgres_url):
    home = tmp_path / "dagster_home"
    home.mkdir()
    kubeconfig = write_offline_kubeconfig(tmp_path)
    values = merged_values("values-prod.yaml")
    (home / "dagster.yaml").write_text(
        yaml.safe_dump(production_instance_yaml(values, postgres_url, kubeconfig))
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_production_instance_config_loads_against_postgres(production_instance):
    assert isinstance(production_instance.run_storage, PostgresRunStorage)
    assert isinstance(production_instance.run_launcher, K8sRunLauncher)
    coordinator = production_instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    registry = load_registry()
    limits = {
        (rule["key"], str(rule.get("value"))): rule["limit"]
        for rule in coordinator.get_run_queue_config().tag_concurrency_limits
    }
    for tenant in registry.tenants:
        assert limits[("spotify-jobs/tenant", tenant.id)] == tenant.max_concurrent_runs


def test_a_tenant_etl_run_is_stored_in_postgres(production_instance, settings, platform):
    tenant = "startup-042"
    generate_exports(platform.tenant_storage(tenant), DATE, GenerationConfig(records=500, seed=3))
    spec = TENANT_JOBS[JobType.DATA_ETL]
    run_config, tags = TenantJobFactory(settings, load_registry()).run_parts(spec, tenant)
    production_instance.add_dynamic_partitions("tenants", [tenant])
    partition = spec.partition_key(tenant, DATE)
    job = build_definitions(settings).resolve_job_def(spec.name)
    result = job.execute_in_process(
        run_config=run_config,
        instance=production_instance,
        tags={**tags, **spec.partition_tags(partition)},
        raise_on_error=False,
    )
    assert result.success
    record = production_instance.get_run_record_by_id(result.run_id)
    assert record.dagster_run.tags["spotify-jobs/tenant"] == tenant
    assert production_instance.get_latest_materialization_event(dg.AssetKey("daily_track_stats")) is not None


def test_submitted_runs_wait_in_the_queue_with_their_priority(production_instance, settings):
    factory = TenantJobFactory(settings, load_registry())
    with open_workspace(production_instance, DEPLOY.parent / "workspace.yaml") as context:
        run = submit_tenant_run(
            context.create_request_context(),
            factory,
            TENANT_JOBS[JobType.SECURITY_SCAN],
            "enterprise-001",
            DATE,
            priority="critical",
        )
    stored = production_instance.get_run_by_id(run.run_id)
    assert stored.status == dg.DagsterRunStatus.QUEUED
    assert stored.tags["dagster/priority"] == "4"
    assert stored.tags["spotify-jobs/tenant"] == "enterprise-001"
