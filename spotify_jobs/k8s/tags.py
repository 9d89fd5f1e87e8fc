"""Tag names the platform puts on runs and steps; k8s config, metering and the queue read them."""

from __future__ import annotations

from spotify_jobs.tenancy.tiers import JobType

TENANT_TAG = "spotify-jobs/tenant"
JOB_TYPE_TAG = "spotify-jobs/job-type"
PRIORITY_TAG = "spotify-jobs/priority"
TIER_TAG = "spotify-jobs/tier"
GPU_TAG = "spotify-jobs/gpu"
GPU_TENANT_TAG = "spotify-jobs/gpu-tenant"  # on GPU runs only: the run queue caps GPU runs per tenant
RUN_PRIORITY_TAG = "dagster/priority"


def step_tags(job_type: JobType, *, gpu: bool = False) -> dict[str, str]:
    """Op tags of an asset: its job type, and whether its step pod needs a GPU."""
    tags = {JOB_TYPE_TAG: job_type.value}
    if gpu:
        tags[GPU_TAG] = "true"
    return tags
