"""Step metering: measure the work of an asset (or op) and record it in the instance and the Pushgateway.

Usage in an asset, one line around the work:

    from spotify_jobs.observability.metering import step_meter

    @dg.asset(..., op_tags=step_tags(JobType.DATA_ETL))
    def daily_track_stats(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
        with step_meter(context, platform) as meter:
            frame = compute_daily_track_stats(...)
            meter.add_records(len(frame))          # optional: what was processed
            meter.add_bytes(frame.memory_usage(deep=True).sum())
        return dg.MaterializeResult(metadata={"rows": len(frame)})

On success the `usage/...` figures are added to the output's materialisation metadata (no merging needed;
`meter.metadata` holds the same dict after the block). When the block raises, they are logged as an
`AssetObservation` of the asset (a failed step materialises nothing) and the exception propagates
unchanged. Either way the figures are pushed to the Pushgateway (`platform.pushgateway_url`) as the step
group of `metrics.py`; a push that fails is logged, counted and marked `usage/pushed = false` in the
metadata, and never fails the step.

The labels come from where the platform puts them: job type from the asset's op tags (`step_tags`), tenant
from the `spotify-jobs/tenant` run tag or the partition key, tier and priority from the run tags
`spotify-jobs/tier` / `spotify-jobs/priority`, else from the tenant's registry entry. The reservation (CPU
cores and memory the step pod requested, requests = limits) is the tier's. Op steps without asset outputs get
the metadata on their first output; the SLA report reads asset steps only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
from dagster._core.events import DagsterEvent

from spotify_jobs.k8s.tags import JOB_TYPE_TAG
from spotify_jobs.observability.logs import redact
from spotify_jobs.observability.metrics import (
    STEP_GROUP_JOB,
    UNKNOWN,
    MetricLabels,
    PushOutcome,
    Reservation,
    push_group,
    step_registry,
)
from spotify_jobs.observability.runs import run_job_type, run_priority, run_tenant, run_tier
from spotify_jobs.observability.usage import StepUsage, UsageMeter, measure_usage
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import TENANT_DIMENSION, tenant_of, tenant_partitions
from spotify_jobs.tenancy.registry import Tenant, TenantRegistryError, UnknownTenant
from spotify_jobs.tenancy.tiers import JobType, job_type_of, tier_spec

USAGE_PREFIX = "usage/"
PLATFORM_TENANT = "platform"  # label of steps that belong to no tenant (platform reports)
MAX_ERROR_CHARS = 500


def _op_context(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> dg.OpExecutionContext:
    return context.op_execution_context if isinstance(context, dg.AssetExecutionContext) else context


def step_tenant(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str | None:
    """The tenant a step works for: the run's tenant tag, else the tenant dimension of its partition."""
    op_context = _op_context(context)
    return run_tenant(op_context.run.tags) or _partition_tenant(op_context)


def _partition_tenant(op_context: dg.OpExecutionContext) -> str | None:
    if not op_context.has_partition_key or not op_context.has_assets_def:
        return None
    partitions_def = op_context.assets_def.partitions_def
    key = op_context.partition_key
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        if TENANT_DIMENSION in partitions_def.partition_dimension_names:
            return tenant_of(key)
        return None
    if (
        isinstance(partitions_def, dg.DynamicPartitionsDefinition)
        and partitions_def.name == tenant_partitions.name
    ):
        return tenant_of(key)
    return None


def _registry_tenant(platform: PlatformResource | None, tenant_id: str | None, warn) -> Tenant | None:
    if platform is None or tenant_id is None:
        return None
    try:
        return platform.tenant(tenant_id)
    except (UnknownTenant, TenantRegistryError, ValueError) as exc:
        warn(f"metering: no registry entry for tenant {tenant_id!r} ({exc}); tier and priority unknown")
        return None


def platform_labels(
    platform: PlatformResource | None,
    tags: Mapping[str, str],
    tenant_id: str | None,
    job_type: JobType | None,
    warn: Callable[[str], object],
) -> tuple[MetricLabels, Reservation | None]:
    """Labels (outcome left empty) and reservation from run tags, falling back on the tenant's registry entry."""
    entry = _registry_tenant(platform, tenant_id, warn)
    tier = run_tier(tags) or (entry.tier if entry else None)
    priority = run_priority(tags) or (entry.priority.value if entry else None)
    reservation = None
    if tier:
        spec = tier_spec(tier)
        reservation = Reservation(
            cpu_cores=spec.cpu_millicores / 1000, memory_bytes=spec.memory_mib * 1024 * 1024
        )
    labels = MetricLabels(
        tenant=tenant_id or PLATFORM_TENANT,
        job_type=job_type.value if job_type else UNKNOWN,
        tier=tier or UNKNOWN,
        priority=priority or UNKNOWN,
        outcome="",
    )
    return labels, reservation


def resolve_labels(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    platform: PlatformResource | None,
    job_type: JobType | str | None = None,
    tenant: str | None = None,
) -> tuple[MetricLabels, Reservation | None]:
    """The metric labels (outcome left empty) and the reservation of the step running in `context`."""
    op_context = _op_context(context)
    tags = op_context.run.tags
    if job_type is None:
        tag = op_context.op_def.tags.get(JOB_TYPE_TAG) or run_job_type(tags)
        job_type = job_type_of(tag) if tag else None
    elif isinstance(job_type, str):
        job_type = job_type_of(job_type)
    tenant_id = tenant or step_tenant(op_context)
    return platform_labels(platform, tags, tenant_id, job_type, op_context.log.warning)


