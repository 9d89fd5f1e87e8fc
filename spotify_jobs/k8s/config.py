"""The one builder of dagster-k8s config.

Everything a step pod gets — resources from the tier, the restricted security context, the priority class,
labels, GPU scheduling, the tenant's namespace — is decided here, from (job type, tenant, tier, priority,
GPU). Nobody else writes a resources dict. The output is `k8s_job_executor` config
(`job_namespace`, `step_k8s_config`, `per_step_k8s_config`, ...): run config chosen per run, so one job
definition serves every tenant, and the exact same config renders the DRY_RUN manifests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from spotify_jobs.k8s.naming import STEP_SERVICE_ACCOUNT, tenant_namespace, workload_labels
from spotify_jobs.k8s.tags import (
    GPU_TAG,
    GPU_TENANT_TAG,
    JOB_TYPE_TAG,
    PRIORITY_TAG,
    RUN_PRIORITY_TAG,
    TENANT_TAG,
    TIER_TAG,
)
from spotify_jobs.settings import Settings
from spotify_jobs.tenancy.quantities import cpu_millicores, memory_mib
from spotify_jobs.tenancy.registry import Tenant
from spotify_jobs.tenancy.tiers import JobType, Priority, TierSpec, priority_of, tier_spec

STEP_USER_ID = 10001
SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"
SCRATCH_SIZE = "4Gi"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
STEP_TTL_SECONDS = 900  # finished Jobs count against the tenant's count/jobs.batch quota until deleted
STEPS_PER_RUN = 2  # steps of one run that may run at once; the tenant quota is sized for this (deploy/)
SETTINGS_CONFIG_MAP = "spotify-jobs-settings"  # in every tenant namespace (deploy/ renders it)
SETTINGS_SECRET = "spotify-jobs-secrets"


class PlacementError(ValueError):
    """A tenant cannot run this job type at this tier (refused at submission, not left pending)."""


@dataclass(frozen=True)
class Placement:
    """Where and how big one tenant's run of one job type is."""

    tenant: Tenant
    job_type: JobType
    tier: TierSpec
    priority: Priority

    @property
    def gpu(self) -> bool:
        return self.job_type.spec.needs_gpu

    def run_tags(self) -> dict[str, str]:
        """Run tags: the run queue orders by `dagster/priority`; metering and limits read the rest."""
        tags = {
            TENANT_TAG: self.tenant.id,
            JOB_TYPE_TAG: self.job_type.value,
            TIER_TAG: self.tier.name,
            PRIORITY_TAG: self.priority.value,
            RUN_PRIORITY_TAG: str(self.priority.run_priority),
        }
        if self.gpu:
            tags[GPU_TAG] = "true"
            tags[GPU_TENANT_TAG] = self.tenant.id
        return tags


def resolve_placement(
    tenant: Tenant, job_type: JobType, *, tier: str | None = None, priority: str | None = None
) -> Placement:
    """The placement of a run; tier and priority default to the tenant's. Refuses what can never run."""
    spec = tier_spec(tier or tenant.tier)
    chosen_priority = priority_of(priority) if priority else tenant.priority
    minimum = tier_spec(job_type.spec.min_tier)
    if spec.rank < minimum.rank:
        raise PlacementError(
            f"{job_type.value} needs tier {minimum.name} or above; tenant {tenant.id!r} asked for {spec.name}"
        )
    if job_type.spec.needs_gpu and tenant.quota.gpu < 1:
        raise PlacementError(
            f"{job_type.value} needs a GPU but tenant {tenant.id!r} has no GPU quota "
            f"(tier {tenant.tier}); move it to xlarge or enterprise with quota.gpu >= 1"
        )
    problems = quota_fit_problems(tenant, spec.name)
    if problems:
        raise PlacementError("; ".join(problems))
    return Placement(tenant=tenant, job_type=job_type, tier=spec, priority=chosen_priority)


def concurrent_step_pods(tenant: Tenant) -> int:
    """Step pods a tenant may have at once: its concurrent runs (the run queue's limit) x steps per run."""
    return tenant.max_concurrent_runs * STEPS_PER_RUN


