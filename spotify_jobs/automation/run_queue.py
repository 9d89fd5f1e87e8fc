"""The run queue: its configuration from the tenant registry, and submitting tenant runs to it.

Dagster's QueuedRunCoordinator holds every submitted run until the daemon dequeues it: highest
`dagster/priority` first (critical 4 ... batch 0), then oldest first, skipping runs whose tag limits are
full. The limits:
- at most `max_concurrent_runs` runs in progress overall (PARALLEL_JOBS);
- per tenant, its registry `max_concurrent_runs`: one entry per tenant, plus Dagster's per-value rule
  (`applyLimitPerUniqueValue`) at the registry's highest limit, which caps a tenant onboarded after the file
  was written until it gets its own entry (Dagster enforces every entry that matches a run);
- GPU runs: at most the registry's total GPU quota at once, and one per tenant at a time.
A tenant at its limit only holds back its own runs; the daemon goes on to the next run in the queue.

`dagster.yaml` holds `run_coordinator_config(load_registry())` for the repo's registry (a test keeps the
two equal); `spotify-jobs render-run-queue` prints it for another registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster import __version__ as dagster_version
from dagster._cli.job import _create_run
from dagster._cli.workspace.cli_target import (
    get_code_location_from_workspace,
    get_remote_job_from_remote_repo,
    get_remote_repository_from_code_location,
    workspace_opts_to_load_target,
)
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster_shared.cli import WorkspaceOpts

from spotify_jobs.automation.run_requests import tenant_run
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.tags import GPU_TAG, GPU_TENANT_TAG, TENANT_TAG
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import TenantRegistry

PARALLEL_JOBS_ENV = "PARALLEL_JOBS"
# Run-level retries re-launch runs whose worker died (evicted pod, lost node). Asset and op failures are
# retried inside the run, by the step retry policy with exponential backoff, so the two do not multiply.
RUN_RETRIES = {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}


def tag_concurrency_limits(registry: TenantRegistry) -> list[dict]:
    """Per-tenant run limits from the registry, and the GPU run limits (as deploy/helm/values.yaml has them)."""
    ceiling = max(tenant.max_concurrent_runs for tenant in registry.tenants)
    limits: list[dict] = [{"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": ceiling}]
    limits.extend(
        {"key": TENANT_TAG, "value": tenant.id, "limit": tenant.max_concurrent_runs}
        for tenant in registry.tenants
    )
    limits.append({"key": GPU_TAG, "value": "true", "limit": sum(t.quota.gpu for t in registry.tenants)})
    limits.append({"key": GPU_TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1})
    return limits


def run_coordinator_config(
    registry: TenantRegistry, max_concurrent_runs: int | str = PARALLEL_JOBS_ENV
) -> dict:
    """dagster.yaml's `run_coordinator`; `max_concurrent_runs` is a number or an environment variable name."""
    concurrent = max_concurrent_runs if isinstance(max_concurrent_runs, int) else {"env": max_concurrent_runs}
    return {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {
            "max_concurrent_runs": concurrent,
            "tag_concurrency_limits": tag_concurrency_limits(registry),
        },
    }


def instance_queue_config(
    registry: TenantRegistry, max_concurrent_runs: int | str = PARALLEL_JOBS_ENV
) -> dict:
    """The run queue and run retry sections of dagster.yaml."""
    return {
        "run_coordinator": run_coordinator_config(registry, max_concurrent_runs),
        "run_retries": dict(RUN_RETRIES),
    }


@contextmanager
def open_workspace(instance: dg.DagsterInstance, workspace_file: Path) -> Iterator[WorkspaceProcessContext]:
    """The code location(s) of a workspace file, as `dagster job launch -w FILE` loads them.

    A location this Python can import is loaded in this process (no code server to start); its name is the
    workspace file's, which is how the daemon finds it again when it launches the run.
    """
    if not Path(workspace_file).is_file():
        raise ValueError(
            f"workspace file {workspace_file} not found (run from the repo root or pass --workspace)"
        )
    target = workspace_opts_to_load_target(
        WorkspaceOpts(workspace=[str(workspace_file)]), allow_in_process=True
    )
    with WorkspaceProcessContext(
        instance=instance, version=dagster_version, read_only=False, workspace_load_target=target
    ) as context:
        yield context


def ensure_tenant_partition(instance: dg.DagsterInstance, tenant: str) -> bool:
    """Add the tenant's `tenants` partition when missing (immediate onboarding); True when added."""
    if instance.has_dynamic_partition(tenant_partitions.name, tenant):
        return False
    instance.add_dynamic_partitions(tenant_partitions.name, [tenant])
    return True


def submit_run(
    workspace: WorkspaceRequestContext, job_name: str, run_config: Mapping, tags: Mapping[str, str]
) -> dg.DagsterRun:
    """Create a run of `job_name` and submit it to the instance's run coordinator (the run queue), exactly
    as `dagster job launch` does; returns the run as submitted (QUEUED under the QueuedRunCoordinator)."""
    instance = workspace.instance
    code_location = get_code_location_from_workspace(workspace, None)
    repository = get_remote_repository_from_code_location(code_location, None)
    remote_job = get_remote_job_from_remote_repo(repository, job_name)
    run = _create_run(
        instance=instance,
        code_location=code_location,
        remote_repo=repository,
        remote_job=remote_job,
        run_config=dict(run_config),
        tags=dict(tags),
        op_selection=None,
        run_id=None,
    )
    return instance.submit_run(run.run_id, workspace)


def submit_tenant_run(
    workspace: WorkspaceRequestContext,
    factory: TenantJobFactory,
    spec: TenantJobSpec,
    tenant: str,
    when: str | None,
    *,
    tier: str | None = None,
    priority: str | None = None,
    actor: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> dg.DagsterRun:
    """Queue one tenant's run of `spec` (its `tenants` partition is added first when missing)."""
    run_config, tags = tenant_run(factory, spec, tenant, when, tier=tier, priority=priority, actor=actor)
    ensure_tenant_partition(workspace.instance, tenant)
    return submit_run(workspace, spec.name, run_config, {**tags, **(extra_tags or {})})
