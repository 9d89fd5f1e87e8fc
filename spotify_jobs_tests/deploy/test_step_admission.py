"""Protects admission: the run worker pods and step pods dagster-k8s builds from our Helm values (run
launcher) plus the k8s config builder (executor) are schema-valid and "restricted", and every step pod
would be admitted in its tenant's namespace as rendered (namespace, service account, ConfigMap, Secrets,
priority class, LimitRange, ResourceQuota)."""

from __future__ import annotations

import kubernetes.client
import kubernetes_validate
import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

from spotify_jobs.k8s.config import GPU_RESOURCE, PlacementError, build_executor_config, resolve_placement
from spotify_jobs.k8s.manifests import write_offline_kubeconfig
from spotify_jobs.k8s.naming import tenant_namespace
from spotify_jobs.k8s.tenant_objects import platform_objects, tenant_objects
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.quantities import cpu_millicores, memory_mib
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.deploy.helm import chart_run_launcher_config, merged_values
from spotify_jobs_tests.deploy.pod_security import restricted_violations

K8S_VERSION = "1.30.0"
GPU_OP = "recommendation_model"


@pytest.fixture(scope="module")
def settings(production_profile):
    return load_settings(
        executor="k8s",
        environment=production_profile.environment,
        namespace=production_profile.platform_namespace,
        image=production_profile.image,
        pseudonym_secret="test-only",
    )


@pytest.fixture(scope="module", params=["values.yaml", "values-prod.yaml"])
def launcher(request, production_profile, tmp_path_factory) -> K8sRunLauncher:
    """The K8sRunLauncher of a Dagster instance configured as the chart configures it from our values."""
    workdir = tmp_path_factory.mktemp("instance")
    config = chart_run_launcher_config(merged_values(request.param), production_profile.platform_namespace)
    config.update(load_incluster_config=False, kubeconfig_file=write_offline_kubeconfig(workdir))
    (workdir / "dagster.yaml").write_text(
        yaml.safe_dump(
            {"run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}}
        )
    )
    instance = DagsterInstance.from_config(str(workdir))
    yield instance.run_launcher
    instance.dispose()


def serialize(job) -> dict:
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def run_worker_job(launcher: K8sRunLauncher, image: str) -> dict:
    """The run worker Job, built as K8sRunLauncher builds it (container context of the run, then the Job)."""
    run = DagsterRun(job_name="data_etl_job", run_id="0123456789abcdef")
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(image, launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0123456789abcdef",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name},
    )
    return serialize(job) | {"_namespace": context.namespace}


def step_job(launcher: K8sRunLauncher, executor_config: dict, op: str) -> dict:
    """A step Job, built as K8sStepHandler builds it: the run launcher's container context, then the
    executor's (from its config, as dagster-k8s's k8s_job_executor reads it), then the op's override."""
    run = DagsterRun(job_name="tenant_job", run_id="0123456789abcdef")
    executor_context = K8sContainerContext(
        image_pull_policy=executor_config["image_pull_policy"],
        service_account_name=executor_config["service_account_name"],
        env_config_maps=executor_config["env_config_maps"],
        env_secrets=executor_config["env_secrets"],
        env_vars=executor_config["env_vars"],
        namespace=executor_config["job_namespace"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor_config["step_k8s_config"]),
    )
    context = (
        K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
        .merge(executor_context)
        .merge(
            K8sContainerContext(
                run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
                    executor_config["per_step_k8s_config"].get(op, {})
                )
            )
        )
    )
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(executor_config["job_image"], launcher),
        args=["dagster", "api", "execute_step", "{}"],
        job_name=f"dagster-step-{op}",
        pod_name=f"dagster-step-{op}",
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": op},
    )
    return serialize(job) | {"_namespace": context.namespace}


def check_pod(pod_spec: dict) -> None:
    assert restricted_violations(pod_spec) == []
    volumes = [v["name"] for v in pod_spec.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), volumes
    for container in pod_spec["containers"]:
        paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert len(paths) == len(set(paths)), paths
        names = [e["name"] for e in container.get("env", [])]
        assert len(names) == len(set(names)), names


def test_run_worker_pod_is_valid_and_restricted(launcher, production_profile):
    body = run_worker_job(launcher, production_profile.image)
    assert body.pop("_namespace") == production_profile.platform_namespace
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    spec = body["spec"]["template"]["spec"]
    check_pod(spec)
    assert spec["serviceAccountName"] == "dagster"
    assert spec.get("automountServiceAccountToken", True), "the run worker calls the Kubernetes API"
    (container,) = spec["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}


def tenant_placements(registry):
    for tenant in registry.tenants:
        for job_type in JobType:
            try:
                yield tenant, resolve_placement(tenant, job_type)
            except PlacementError:
                continue


def test_step_pods_are_admitted_in_their_tenant_namespace(launcher, registry, settings, production_profile):
    platform = {(o["kind"], o["metadata"]["name"]) for o in platform_objects(production_profile)}
    checked = 0
    for tenant, placement in tenant_placements(registry):
        objects = tenant_objects(tenant, production_profile)
        present = {(o["kind"], o["metadata"]["name"]) for o in objects}
        (limit_range,) = [o for o in objects if o["kind"] == "LimitRange"]
        (quota,) = [o for o in objects if o["kind"] == "ResourceQuota"]
        executor_config = build_executor_config(placement, settings, gpu_ops=[GPU_OP])
        for op in (GPU_OP, "plain_step") if placement.gpu else ("plain_step",):
            body = step_job(launcher, executor_config, op)
            namespace = body.pop("_namespace")
            assert namespace == tenant_namespace(production_profile.environment, tenant.id)
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
            spec = body["spec"]["template"]["spec"]
            check_pod(spec)
            assert ("ServiceAccount", spec["serviceAccountName"]) in present
            assert ("PriorityClass", spec["priorityClassName"]) in platform
            (container,) = spec["containers"]
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source["secretRef"]
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in present, (tenant.id, ref)
            for variable in container["env"]:
                secret = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if secret:
                    assert ("Secret", secret["name"]) in present, (tenant.id, secret)
            resources = container["resources"]
            assert resources["requests"] == {"cpu": placement.tier.cpu, "memory": placement.tier.memory}
            maximum = limit_range["spec"]["limits"][0]["max"]
            hard = quota["spec"]["hard"]
            for kind in ("requests", "limits"):
                assert cpu_millicores(resources[kind]["cpu"]) <= cpu_millicores(maximum["cpu"])
                assert memory_mib(resources[kind]["memory"]) <= memory_mib(maximum["memory"])
                assert cpu_millicores(resources[kind]["cpu"]) <= cpu_millicores(hard[f"{kind}.cpu"])
            gpus = int(resources["limits"].get(GPU_RESOURCE, 0))
            assert gpus == (1 if op == GPU_OP else 0)
            assert gpus <= int(hard[f"requests.{GPU_RESOURCE}"])
            checked += 1
    # 3 tenants x 5 job types, less startup-042's refused training, plus the two GPU steps.
    assert checked == 3 * 5 - 1 + 2
