"""Audit records written from inside a step: backups taken, restores done, tenants offboarded.

    from spotify_jobs.observability.step_audit import audit_step

    audit_step(context, platform, "backed-up", subject="tenant_backup", details={"backup_id": backup_id})

The record carries the run id, the run config's hash and the actor from the run tags (see runs.run_actor);
the tenant is the run's or the partition's unless given. Run starts and ends are audited by the
run-status sensors; CLI commands append with `AuditTrail(...).append(actor="cli:<user>", ...)`.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from spotify_jobs.observability.audit import AuditRecord, AuditTrail, config_hash
from spotify_jobs.observability.metering import step_tenant
from spotify_jobs.observability.runs import run_actor
from spotify_jobs.resources import PlatformResource


def audit_step(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    platform: PlatformResource,
    action: str,
    subject: str,
    *,
    details: Mapping[str, object] | None = None,
    tenant: str | None = None,
) -> AuditRecord:
    """Append `action` on `subject` to the tenant's audit trail; ValueError when the step has no tenant."""
    tenant_id = tenant or step_tenant(context)
    if tenant_id is None:
        raise ValueError(
            f"cannot audit {action!r} on {subject!r}: the step works for no tenant; pass tenant="
        )
    run = context.run
    record = AuditTrail(platform.tenant_storage(tenant_id)).append(
        actor=run_actor(run.tags),
        action=action,
        subject=subject,
        run_id=run.run_id,
        config_hash=config_hash(run.run_config),
        details=details,
    )
    context.log.info(f"audit: {action} {subject} for {tenant_id} (record {record.seq})")
    return record
