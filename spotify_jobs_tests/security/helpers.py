"""Kubernetes objects and tenant data shared by the security tests."""

from __future__ import annotations

import copy

from spotify_jobs.etl.files import landing_files
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.etl.pipeline import TenantStorageSink, run_etl, tenant_key

TENANT = "startup-042"
DATE = "2026-11-20"
LEGACY_DATE = "2026-11-19"


def etl_tenant(platform, tenant: str = TENANT, records: int = 2000) -> None:
    """Landing exports of both variants (with malformed records) and the ETL's clean outputs for them."""
    storage = platform.tenant_storage(tenant)
    configs = {
        DATE: GenerationConfig(records=records, seed=7, malformed_share=0.01, mean_records_per_export=400),
        LEGACY_DATE: GenerationConfig(
            records=records // 2, seed=8, variant="legacy", mean_records_per_export=400
        ),
    }
    for day, config in configs.items():
        generate_exports(storage, day, config)
        files, ignored = landing_files(storage, day)
        key = tenant_key(platform.pseudonym_secret, tenant)
        run_etl(files, key, TenantStorageSink(storage, day), ignored_files=ignored)


NAMESPACE = "sj-dev-startup-042"
DIGEST = "sha256:" + "ab" * 32


def restricted_pod_spec() -> dict:
    """A pod spec that meets every Pod Security Standards control and every hardening control."""
    return {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "step",
                "image": "registry.example.com/spotify-jobs:0.1.0",
                "resources": {
                    "limits": {"cpu": "500m", "memory": "1Gi"},
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "4Gi"}}],
    }


def workload(
    kind: str = "Job", spec: dict | None = None, name: str = "step", namespace: str = NAMESPACE
) -> dict:
    """A workload object of `kind` wrapping `spec` (a restricted pod spec by default)."""
    pod_spec = copy.deepcopy(spec) if spec is not None else restricted_pod_spec()
    meta = {"name": name, "namespace": namespace}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}}  # fmt: skip
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {"template": template}}


def namespace_objects(namespace: str = NAMESPACE, *, deny: bool = True, quota: bool = True) -> list[dict]:
    """A tenant namespace with restricted PSA labels, a default-deny policy and a quota (each optional)."""
    objects: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    ]  # fmt: skip
    if deny:
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "default-deny-all", "namespace": namespace},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})  # fmt: skip
    if quota:
        objects.append({"apiVersion": "v1", "kind": "ResourceQuota",
                        "metadata": {"name": "tenant-quota", "namespace": namespace},
                        "spec": {"hard": {"limits.cpu": "2", "limits.memory": "4Gi"}}})  # fmt: skip
    return objects
