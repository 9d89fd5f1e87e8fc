"""Protects deploy/helm: every values file uses only the dagster chart's documented keys, the pods we
shape (webserver, daemon, code server, run workers) are schema-valid and Pod Security "restricted", and
the values agree with the tenant registry, the k8s config builder and the rendered overlays."""

from __future__ import annotations

import kubernetes_validate
import pytest

from spotify_jobs.k8s.config import (
    SETTINGS_CONFIG_MAP,
    SETTINGS_SECRET,
    STEP_TTL_SECONDS,
    resolve_placement,
    step_k8s_config,
)
from spotify_jobs.k8s.naming import RUN_LAUNCHER_CONFIG
from spotify_jobs.k8s.tags import GPU_TAG, TENANT_TAG
from spotify_jobs.k8s.tenant_objects import USER_DEPLOYMENT
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.deploy.helm import (
    VALUES_FILES,
    ChartKeys,
    chart_run_launcher_config,
    helm_merge,
    load_values,
    long_running_pods,
    merged_values,
    tag_concurrency_limits,
)
from spotify_jobs_tests.deploy.pod_security import restricted_violations

K8S_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def chart_keys() -> ChartKeys:
    return ChartKeys()


@pytest.mark.parametrize("name", VALUES_FILES)
def test_values_use_only_documented_chart_keys(chart_keys, name):
    assert chart_keys.problems(load_values(name)) == []
    assert chart_keys.problems(merged_values(name)) == []


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"dagsterWebserver": {"replicas": 2}}, "dagsterWebserver.replicas: not a documented key"),
        ({"dagsterWebserver": {"topologySpreadConstraints": []}}, "not a documented key"),
        ({"flower": {"enabled": True}}, "the chart's `flower` section is not used here"),
        (
            {
                "dagsterDaemon": {
                    "runCoordinator": {"config": {"queuedRunCoordinator": {"maxConcurentRuns": 1}}}
                }
            },
            "maxConcurentRuns: not a documented key",
        ),
    ],
)
def test_key_check_rejects_undocumented_keys(chart_keys, values, problem):
    (found,) = chart_keys.problems(values)
    assert problem in found


def test_key_check_accepts_kubernetes_fields_below_documented_objects(chart_keys):
    values = {"dagsterWebserver": {"affinity": {"nodeAffinity": {"anything": 1}}, "labels": {"team": "x"}}}
    assert chart_keys.problems(values) == []


def test_helm_merge_replaces_lists_and_merges_maps():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert helm_merge(base, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}


@pytest.mark.parametrize("name", VALUES_FILES)
def test_long_running_pods_are_valid_and_restricted(name):
    pods = long_running_pods(merged_values(name))
    assert set(pods) == {"dagster-webserver", "dagster-daemon", f"user-code-{USER_DEPLOYMENT}"}
    for pod_name, pod in pods.items():
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        assert restricted_violations(pod["spec"]) == [], pod_name
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"], pod_name
        assert container["resources"]["limits"], pod_name


def test_restricted_check_catches_a_root_container():
    pod = long_running_pods(merged_values("values.yaml"))["dagster-webserver"]
    spec = {**pod["spec"], "securityContext": {}}
    spec["containers"] = [{**spec["containers"][0], "securityContext": {"privileged": True}}]
    problems = restricted_violations(spec)
    assert any("privileged" in p for p in problems)
    assert any("runAsNonRoot" in p for p in problems)
    assert any("seccomp" in p for p in problems)
    assert any("drop ALL" in p for p in problems)


def test_production_runs_two_replicas_of_the_services_behind_a_pdb():
    values = merged_values("values-prod.yaml")
    assert values["dagsterWebserver"]["replicaCount"] == 2
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["replicaCount"] == 2
    for section in (values["dagsterWebserver"], deployment):
        terms = section["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        keys = {term["podAffinityTerm"]["topologyKey"] for term in terms}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_prod_code_server_differs_from_the_base_only_where_intended():
    (base,) = load_values("values.yaml")["dagster-user-deployments"]["deployments"]
    (prod,) = load_values("values-prod.yaml")["dagster-user-deployments"]["deployments"]
    changed = {key for key in base.keys() | prod.keys() if base.get(key) != prod.get(key)}
    assert changed == {"replicaCount", "resources"}


@pytest.mark.parametrize("name", VALUES_FILES)
def test_values_agree_with_the_run_launcher_the_renderers_assume(name, production_profile):
    values = merged_values(name)
    launcher = chart_run_launcher_config(values, production_profile.platform_namespace)
    for key in ("service_account_name", "postgres_password_secret", "instance_config_map", "dagster_home"):
        assert launcher[key] == RUN_LAUNCHER_CONFIG[key], key
    assert launcher["load_incluster_config"] is True
    assert launcher["env_config_maps"] == [SETTINGS_CONFIG_MAP]
    assert launcher["env_secrets"] == [SETTINGS_SECRET]
    assert values["rbacEnabled"] is False and values["dagster-user-deployments"]["rbacEnabled"] is False
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["name"] == USER_DEPLOYMENT
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "spotify_jobs.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}
    images = {
        f"{s['image']['repository']}:{s['image']['tag']}"
        for s in (values["dagsterWebserver"], values["dagsterDaemon"], deployment)
    }
    assert images == {production_profile.image}


def test_run_worker_config_is_the_step_builders(registry):
    """Steps inherit the run launcher's runK8sConfig; identical pieces de-duplicate, different ones
    would give step pods a second /tmp mount or another security context."""
    run_k8s = load_values("values.yaml")["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    step = step_k8s_config(resolve_placement(registry.get("startup-042"), JobType.DATA_ETL))
    for part in ("security_context", "volume_mounts", "env"):
        assert run_k8s["containerConfig"][part] == step["container_config"][part], part
    for part in ("security_context", "volumes"):
        assert run_k8s["podSpecConfig"][part] == step["pod_spec_config"][part], part
    assert run_k8s["jobSpecConfig"] == {"ttl_seconds_after_finished": STEP_TTL_SECONDS}


@pytest.mark.parametrize("name", VALUES_FILES)
def test_run_queue_limits_match_the_registry(name, registry):
    values = merged_values(name)
    limits = tag_concurrency_limits(values)
    per_tenant = {
        rule["value"]: rule["limit"]
        for rule in limits
        if rule["key"] == TENANT_TAG and isinstance(rule["value"], str)
    }
    assert per_tenant == {t.id: t.max_concurrent_runs for t in registry.tenants}
    (unique,) = [rule for rule in limits if rule["key"] == TENANT_TAG and isinstance(rule["value"], dict)]
    assert unique == {
        "key": TENANT_TAG,
        "value": {"applyLimitPerUniqueValue": True},
        "limit": max(t.max_concurrent_runs for t in registry.tenants),
    }
    (gpu,) = [rule for rule in limits if rule["key"] == GPU_TAG]
    assert gpu == {"key": GPU_TAG, "value": "true", "limit": sum(t.quota.gpu for t in registry.tenants)}
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    total = coordinator["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
    assert total >= sum(t.max_concurrent_runs for t in registry.tenants)


def test_monitoring_retries_and_compute_logs_are_on():
    values = merged_values("values-prod.yaml")
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["startTimeoutSeconds"] > 0
    assert daemon["runRetries"]["enabled"] and daemon["runRetries"]["maxRetries"] >= 1
    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager"
    assert logs["config"]["s3ComputeLogManager"]["bucket"] == "spotify-jobs-prd-compute-logs"
    assert logs["config"]["s3ComputeLogManager"]["localDir"].startswith("/tmp/")  # the writable scratch
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
