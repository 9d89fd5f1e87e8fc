"""Protects the platform's own posture: every step Job it would launch, for every job type, and each
tenant namespace it renders, pass every Pod Security Standards (restricted) and hardening control."""

from __future__ import annotations

import pytest
import yaml

from spotify_jobs.k8s.tags import JOB_TYPE_TAG
from spotify_jobs.security.posture import scan_objects
from spotify_jobs.security.report import restricted_profile_findings
from spotify_jobs.security.scan import render_cluster_objects
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry

DATE = "2026-11-20"
REGISTRY = load_registry()


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "cluster.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "environment": "production",
                "platform_namespace": "spotify-ai-agent-prd",
                "image": "registry.example.com/spotify-jobs:0.1.0",
                "data_root": "s3://spotify-jobs-prd-data/platform",
                "backup_root": "s3://spotify-jobs-prd-backups/platform",
                "database_cidrs": ["10.40.16.0/20"],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def clusters(profile_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("roots")
    settings = load_settings(data_root=str(root / "data"), backup_root=str(root / "backups"))
    return render_cluster_objects(settings, REGISTRY, REGISTRY.ids, DATE, profile_path)


def step_jobs(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "Job"]


def test_every_job_type_the_tenant_may_run_is_rendered(clusters):
    from spotify_jobs.definitions import TENANT_JOBS

    for tenant_id, cluster in clusters.items():
        rendered = {job["metadata"]["labels"][JOB_TYPE_TAG] for job in step_jobs(cluster.objects)}
        refused = {
            spec.job_type.value for spec in TENANT_JOBS.values() if any(spec.name in n for n in cluster.notes)
        }
        assert rendered | refused == {spec.job_type.value for spec in TENANT_JOBS.values()}, tenant_id
        assert not rendered & refused
        assert all(
            job["metadata"]["namespace"] == f"sj-prd-{tenant_id}" for job in step_jobs(cluster.objects)
        )


@pytest.mark.parametrize("tenant_id", REGISTRY.ids)
def test_rendered_step_jobs_have_zero_restricted_profile_findings(clusters, tenant_id):
    jobs = step_jobs(clusters[tenant_id].objects)
    assert jobs
    ledger = scan_objects(jobs, check_namespaces=False)
    assert restricted_profile_findings(ledger.findings) == []
    assert ledger.findings == [], "no hardening finding either"
    assert len(ledger.checked["PSS-RUN-AS-NON-ROOT"]) == len(jobs)


@pytest.mark.parametrize("tenant_id", REGISTRY.ids)
def test_rendered_tenant_namespace_passes_every_namespace_control(clusters, tenant_id):
    ledger = scan_objects(clusters[tenant_id].objects)
    assert ledger.findings == []
    for control_id in ("K8S-NETWORK-DEFAULT-DENY", "K8S-RESOURCE-QUOTA", "K8S-NAMESPACE-PSA"):
        assert {ref.name for ref in ledger.checked[control_id]} == {f"sj-prd-{tenant_id}"}


def test_without_a_cluster_profile_on_the_local_default_namespace_controls_do_not_apply(tmp_path):
    settings = load_settings(data_root=str(tmp_path / "data"), backup_root=str(tmp_path / "backups"))
    [cluster] = render_cluster_objects(settings, REGISTRY, ["startup-042"], DATE).values()
    assert not cluster.namespace_checks
    assert step_jobs(cluster.objects) and all(o["kind"] == "Job" for o in cluster.objects)
    assert any("no cluster profile" in note for note in cluster.notes)
