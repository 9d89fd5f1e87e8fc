"""Protects k8s execution: every step of every job, at every tier and priority, renders through dagster-k8s's own
step handler into a schema-valid, Pod Security "restricted" Job in the tenant's namespace with the builder's
resources, labels and priority."""

from __future__ import annotations

import itertools

import kubernetes_validate
import pytest

from spotify_jobs.definitions import TENANT_JOBS
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.k8s.config import GPU_RESOURCE, PlacementError
from spotify_jobs.k8s.manifests import ManifestRenderer
from spotify_jobs.security.posture import scan_objects
from spotify_jobs.security.report import restricted_profile_findings
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import TIER_ORDER, TIERS, JobType, Priority

K8S_VERSIONS = ("1.30.0", "1.37.0")
RENDER_DATE = "2026-11-01"


@pytest.fixture(scope="module")
def settings():
    return load_settings(executor="k8s", environment="production", pseudonym_secret="test-only")


@pytest.fixture(scope="module")
def factory(settings):
    return TenantJobFactory(settings, load_registry(settings.tenant_registry))


@pytest.fixture(scope="module")
def renderer(settings):
    with ManifestRenderer(settings) as renderer:
        yield renderer


def render(renderer, factory, spec, tenant, tier=None, priority=None):
    run_config, tags = factory.run_parts(spec, tenant, tier=tier, priority=priority)
    tags.update(spec.partition_tags(spec.partition_key(tenant, RENDER_DATE)))
    return renderer.render(spec.name, run_config, tags)


def check_step_job(manifest, *, tenant, job_type, tier, priority, gpu):
    body = manifest.body
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(body, version, strict=True)
    assert body["kind"] == "Job"
    assert restricted_profile_findings(scan_objects([body], check_namespaces=False).findings) == []
    assert body["metadata"]["namespace"] == manifest.namespace == f"sj-prd-{tenant}"
    pod = body["spec"]["template"]
    for labels in (body["metadata"]["labels"], pod["metadata"]["labels"]):
        assert labels["spotify-jobs/tenant"] == tenant
        assert labels["spotify-jobs/job-type"] == job_type.value
        assert labels["spotify-jobs/priority"] == priority.value
        assert labels["spotify-jobs/tier"] == tier
        assert labels["kueue.x-k8s.io/queue-name"] == f"{tenant}-queue"
        assert labels["kueue.x-k8s.io/priority-class"] == priority.priority_class
    spec = pod["spec"]
    assert spec["priorityClassName"] == priority.priority_class
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    expected = {"cpu": TIERS[tier].cpu, "memory": TIERS[tier].memory}
    assert container["resources"]["requests"] == expected
    limits = dict(container["resources"]["limits"])
    assert (limits.pop(GPU_RESOURCE, None) == "1") is gpu
    assert limits == expected
    assert ("nodeSelector" in spec and "tolerations" in spec) is gpu
    assert container["image"] == ("spotify-jobs-gpu:0.1.0" if gpu else "spotify-jobs:0.1.0")


def test_every_job_type_has_a_job():
    assert set(TENANT_JOBS) == set(JobType)


@pytest.mark.parametrize("job_type", list(JobType), ids=lambda j: j.value)
def test_every_step_for_every_tier_and_priority(renderer, factory, job_type):
    spec = TENANT_JOBS[job_type]
    minimum = TIER_ORDER.index(job_type.spec.min_tier)
    for tier, priority in itertools.product(TIER_ORDER, Priority):
        if TIER_ORDER.index(tier) < minimum:
            with pytest.raises(PlacementError, match=f"needs tier {job_type.spec.min_tier}"):
                factory.run_parts(spec, "enterprise-001", tier=tier, priority=priority.value)
            continue
        manifests = render(renderer, factory, spec, "enterprise-001", tier=tier, priority=priority.value)
        assert {m.step_key for m in manifests} >= {a.node_def.name for a in spec.assets}
        assert all(m.body["metadata"]["labels"]["dagster/op"] == m.step_key for m in manifests)
        for manifest in manifests:
            check_step_job(
                manifest,
                tenant="enterprise-001",
                job_type=job_type,
                tier=tier,
                priority=priority,
                gpu=manifest.step_key in spec.gpu_ops,
            )


@pytest.mark.parametrize("tenant", ["enterprise-001", "premium-client-001", "startup-042"])
def test_each_demo_tenant_at_its_own_tier_and_priority(renderer, factory, tenant):
    registered = factory.registry.get(tenant)
    for job_type, spec in TENANT_JOBS.items():
        if job_type.spec.needs_gpu and registered.quota.gpu < 1:
            with pytest.raises(PlacementError, match=f"ml-training needs .*'{tenant}'"):
                factory.run_parts(spec, tenant)
            continue
        for manifest in render(renderer, factory, spec, tenant):
            check_step_job(
                manifest,
                tenant=tenant,
                job_type=job_type,
                tier=registered.tier,
                priority=registered.priority,
                gpu=manifest.step_key in spec.gpu_ops,
            )


def test_only_the_training_step_asks_for_a_gpu():
    gpu_steps = {job_type: spec.gpu_ops for job_type, spec in TENANT_JOBS.items() if spec.gpu_ops}
    assert set(gpu_steps) == {JobType.ML_TRAINING}
    assert gpu_steps[JobType.ML_TRAINING] == {"recommendation_model"}
