"""Offboarding a tenant: its final backup must have succeeded before its `tenants` partition is removed.

`offboard-tenant` submits the final backup (a tenant-backup run tagged `spotify-jobs/offboard`), waits
for it, and only when it succeeded removes the partition and writes an `offboarded` audit record. Run
again after an interruption, it picks up the final backup already submitted instead of starting another.
The registry entry is the operator's to delete afterwards (see automation.onboarding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.workspace.context import WorkspaceProcessContext

from spotify_jobs.automation.run_queue import submit_tenant_run
from spotify_jobs.automation.runs import FINISHED, LogLine, follow_run
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.tags import TENANT_TAG
from spotify_jobs.observability.audit import AuditRecord, AuditTrail
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.tiers import Priority

OFFBOARD_TAG = "spotify-jobs/offboard"
FINAL_BACKUP = "final-backup"
RETRYABLE = frozenset({dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED})


class NotOnboarded(ValueError):
    """The tenant has no `tenants` partition: there is nothing to offboard."""


def require_onboarded(instance: dg.DagsterInstance, tenant: str) -> None:
    if not instance.has_dynamic_partition(tenant_partitions.name, tenant):
        raise NotOnboarded(
            f"tenant {tenant!r} has no {tenant_partitions.name!r} partition: nothing to offboard"
        )


def final_backup_run(instance: dg.DagsterInstance, tenant: str) -> dg.DagsterRun | None:
    """The latest final-backup run submitted for this tenant's offboarding, if any."""
    runs = instance.get_runs(dg.RunsFilter(tags={TENANT_TAG: tenant, OFFBOARD_TAG: FINAL_BACKUP}), limit=1)
    return runs[0] if runs else None


def remove_tenant(
    instance: dg.DagsterInstance, platform: PlatformResource, tenant: str, backup: dg.DagsterRun, actor: str
) -> AuditRecord:
    """Remove the tenant's partition after its final backup succeeded, and audit it."""
    if backup.status != dg.DagsterRunStatus.SUCCESS:
        raise ValueError(f"final backup {backup.run_id} is {backup.status.value}; the tenant stays onboarded")
    instance.delete_dynamic_partition(tenant_partitions.name, tenant)
    return AuditTrail(platform.tenant_storage(tenant)).append(
        actor=actor,
        action="offboarded",
        subject=f"{tenant_partitions.name} partition",
        run_id=backup.run_id,
        details={"final_backup_job": backup.job_name, "partition": backup.tags.get("dagster/partition")},
    )


@dataclass(frozen=True)
class OffboardOutcome:
    tenant: str
    offboarded: bool
    backup: dg.DagsterRun
    audit_seq: int | None = None


def offboard(
    workspace: WorkspaceProcessContext,
    factory: TenantJobFactory,
    backup_spec: TenantJobSpec,
    platform: PlatformResource,
    tenant: str,
    when: str,
    *,
    actor: str,
    timeout: float | None,
    interval: float,
    on_line: Callable[[LogLine], None] = lambda _line: None,
    on_submit: Callable[[dg.DagsterRun], None] = lambda _run: None,
) -> OffboardOutcome:
    """Final backup (submitted at high priority unless one is pending or succeeded), wait up to `timeout`
    seconds for it, then remove the tenant if it succeeded."""
    instance = workspace.instance
    require_onboarded(instance, tenant)
    backup = final_backup_run(instance, tenant)
    if backup is None or backup.status in RETRYABLE:
        backup = submit_tenant_run(
            workspace.create_request_context(),
            factory,
            backup_spec,
            tenant,
            when,
            priority=Priority.HIGH.value,
            actor=actor,
            extra_tags={OFFBOARD_TAG: FINAL_BACKUP},
        )
        on_submit(backup)
    if backup.status not in FINISHED:
        follow_run(instance, backup.run_id, on_line, after=None, interval=interval, timeout=timeout)
    backup = instance.get_run_by_id(backup.run_id)
    if backup.status != dg.DagsterRunStatus.SUCCESS:
        return OffboardOutcome(tenant, False, backup)
    record = remove_tenant(instance, platform, tenant, backup, actor)
    return OffboardOutcome(tenant, True, backup, record.seq)
