"""The code location: assembles assets, checks, jobs, schedules, sensors, resources and the executor.

Settings are read once, here, when the code location loads; nothing else happens at import time.
"""

from __future__ import annotations

import dagster as dg
from dagster_k8s import k8s_job_executor

from spotify_jobs.automation import JobSchedule, alert_channels_from_settings, build_schedules, build_sensors
from spotify_jobs.backup import assets as backup
from spotify_jobs.backup.jobs import jobs as backup_op_jobs
from spotify_jobs.billing import assets as billing
from spotify_jobs.etl import assets as etl
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.observability import assets as observability
from spotify_jobs.observability.loggers import build_json_lines_logger
from spotify_jobs.observability.sensors import sensors as observability_sensors
from spotify_jobs.resources import PlatformResource
from spotify_jobs.security import assets as security
from spotify_jobs.settings import Settings, load_settings
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import (
    daily_partitions,
    monthly_partitions,
    tenant_daily_partitions,
    tenant_monthly_partitions,
    tenant_partitions,
)
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs.training import assets as training

TENANT_JOBS: dict[JobType, TenantJobSpec] = {
    spec.job_type: spec
    for spec in (
        TenantJobSpec(
            JobType.DATA_ETL,
            etl.assets,
            tenant_daily_partitions,
            "Clean, pseudonymise and aggregate one tenant's streaming-history exports for one landing date.",
        ),
        TenantJobSpec(
            JobType.ML_TRAINING,
            training.assets,
            tenant_partitions,
            "Train, evaluate and promote a tenant's recommendation model; top-K recommendations per listener.",
        ),
        TenantJobSpec(
            JobType.TENANT_BACKUP,
            backup.assets,
            tenant_daily_partitions,
            "Verified, incremental, content-addressed backup of everything under a tenant's data prefix.",
        ),
        TenantJobSpec(
            JobType.SECURITY_SCAN,
            security.assets,
            tenant_daily_partitions,
            "Pod Security and hardening posture, PII and secret leaks, isolation evidence and a compliance report.",
        ),
        TenantJobSpec(
            JobType.BILLING_REPORT,
            [billing.billing_report],
            tenant_monthly_partitions,
            "A tenant's monthly invoice from metered usage; closed months are immutable and byte-reproducible.",
        ),
    )
}
# Tenant jobs beyond the five job types, with the same per-tenant placement.
SUPPORT_TENANT_JOBS: tuple[TenantJobSpec, ...] = (
    TenantJobSpec(
        JobType.BILLING_REPORT,
        [billing.usage_records],
        tenant_daily_partitions,
        "Meter one tenant's usage for one UTC day from the instance's run records and its storage.",
        job_name="usage_metering_job",
    ),
)


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """In-process or multiprocess on the embedded default; one pod per step with `k8s`."""
    if settings.executor == "k8s":
        return k8s_job_executor
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": settings.parallel_jobs})
    return dg.in_process_executor


billing_finance_job = dg.define_asset_job(
    "billing_finance_job",
    selection=dg.AssetSelection.assets(billing.billing_finance_summary),
    partitions_def=monthly_partitions,
    description="The finance view across tenants: revenue per tier and top tenants for one month.",
)
platform_sla_job = dg.define_asset_job(
    "platform_sla_job",
    selection=dg.AssetSelection.assets(*observability.assets),
    partitions_def=daily_partitions,
    description="The platform's daily SLA and utilisation report, across tenants.",
)


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the Dagster UI, daemon and step processes load, for these settings."""
    platform = PlatformResource.from_settings(settings)
    factory = TenantJobFactory(settings, load_registry(settings.tenant_registry))
    return dg.Definitions(
        assets=[
            *etl.assets,
            *training.assets,
            *backup.assets,
            *security.assets,
            *billing.assets,
            *observability.assets,
        ],
        asset_checks=[
            *etl.asset_checks,
            *training.asset_checks,
            *backup.asset_checks,
            *security.asset_checks,
            *billing.asset_checks,
            *observability.asset_checks,
        ],
        jobs=[
            *(factory.job(spec) for spec in (*TENANT_JOBS.values(), *SUPPORT_TENANT_JOBS)),
            *backup_op_jobs,
            billing_finance_job,
            platform_sla_job,
        ],
        schedules=[
            *build_schedules(
                factory,
                TENANT_JOBS.values(),
                extra=[(spec, JobSchedule("30 0 * * *", "daily")) for spec in SUPPORT_TENANT_JOBS],
            ),
            dg.build_schedule_from_partitioned_job(platform_sla_job, hour_of_day=1),
        ],
        sensors=[
            *observability_sensors,
            *build_sensors(factory, TENANT_JOBS.values(), alerts=alert_channels_from_settings(settings)),
        ],
        resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
        loggers={
            "console": dg.colored_console_logger,
            "json": build_json_lines_logger([settings.pseudonym_secret.get_secret_value()]),
        },
        executor=executor_for(settings),
    )


defs = build_definitions(load_settings())