def quota_fit_problems(tenant: Tenant, tier: str | None = None) -> list[str]:
    """Why the step pods the tenant may run at once (at `tier`, default its own) would not all fit its
    ResourceQuota; empty when they fit. GPU pods are bounded by the GPU quota and the per-tenant GPU run limit."""
    spec = tier_spec(tier or tenant.tier)
    pods = concurrent_step_pods(tenant)
    demand = {
        "cpu (millicores)": (pods * spec.cpu_millicores, cpu_millicores(tenant.quota.cpu)),
        "memory (MiB)": (pods * spec.memory_mib, memory_mib(tenant.quota.memory)),
        "pods": (pods, tenant.quota.pods),
        "jobs": (pods, tenant.quota.jobs),
    }
    return [
        f"tenant {tenant.id!r} at tier {spec.name}: {pods} step pods need {need:g} {what}, quota {have:g}"
        for what, (need, have) in demand.items()
        if need > have
    ]


def _restricted_container_security_context() -> dict:
    return {
        "run_as_non_root": True,
        "run_as_user": STEP_USER_ID,
        "run_as_group": STEP_USER_ID,
        "allow_privilege_escalation": False,
        "read_only_root_filesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def step_k8s_config(placement: Placement) -> dict:
    """`step_k8s_config` for every step of a run: tier resources, restricted pod, labels, priority class."""
    labels = workload_labels(placement.tenant.id, placement.job_type, placement.priority, placement.tier.name)
    quantities = {"cpu": placement.tier.cpu, "memory": placement.tier.memory}
    return {
        "container_config": {
            "resources": {"requests": dict(quantities), "limits": dict(quantities)},
            "security_context": _restricted_container_security_context(),
            "volume_mounts": [{"name": SCRATCH_VOLUME, "mount_path": SCRATCH_PATH}],
            "env": [
                {"name": "TMPDIR", "value": SCRATCH_PATH},
                {"name": "HOME", "value": SCRATCH_PATH},
                {"name": "MPLCONFIGDIR", "value": f"{SCRATCH_PATH}/matplotlib"},
            ],
        },
        "pod_spec_config": {
            "priority_class_name": placement.priority.priority_class,
            "automount_service_account_token": False,
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": STEP_USER_ID,
                "run_as_group": STEP_USER_ID,
                "fs_group": STEP_USER_ID,
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
            "volumes": [{"name": SCRATCH_VOLUME, "empty_dir": {"size_limit": SCRATCH_SIZE}}],
        },
        "pod_template_spec_metadata": {"labels": labels},
        "job_metadata": {"labels": labels},
        "job_spec_config": {"ttl_seconds_after_finished": STEP_TTL_SECONDS},
    }


def gpu_step_k8s_config(gpu_image: str) -> dict:
    """What a GPU step adds on top of `step_k8s_config` (deep-merged by dagster-k8s): the CUDA image, one GPU,
    and scheduling onto GPU nodes."""
    return {
        "container_config": {"image": gpu_image, "resources": {"limits": {GPU_RESOURCE: "1"}}},
        "pod_spec_config": {
            "node_selector": dict(GPU_NODE_SELECTOR),
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def build_executor_config(placement: Placement, settings: Settings, gpu_ops: Iterable[str] = ()) -> dict:
    """`k8s_job_executor` config for one run: the tenant's namespace, the image, and every step's pod."""
    per_step = (
        {op: gpu_step_k8s_config(settings.gpu_image) for op in sorted(gpu_ops)} if placement.gpu else {}
    )
    return {
        "job_namespace": tenant_namespace(settings.environment, placement.tenant.id),
        "job_image": settings.image,
        "image_pull_policy": "IfNotPresent",
        "service_account_name": settings.service_account or STEP_SERVICE_ACCOUNT,
        "max_concurrent": STEPS_PER_RUN,
        "step_k8s_config": step_k8s_config(placement),
        "per_step_k8s_config": per_step,
        "env_config_maps": [SETTINGS_CONFIG_MAP],
        "env_secrets": [SETTINGS_SECRET],
        "env_vars": [f"ENVIRONMENT={settings.environment}", f"NAMESPACE={settings.namespace}"],
    }
