"""Asset jobs that serve every tenant: run config and tags come from the partition's tenant.

One job definition per job type. Launching a partition (UI, schedule, sensor, CLI) resolves the tenant's
placement (tier, priority) from the registry, tags the run with it, and — with the k8s executor — sets the
executor's namespace and step pods through the one builder in `spotify_jobs.k8s.config`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from spotify_jobs.k8s.config import Placement, build_executor_config, resolve_placement
from spotify_jobs.k8s.tags import GPU_TAG, JOB_TYPE_TAG
from spotify_jobs.settings import Settings
from spotify_jobs.tenancy.partitions import MONTH_DIMENSION, tenant_date_key, tenant_month_key, tenant_of
from spotify_jobs.tenancy.registry import TenantRegistry, validate_tenant_id
from spotify_jobs.tenancy.tiers import JobType

# Transient failures (a lost node, a throttled store) retry the step, not the run: 30 s, 60 s, jittered.
# Assets with their own policy (training) keep theirs.
STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def gpu_op_names(assets: Iterable[dg.AssetsDefinition]) -> set[str]:
    """Names of the ops whose steps need a GPU (op tag `spotify-jobs/gpu`)."""
    return {a.node_def.name for a in assets if a.node_def.tags.get(GPU_TAG) == "true"}


@dataclass(frozen=True)
class TenantJobSpec:
    """One job type's asset job: which assets, partitioned how."""

    job_type: JobType
    assets: Sequence[dg.AssetsDefinition]
    partitions_def: dg.PartitionsDefinition
    description: str
    job_name: str | None = None  # defaults to the job type's job (`billing_report_job`)

    @property
    def name(self) -> str:
        return self.job_name or self.job_type.spec.job_name

    @property
    def gpu_ops(self) -> set[str]:
        return gpu_op_names(self.assets)

    def partition_key(self, tenant_id: str, when: str | None = None) -> str:
        """The partition of this job for a tenant and, for daily or monthly jobs, a date (YYYY-MM-DD)."""
        if not isinstance(self.partitions_def, dg.MultiPartitionsDefinition):
            return validate_tenant_id(tenant_id)
        if not when:
            raise ValueError(f"{self.name} is partitioned by tenant and time: give a date (YYYY-MM-DD)")
        if MONTH_DIMENSION in self.partitions_def.partition_dimension_names:
            return str(tenant_month_key(tenant_id, when[:7] + "-01"))
        return str(tenant_date_key(tenant_id, when))

    def partition_tags(self, partition_key: str) -> dict[str, str]:
        """The `dagster/partition*` tags Dagster puts on a run of this partition."""
        return dict(self.partitions_def.get_tags_for_partition_key(partition_key))


def run_config_for(placement: Placement, settings: Settings, gpu_ops: Iterable[str] = ()) -> dict:
    """Run config of one run: executor config on k8s, nothing extra for the local executors."""
    if settings.executor != "k8s":
        return {}
    return {"execution": {"config": build_executor_config(placement, settings, gpu_ops)}}


class TenantJobFactory:
    """Builds the per-job-type asset jobs whose config and tags follow the launched partition's tenant."""

    def __init__(self, settings: Settings, registry: TenantRegistry):
        self.settings = settings
        self.registry = registry

    def run_parts(
        self, spec: TenantJobSpec, tenant_id: str, *, tier: str | None = None, priority: str | None = None
    ) -> tuple[dict, dict[str, str]]:
        """(run config, tags) of one tenant's run of `spec`; tier and priority override the tenant's."""
        placement = resolve_placement(
            self.registry.get(tenant_id), spec.job_type, tier=tier, priority=priority
        )
        return run_config_for(placement, self.settings, spec.gpu_ops), placement.run_tags()

    def _tenant_of_key(self, spec: TenantJobSpec, key: str) -> str:
        if isinstance(spec.partitions_def, dg.MultiPartitionsDefinition) and not isinstance(
            key, dg.MultiPartitionKey
        ):
            key = spec.partitions_def.get_partition_key_from_str(key)
        return tenant_of(key)

    def job(self, spec: TenantJobSpec) -> dg.UnresolvedAssetJobDefinition:
        config = dg.PartitionedConfig(
            partitions_def=spec.partitions_def,
            run_config_for_partition_key_fn=lambda key: self.run_parts(spec, self._tenant_of_key(spec, key))[
                0
            ],
            tags_for_partition_key_fn=lambda key: self.run_parts(spec, self._tenant_of_key(spec, key))[1],
        )
        return dg.define_asset_job(
            spec.name,
            selection=dg.AssetSelection.assets(*spec.assets),
            partitions_def=spec.partitions_def,
            config=config,
            description=spec.description,
            tags={JOB_TYPE_TAG: spec.job_type.value},
            op_retry_policy=STEP_RETRY_POLICY,
        )
