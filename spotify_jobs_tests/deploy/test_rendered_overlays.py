"""Protects deploy/k8s: the committed base and tenant overlays are what the renderer produces from the
registry, every built-in object is schema-valid, `kubectl kustomize` builds each directory, tenant
namespaces enforce Pod Security "restricted", and RBAC grants no wildcard and nothing beyond Jobs/pods."""

from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from spotify_jobs.k8s.naming import RUN_LAUNCHER_CONFIG, tenant_namespace
from spotify_jobs.k8s.tenant_objects import (
    JOB_LAUNCHER_ROLE,
    KUEUE_API,
    platform_files,
    tenant_files,
)
from spotify_jobs.tenancy.tiers import Priority
from spotify_jobs_tests.deploy.tree import DEPLOY, objects_of, yaml_files

K8S_VERSION = "1.30.0"
BASE = DEPLOY / "k8s" / "base"
TENANTS = DEPLOY / "k8s" / "tenants"
# kubernetes-validate ships the schemas of built-in kinds only; Kueue's CRDs are checked structurally.
KUEUE_KINDS = {"ClusterQueue", "LocalQueue", "ResourceFlavor", "WorkloadPriorityClass"}
RENDER_HINT = (
    "regenerate with `spotify-jobs render-base --profile deploy/k8s/profiles/production.yaml --out deploy/k8s/base`"
    " and `spotify-jobs render-tenant --profile deploy/k8s/profiles/production.yaml --all --out deploy/k8s/tenants`"
)


@pytest.fixture(scope="module")
def committed_objects() -> list[dict]:
    return objects_of(yaml_files(BASE)) + objects_of(yaml_files(TENANTS))


def overlay_dirs() -> list[str]:
    tops = [BASE, *sorted(p for p in TENANTS.iterdir() if p.is_dir())]
    return [str(d.relative_to(DEPLOY)) for top in tops for d in (top, top / "kueue")]


def test_base_is_up_to_date(production_profile):
    assert yaml_files(BASE) == platform_files(production_profile), RENDER_HINT


def test_every_tenant_has_an_up_to_date_overlay(registry, production_profile):
    assert sorted(p.name for p in TENANTS.iterdir() if p.is_dir()) == sorted(registry.ids), RENDER_HINT
    for tenant in registry.tenants:
        assert yaml_files(TENANTS / tenant.id) == tenant_files(tenant, production_profile), (
            f"{tenant.id}: {RENDER_HINT}"
        )


def test_every_builtin_object_is_schema_valid(committed_objects):
    kueue = [obj for obj in committed_objects if obj["apiVersion"] == KUEUE_API]
    builtin = [obj for obj in committed_objects if obj["apiVersion"] != KUEUE_API]
    for obj in builtin:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert {obj["kind"] for obj in builtin} >= {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "ServiceAccount",
        "RoleBinding",
        "ClusterRole",
        "ConfigMap",
        "Secret",
        "PriorityClass",
        "PodDisruptionBudget",
        "Service",
    }
    assert {obj["kind"] for obj in kueue} == KUEUE_KINDS
    for obj in kueue:
        assert obj["metadata"]["name"]
        if obj["kind"] == "LocalQueue":
            assert obj["spec"]["clusterQueue"]


def test_schema_validation_rejects_a_misspelt_field(committed_objects):
    quota = next(obj for obj in committed_objects if obj["kind"] == "ResourceQuota")
    broken = {**quota, "spec": {"hardd": quota["spec"]["hard"]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("directory", overlay_dirs())
def test_kubectl_kustomize_builds_the_directory(directory):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: `kubectl kustomize` cannot be run here")
    path = DEPLOY / directory
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    if path.name == "kueue":  # the core objects of the directory above, plus the Kueue ones
        expected = objects_of(yaml_files(path.parent / "core")) + objects_of(yaml_files(path))
    else:
        expected = objects_of(yaml_files(path / "core"))

    def identity(obj):
        return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    assert sorted(built, key=identity) == sorted(expected, key=identity)


def test_tenant_namespaces_enforce_restricted(committed_objects, registry, production_profile):
    namespaces = {obj["metadata"]["name"]: obj for obj in committed_objects if obj["kind"] == "Namespace"}
    for tenant_id in registry.ids:
        labels = namespaces[tenant_namespace(production_profile.environment, tenant_id)]["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    platform = namespaces[production_profile.platform_namespace]["metadata"]["labels"]
    assert platform["pod-security.kubernetes.io/warn"] == "restricted"


def test_rbac_is_least_privilege(committed_objects, registry, production_profile):
    roles = [obj for obj in committed_objects if obj["kind"] in ("Role", "ClusterRole")]
    assert [r["metadata"]["name"] for r in roles] == [JOB_LAUNCHER_ROLE]
    for rule in roles[0]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "update", "patch", "watch"}
        assert set(rule["resources"]) <= {"jobs", "jobs/status", "pods", "pods/log", "events"}
    assert not [obj for obj in committed_objects if obj["kind"] == "ClusterRoleBinding"]
    bindings = [obj for obj in committed_objects if obj["kind"] == "RoleBinding"]
    expected_namespaces = {production_profile.platform_namespace} | {
        tenant_namespace(production_profile.environment, t) for t in registry.ids
    }
    assert {b["metadata"]["namespace"] for b in bindings} == expected_namespaces
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": JOB_LAUNCHER_ROLE,
        }
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": RUN_LAUNCHER_CONFIG["service_account_name"],
                "namespace": production_profile.platform_namespace,
            }
        ]


def test_priority_classes_are_the_platform_priorities(committed_objects):
    for kind in ("PriorityClass", "WorkloadPriorityClass"):
        classes = {obj["metadata"]["name"]: obj["value"] for obj in committed_objects if obj["kind"] == kind}
        assert classes == {p.priority_class: p.class_value for p in Priority}, kind
    values = [p.class_value for p in sorted(Priority, key=lambda p: p.run_priority)]
    assert values == sorted(set(values)), "a higher priority must have a strictly higher class value"


def test_secrets_carry_no_data(committed_objects):
    secrets = [obj for obj in committed_objects if obj["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret and "stringData" not in secret
        assert secret["metadata"]["annotations"]["spotify-jobs/required-keys"]
