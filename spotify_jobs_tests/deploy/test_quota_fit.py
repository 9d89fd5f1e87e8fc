"""Protects quota fit: every tenant's step pods that may run at once (the run queue's per-tenant limit x
the executor's steps per run, sized by the config builder at the tenant's tier) fit its ResourceQuota, and
a tenant that cannot train on a GPU is refused at submission, not left pending in the cluster."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from dagster._utils.tags import TagConcurrencyLimitsCounter

from spotify_jobs.k8s.config import (
    GPU_RESOURCE,
    STEPS_PER_RUN,
    PlacementError,
    build_executor_config,
    concurrent_step_pods,
    gpu_step_k8s_config,
    quota_fit_problems,
    resolve_placement,
)
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.quantities import cpu_millicores, memory_mib
from spotify_jobs.tenancy.registry import Tenant, TenantQuota
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.deploy.helm import merged_values, tag_concurrency_limits


@pytest.fixture(scope="module")
def settings():
    return load_settings(executor="k8s", environment="production", pseudonym_secret="test-only")


def runs_admitted_at_once(limits: list[dict], tags: dict[str, str], attempts: int = 50) -> int:
    """How many runs with `tags` Dagster's run queue lets run at once under `limits` (its own counter)."""
    counter = TagConcurrencyLimitsCounter(limits, [])
    admitted = 0
    for _ in range(attempts):
        run = SimpleNamespace(tags=tags)
        if counter.is_blocked(run):
            break
        counter.update_counters_with_launched_item(run)
        admitted += 1
    return admitted


@pytest.mark.parametrize("values_file", ["values.yaml", "values-prod.yaml"])
def test_run_queue_admits_each_tenant_its_max_concurrent_runs(registry, values_file):
    limits = tag_concurrency_limits(merged_values(values_file))
    for tenant in registry.tenants:
        tags = resolve_placement(tenant, JobType.DATA_ETL).run_tags()
        assert runs_admitted_at_once(limits, tags) == tenant.max_concurrent_runs, tenant.id


def test_a_tenant_unknown_to_the_values_is_still_capped(registry):
    limits = tag_concurrency_limits(merged_values("values.yaml"))
    tags = {"spotify-jobs/tenant": "onboarded-later"}
    assert runs_admitted_at_once(limits, tags) == max(t.max_concurrent_runs for t in registry.tenants)


def test_executor_runs_at_most_steps_per_run_at_once(registry, settings):
    for tenant in registry.tenants:
        config = build_executor_config(resolve_placement(tenant, JobType.DATA_ETL), settings)
        assert config["max_concurrent"] == STEPS_PER_RUN


@pytest.mark.parametrize("tenant_id", ["enterprise-001", "premium-client-001", "startup-042"])
def test_concurrent_step_pods_fit_the_quota(registry, settings, tenant_id):
    tenant = registry.get(tenant_id)
    assert quota_fit_problems(tenant) == []
    pods = concurrent_step_pods(tenant)
    assert pods == tenant.max_concurrent_runs * STEPS_PER_RUN
    for job_type in JobType:
        try:
            placement = resolve_placement(tenant, job_type)
        except PlacementError:
            continue  # refused at submission (see below): nothing reaches the cluster
        config = build_executor_config(placement, settings, gpu_ops=["gpu_step"])
        container = config["step_k8s_config"]["container_config"]
        for kind in ("requests", "limits"):
            size = container["resources"][kind]
            assert pods * cpu_millicores(size["cpu"]) <= cpu_millicores(tenant.quota.cpu), (job_type, kind)
            assert pods * memory_mib(size["memory"]) <= memory_mib(tenant.quota.memory), (job_type, kind)
        assert pods <= tenant.quota.pods and pods <= tenant.quota.jobs
        if placement.gpu:
            gpu_limits = config["per_step_k8s_config"]["gpu_step"]["container_config"]["resources"]["limits"]
            # GPU pods beyond the quota are not admitted; those admitted are tier-sized like the rest.
            assert int(gpu_limits[GPU_RESOURCE]) <= tenant.quota.gpu


def test_gpu_step_asks_for_one_gpu():
    assert gpu_step_k8s_config("spotify-jobs-gpu:0.1.0")["container_config"]["resources"]["limits"] == {
        GPU_RESOURCE: "1"
    }


def test_quota_fit_detects_a_quota_too_small():
    cramped = Tenant(
        id="cramped",
        display_name="Cramped",
        tier="medium",
        max_concurrent_runs=3,
        quota=TenantQuota(cpu="2", memory="4Gi", pods=4, jobs=4),
    )
    problems = quota_fit_problems(cramped)
    assert len(problems) == 4  # 6 pods x 500m / 1Gi against 2 cpu, 4Gi, 4 pods, 4 jobs
    assert "6 step pods need 3000 cpu (millicores), quota 2000" in problems[0]
    assert quota_fit_problems(cramped, tier="micro") == [
        "tenant 'cramped' at tier micro: 6 step pods need 6 pods, quota 4",
        "tenant 'cramped' at tier micro: 6 step pods need 6 jobs, quota 4",
    ]


def test_training_is_refused_for_a_tenant_without_gpu_quota(registry):
    startup = registry.get("startup-042")
    assert startup.quota.gpu == 0
    with pytest.raises(
        PlacementError, match="needs tier xlarge or above; tenant 'startup-042' asked for small"
    ):
        resolve_placement(startup, JobType.ML_TRAINING)
    with pytest.raises(PlacementError, match="needs a GPU but tenant 'startup-042' has no GPU quota"):
        resolve_placement(startup, JobType.ML_TRAINING, tier="xlarge")


def test_training_is_placed_for_tenants_with_gpu_quota(registry):
    for tenant_id in ("enterprise-001", "premium-client-001"):
        placement = resolve_placement(registry.get(tenant_id), JobType.ML_TRAINING)
        assert placement.gpu and placement.run_tags()["spotify-jobs/gpu"] == "true"
