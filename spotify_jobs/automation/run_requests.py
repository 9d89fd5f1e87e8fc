"""RunRequests for tenant jobs: the same run config and tags as every other launcher (via the factory)."""

from __future__ import annotations

import dagster as dg

from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.observability.runs import ACTOR_TAG
from spotify_jobs.tenancy.partitions import MONTH_DIMENSION, TENANT_DIMENSION, tenant_partitions

TRIGGER_TAG = "spotify-jobs/trigger"  # which automation asked for a run: schedule, landing, retrain


def onboarded_tenants(instance: dg.DagsterInstance, registry_ids: list[str]) -> list[str]:
    """Registered tenants the instance holds as `tenants` partitions, in registry order.

    A tenant is in the registry before the onboarding sensor adds its partition, and stays in it after an
    offboard removed the partition until an operator deletes the entry: neither gets automatic runs.
    """
    onboarded = set(instance.get_dynamic_partitions(tenant_partitions.name))
    return [tenant for tenant in registry_ids if tenant in onboarded]


def tenant_run(
    factory: TenantJobFactory,
    spec: TenantJobSpec,
    tenant: str,
    when: str | None,
    *,
    tier: str | None = None,
    priority: str | None = None,
    actor: str | None = None,
) -> tuple[dict, dict[str, str]]:
    """(run config, tags) of one tenant's run of `spec` on the partition of `when` (YYYY-MM-DD): the
    placement's run config and tags, the partition's `dagster/partition*` tags, and who asked
    (`spotify-jobs/actor`, read by the audit trail). Raises PlacementError when the tenant cannot run it."""
    run_config, tags = factory.run_parts(spec, tenant, tier=tier, priority=priority)
    # Dagster hands back the multi-partition key object itself as a tag value; tags are plain strings
    tags.update({k: str(v) for k, v in spec.partition_tags(spec.partition_key(tenant, when)).items()})
    if actor:
        tags[ACTOR_TAG] = actor
    return run_config, tags


def time_partition_exists(spec: TenantJobSpec, when: str) -> bool:
    """Whether `when` (YYYY-MM-DD) falls on a partition of the job's time dimension (True without one)."""
    if isinstance(spec.partitions_def, dg.MultiPartitionsDefinition):
        for dimension in spec.partitions_def.partitions_defs:
            if dimension.name != TENANT_DIMENSION:
                key = when[:7] + "-01" if dimension.name == MONTH_DIMENSION else when
                return dimension.partitions_def.has_partition_key(key)
    return True


def tenant_run_request(
    factory: TenantJobFactory,
    spec: TenantJobSpec,
    tenant: str,
    when: str | None,
    *,
    run_key: str,
    trigger: str,
) -> dg.RunRequest:
    """A run of `spec` for an onboarded `tenant` on the partition of `when`, placed as the registry says.

    The request carries its partition's tags already, as Dagster would add them, which tells Dagster the
    partition is resolved: it then skips its own per-request check (one database query per request, 4 s
    for 1,000 tenants on SQLite). Callers ask only for onboarded tenants (one query for all) and for dates
    that `time_partition_exists`. Raises PlacementError when the tenant cannot run this job type.
    """
    run_config, tags = tenant_run(factory, spec, tenant, when)
    return dg.RunRequest(
        run_key=run_key,
        job_name=spec.name,
        partition_key=spec.partition_key(tenant, when),
        run_config=run_config,
        tags={**tags, TRIGGER_TAG: trigger},
    )
