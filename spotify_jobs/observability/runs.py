"""What a run's tags say about it: tenant, job type, tier, priority, who started it (no Dagster imports)."""

from __future__ import annotations

from collections.abc import Mapping

from spotify_jobs.k8s.tags import JOB_TYPE_TAG, PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.tenancy.registry import InvalidTenantId, validate_tenant_id

ACTOR_TAG = "spotify-jobs/actor"  # set by the CLI (and anyone launching by hand) to say who asked
PARTITION_TENANT_TAG = "dagster/partition/tenant"  # Dagster's tag for the tenant dimension of a run
PARENT_RUN_TAG = "dagster/parent_run_id"


def run_tenant(tags: Mapping[str, str]) -> str | None:
    """The tenant a run works for: the platform's tenant tag, else the tenant partition dimension."""
    value = tags.get(TENANT_TAG) or tags.get(PARTITION_TENANT_TAG)
    if not value:
        return None
    try:
        return validate_tenant_id(value)
    except InvalidTenantId:
        return None


def run_job_type(tags: Mapping[str, str]) -> str | None:
    return tags.get(JOB_TYPE_TAG)


def run_tier(tags: Mapping[str, str]) -> str | None:
    return tags.get(TIER_TAG)


def run_priority(tags: Mapping[str, str]) -> str | None:
    return tags.get(PRIORITY_TAG)


def run_actor(tags: Mapping[str, str]) -> str:
    """Who or what launched a run, as `kind:name` (user, schedule, sensor, backfill, automation)."""
    if tags.get(ACTOR_TAG):
        return tags[ACTOR_TAG]
    if tags.get("dagster/user"):
        return f"user:{tags['dagster/user']}"
    for tag, kind in (
        ("dagster/schedule_name", "schedule"),
        ("dagster/sensor_name", "sensor"),
        ("dagster/backfill", "backfill"),
    ):
        if tags.get(tag):
            return f"{kind}:{tags[tag]}"
    if tags.get("dagster/auto_materialize") or tags.get("dagster/from_automation_condition"):
        return "automation:declarative"
    return "unknown:launched-without-actor-tag"