def usage_metadata(
    usage: StepUsage,
    labels: MetricLabels,
    reservation: Reservation | None,
    *,
    step_key: str,
    attempt: int,
    push: PushOutcome,
    secrets: tuple[str, ...] = (),
) -> dict[str, object]:
    """The `usage/...` metadata entries of one step execution (what the SLA report reads back)."""
    metadata: dict[str, object] = {
        "wall_seconds": round(usage.wall_seconds, 3),
        "cpu_seconds": round(usage.cpu_seconds, 3),
        "peak_memory_bytes": usage.peak_memory_bytes,
        "gpu_seconds": round(usage.gpu_seconds, 3),
        "gpu_peak_memory_bytes": usage.gpu_peak_memory_bytes,
        "records": usage.records,
        "bytes_processed": usage.bytes_processed,
        "outcome": usage.outcome,
        "tenant": labels.tenant,
        "job_type": labels.job_type,
        "tier": labels.tier,
        "priority": labels.priority,
        "step_key": step_key,
        "attempt": attempt,
        "end_timestamp": round(usage.end_timestamp, 3),
        "pushed": push.pushed,
    }
    if reservation is not None:
        metadata["reserved_cpu_cores"] = reservation.cpu_cores
        metadata["reserved_memory_bytes"] = reservation.memory_bytes
        cpu = usage.cpu_utilisation(reservation.cpu_cores)
        if cpu is not None:
            metadata["cpu_utilisation"] = round(cpu, 4)
        metadata["memory_utilisation"] = round(usage.memory_utilisation(reservation.memory_bytes) or 0.0, 4)
    if push.error:
        metadata["push_error"] = redact(push.error, secrets)[:MAX_ERROR_CHARS]
    if usage.error:
        metadata["error"] = redact(usage.error, secrets)[:MAX_ERROR_CHARS]
    return {f"{USAGE_PREFIX}{name}": value for name, value in metadata.items()}


def _record_in_instance(
    op_context: dg.OpExecutionContext, metadata: dict[str, object], success: bool
) -> None:
    asset_keys = sorted(op_context.selected_asset_keys, key=lambda k: k.to_user_string())
    if success:
        if asset_keys:
            output = op_context.assets_def.get_output_name_for_asset_key(asset_keys[0])
        else:
            outputs = sorted(op_context.selected_output_names)
            if not outputs:
                return
            output = outputs[0]
        op_context.add_output_metadata(metadata, output_name=output)
    elif asset_keys:
        observation = dg.AssetObservation(
            asset_key=asset_keys[0],
            partition=op_context.partition_key if op_context.has_partition_key else None,
            metadata=metadata,
        )
        # context.log_event() buffers events until the compute function yields, which a raising one never
        # does; building the DagsterEvent writes it to the event log now.
        DagsterEvent.asset_observation(op_context.get_step_execution_context(), observation)


@contextmanager
def step_meter(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    platform: PlatformResource | None,
    job_type: JobType | str | None = None,
    *,
    tenant: str | None = None,
) -> Iterator[UsageMeter]:
    """Measure the block as this step's work; record it in the instance and push it (see module doc)."""
    op_context = _op_context(context)
    try:
        labels, reservation = resolve_labels(context, platform, job_type, tenant)
    except (
        ValueError
    ) as exc:  # a malformed tier/job-type tag mislabels the figures; it does not fail the step
        op_context.log.warning(f"metering: {exc}; labels unknown, no reservation")
        labels, reservation = MetricLabels(tenant or PLATFORM_TENANT, UNKNOWN, UNKNOWN, UNKNOWN, ""), None
    step_key = op_context.get_step_execution_context().step.key
    attempt = op_context.retry_number
    asset = (
        ",".join(sorted(k.to_user_string() for k in op_context.selected_asset_keys)) or op_context.op_def.name
    )
    meter: UsageMeter | None = None
    try:
        with measure_usage() as meter:
            yield meter
    finally:
        if meter is not None and meter.usage is not None:
            try:
                _publish(op_context, platform, meter, labels, reservation, step_key, attempt, asset)
            except Exception as exc:  # metering must never turn a step's outcome into another one
                op_context.log.warning(f"metering: could not record usage: {type(exc).__name__}: {exc}")


def _publish(
    op_context: dg.OpExecutionContext,
    platform: PlatformResource | None,
    meter: UsageMeter,
    labels: MetricLabels,
    reservation: Reservation | None,
    step_key: str,
    attempt: int,
    asset: str,
) -> None:
    usage = meter.usage
    assert usage is not None
    final = MetricLabels(**{**labels.values(), "outcome": usage.outcome})
    url = platform.pushgateway_url if platform is not None else None
    push = push_group(
        url,
        STEP_GROUP_JOB,
        step_registry(usage, final, reservation, asset),
        {"run_id": op_context.run_id, "step": step_key, "attempt": str(attempt)},
    )
    if push.error and url:
        op_context.log.warning(
            f"metering: Pushgateway push failed, figures kept in the instance: {push.error}"
        )
    secrets = (platform.pseudonym_secret,) if platform is not None else ()
    meter.metadata = usage_metadata(
        usage, final, reservation, step_key=step_key, attempt=attempt, push=push, secrets=secrets
    )
    _record_in_instance(op_context, meter.metadata, success=usage.outcome == "success")
    op_context.log.info(
        f"usage: {usage.wall_seconds:.2f} s wall, {usage.cpu_seconds:.2f} s CPU, "
        f"peak {usage.peak_memory_bytes / 2**20:.0f} MiB, {usage.records} records, outcome {usage.outcome}"
    )
