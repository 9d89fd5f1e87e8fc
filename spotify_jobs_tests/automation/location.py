"""A small code location for the automation tests: one tiny asset per job type, wired like the real one
(TenantJobSpec + TenantJobFactory), so schedules, sensors and the run queue are tested for all five job
types whatever state the domain jobs are in. `defs` is what a test workspace.yaml loads."""

import dagster as dg

from spotify_jobs.automation import AlertChannels, RetrainPolicy, build_schedules, build_sensors
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import (
    tenant_daily_partitions,
    tenant_monthly_partitions,
    tenant_partitions,
)
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType

WORK_BYTES = 32 * 1024 * 1024
WORK_LOOP = 200_000
ASSETS = {
    JobType.DATA_ETL: ("listening_events", tenant_daily_partitions),
    JobType.ML_TRAINING: ("tenant_model", tenant_partitions),
    JobType.TENANT_BACKUP: ("tenant_backup_manifest", tenant_daily_partitions),
    JobType.SECURITY_SCAN: ("security_findings", tenant_daily_partitions),
    JobType.BILLING_REPORT: ("monthly_invoice", tenant_monthly_partitions),
}


def _stand_in_asset(job_type: JobType) -> dg.AssetsDefinition:
    name, partitions_def = ASSETS[job_type]

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        group_name="automation_test",
        op_tags=step_tags(job_type, gpu=job_type.spec.needs_gpu),
    )
    def _asset(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
        """Stands in for a domain asset of this job type: some CPU and memory, metered like the real ones."""
        with step_meter(context, platform) as meter:
            buffer = bytearray(WORK_BYTES)
            total = sum(range(WORK_LOOP))
            meter.add_records(1)
        return dg.MaterializeResult(metadata={"dagster/row_count": 1, "bytes": len(buffer), "sum": total})

    return _asset


TEST_JOBS: dict[JobType, TenantJobSpec] = {
    job_type: TenantJobSpec(job_type, [_stand_in_asset(job_type)], ASSETS[job_type][1], f"test {job_type}")
    for job_type in JobType
}


def build_test_definitions(
    factory: TenantJobFactory,
    platform: PlatformResource,
    *,
    alerts: AlertChannels | None = None,
    retrain_policy: RetrainPolicy | None = None,
) -> dg.Definitions:
    """The test jobs with the automation's schedules and sensors, as definitions.py assembles them."""
    specs = TEST_JOBS.values()
    return dg.Definitions(
        assets=[assets_def for spec in specs for assets_def in spec.assets],
        jobs=[factory.job(spec) for spec in specs],
        schedules=build_schedules(factory, specs),
        sensors=build_sensors(
            factory, specs, alerts=alerts, retrain_policy=retrain_policy or RetrainPolicy()
        ),
        resources={"platform": platform},
    )


def _defs_from_environment() -> dg.Definitions:
    settings = load_settings()
    factory = TenantJobFactory(settings, load_registry(settings.tenant_registry))
    return build_test_definitions(factory, PlatformResource.from_settings(settings))


defs = _defs_from_environment()
