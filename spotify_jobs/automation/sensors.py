"""Sensors across domains: landing files -> ETL, registry -> tenants partitions, new clean data ->
training, and run failures -> alerts. The bookkeeping lives in plain modules (landing, onboarding,
retraining, alerts); here it is wired to Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import dagster as dg
from dagster._core.storage.tags import WILL_RETRY_TAG

from spotify_jobs.automation.alerts import AlertChannels, RunFailureAlert, deliver
from spotify_jobs.automation.landing import (
    DEFAULT_LIST_WORKERS,
    DEFAULT_LOOKBACK_SECONDS,
    LANDING_DIR,
    LandingCursor,
    scan_landing,
)
from spotify_jobs.automation.onboarding import onboarding_change, previously_registered
from spotify_jobs.automation.retraining import RetrainLedger, RetrainPolicy
from spotify_jobs.automation.run_requests import onboarded_tenants, tenant_run_request, time_partition_exists
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.config import PlacementError
from spotify_jobs.observability.audit import AuditTrail
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_of, tenant_partitions, time_of
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType

LANDING_SENSOR = "landing_sensor"
ONBOARDING_SENSOR = "tenant_onboarding_sensor"
RETRAIN_SENSOR = "retrain_on_new_data_sensor"
FAILURE_ALERT_SENSOR = "run_failure_alerts"
CLEAN_EVENTS_ASSET = dg.AssetKey("listening_events")
ROW_COUNT_KEYS = ("dagster/row_count", "rows")
EVENTS_PAGE = 1000
DEFAULT_RETRAIN_POLICY = RetrainPolicy()
MAX_EVENT_PAGES = 20  # per asset per tick; the rest is read on the next tick


class AlertDeliveryError(RuntimeError):
    """An alert could not be sent on one or more channels (the others were still tried)."""


def partition_tenant(spec: TenantJobSpec, partition_key: str) -> str:
    """The tenant of a partition key (as stored on events) of `spec`'s partitions."""
    if isinstance(spec.partitions_def, dg.MultiPartitionsDefinition):
        return tenant_of(spec.partitions_def.get_partition_key_from_str(partition_key))
    return tenant_of(partition_key)


def build_landing_sensor(
    factory: TenantJobFactory,
    etl_spec: TenantJobSpec,
    *,
    minimum_interval_seconds: int = 30,
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    list_workers: int = DEFAULT_LIST_WORKERS,
) -> dg.SensorDefinition:
    """New export files in any onboarded tenant's landing zone -> one ETL run per (tenant, landing date)."""

    @dg.sensor(
        name=LANDING_SENSOR,
        job_name=etl_spec.name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Starts the ETL of a tenant's landing date when new export files land there (late files "
            "re-run the date). Cursor: per-tenant watermark of file modification times."
        ),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
        tenants = onboarded_tenants(context.instance, factory.registry.ids)
        scan = scan_landing(
            lambda tenant: platform.tenant_storage(tenant).list(LANDING_DIR),
            tenants,
            LandingCursor.from_json(context.cursor),
            lookback=lookback_seconds,
            # S3 listings wait on the network; local ones are CPU-bound Python, where threads only contend
            workers=list_workers if platform.data_root.startswith("s3://") else 1,
        )
        valid_date = cache(lambda day: time_partition_exists(etl_spec, day))
        requests = []
        for batch in scan.batches:
            if not valid_date(batch.date):
                context.log.warning(
                    f"{len(batch.keys)} file(s) of {batch.tenant} under landing/{batch.date}/ ignored: "
                    "not a partition date of the ETL"
                )
                continue
            try:
                requests.append(
                    tenant_run_request(
                        factory,
                        etl_spec,
                        batch.tenant,
                        batch.date,
                        run_key=f"{batch.tenant}|{batch.date}|{batch.fingerprint}",
                        trigger="landing",
                    )
                )
            except PlacementError as exc:
                context.log.warning(f"landing files of {batch.tenant} not processed: {exc}")
        for key in scan.misplaced:
            context.log.warning(f"ignored {key}: exports belong under landing/<YYYY-MM-DD>/<export-id>/")
        for tenant, error in scan.errors.items():
            context.log.error(f"cannot list the landing zone of {tenant} (retried next tick): {error}")
        return dg.SensorResult(
            run_requests=requests,
            cursor=scan.cursor.to_json(),
            skip_reason=None if requests else f"no new files in {len(tenants)} landing zones",
        )

    return landing_sensor


def build_onboarding_sensor(*, minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """Registry -> `tenants` dynamic partitions (additions only; see automation.onboarding)."""

    @dg.sensor(
        name=ONBOARDING_SENSOR,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a `tenants` partition for every newly registered tenant and audits it. Never removes "
            "one: that is `spotify-jobs offboard-tenant` (final backup first)."
        ),
    )
    def tenant_onboarding_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
        registry = load_registry(platform.tenant_registry)  # re-read: registry edits apply without reload
        change = onboarding_change(
            registry.ids,
            context.instance.get_dynamic_partitions(tenant_partitions.name),
            previously_registered(context.cursor),
        )
        for tenant in change.to_add:
            AuditTrail(platform.tenant_storage(tenant)).append(
                actor=f"sensor:{ONBOARDING_SENSOR}",
                action="onboarded",
                subject=f"{tenant_partitions.name} partition",
                details={"tier": registry.get(tenant).tier},
            )
        if change.unregistered:
            context.log.warning(
                "partitions of tenants no longer registered (run offboard-tenant for each): "
                + ", ".join(change.unregistered)
            )
        return dg.SensorResult(
            dynamic_partitions_requests=(
                [tenant_partitions.build_add_request(change.to_add)] if change.to_add else []
            ),
            cursor=change.cursor(),
            skip_reason=None if change.to_add else f"no new tenants ({len(change.registered)} registered)",
        )

    return tenant_onboarding_sensor


def _row_count(record) -> int:
    metadata = record.asset_materialization.metadata
    for key in ROW_COUNT_KEYS:
        value = metadata[key].value if key in metadata else None
        if isinstance(value, int):
            return value
    return 0


def _materializations_after(instance: dg.DagsterInstance, key: dg.AssetKey, after: int | None) -> list:
    records = []
    for _page in range(MAX_EVENT_PAGES):
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=EVENTS_PAGE, ascending=True
        )
        records.extend(result.records)
        if not result.records or not result.has_more:
            break
        after = result.records[-1].storage_id
    return records


def build_retrain_sensor(
    factory: TenantJobFactory,
    etl_spec: TenantJobSpec,
    training_spec: TenantJobSpec,
    *,
    policy: RetrainPolicy = DEFAULT_RETRAIN_POLICY,
    clean_asset: dg.AssetKey = CLEAN_EVENTS_ASSET,
    minimum_interval_seconds: int = 300,
) -> dg.SensorDefinition:
    """A tenant's model is retrained once enough new clean data has landed since its last model."""
    model_keys = sorted({key for assets_def in training_spec.assets for key in assets_def.keys})

    @dg.sensor(
        name=RETRAIN_SENSOR,
        job_name=training_spec.name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Retrains a tenant's model after {policy.min_new_partitions} new days or "
            f"{policy.min_new_rows:,} new rows of {clean_asset.to_user_string()} since its last model."
        ),
    )
    def retrain_on_new_data_sensor(context: dg.SensorEvaluationContext):
        ledger = RetrainLedger.from_json(context.cursor)
        events = []
        for key, spec in ((clean_asset, etl_spec), *((k, training_spec) for k in model_keys)):
            records = _materializations_after(context.instance, key, ledger.after.get(key.to_user_string()))
            if records:
                ledger.after[key.to_user_string()] = records[-1].storage_id
            events.extend((record.storage_id, key == clean_asset, spec, record) for record in records)
        for storage_id, is_clean, spec, record in sorted(events, key=lambda event: event[0]):
            if record.partition_key is None:
                continue
            tenant = partition_tenant(spec, record.partition_key)
            if is_clean:
                day = time_of(spec.partitions_def.get_partition_key_from_str(record.partition_key))
                ledger.add_clean(tenant, day or record.partition_key, _row_count(record), storage_id)
            else:
                ledger.model_trained(tenant)
        requests = []
        for tenant, tally in ledger.due(policy):
            try:
                requests.append(
                    tenant_run_request(
                        factory,
                        training_spec,
                        tenant,
                        tally.latest_date,
                        run_key=f"{tenant}|{tally.last_event}",
                        trigger="retrain",
                    )
                )
            except PlacementError as exc:
                context.log.info(f"{tenant} has new data but cannot be trained: {exc}")
            ledger.model_trained(tenant)  # asked (or refused): count afresh from here
        return dg.SensorResult(
            run_requests=requests,
            cursor=ledger.to_json(),
            skip_reason=None
            if requests
            else f"no tenant has enough new clean data ({len(ledger.tallies)} counting)",
        )

    return retrain_on_new_data_sensor


def _root_cause(error) -> str:
    """The innermost error's message: Dagster wraps user errors ("Error occurred while executing op")."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _failure_detail(context: dg.RunFailureSensorContext) -> str:
    step_errors = [
        f"{event.step_key}: {_root_cause(event.event_specific_data.error)}"
        for event in context.get_step_failure_events()
        if event.event_specific_data is not None and event.event_specific_data.error is not None
    ]
    return "; ".join(step_errors) or context.failure_event.message or "run failed"


def build_failure_alert_sensor(channels: AlertChannels) -> dg.RunFailureSensorDefinition:
    """Alerts on every run of the code location that failed for good (not on a failure that will retry)."""

    @dg.run_failure_sensor(
        name=FAILURE_ALERT_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="PagerDuty for critical runs, Slack for high and normal, e-mail for all (when set up).",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        if run.tags.get(WILL_RETRY_TAG) == "true":
            context.log.info(f"run {run.run_id} failed and will be retried: no alert for this attempt")
            return
        alert = RunFailureAlert.from_run(
            run.run_id, run.job_name, run.tags, _failure_detail(context), channels
        )
        outcome = deliver(alert, channels)
        failed = {route: error for route, error in outcome.items() if error}
        if failed:
            raise AlertDeliveryError(
                f"alert for run {run.run_id} not delivered on "
                + "; ".join(f"{route}: {error}" for route, error in failed.items())
            )
        sent = ", ".join(outcome) or f"nowhere (no channel configured for priority {alert.priority})"
        context.log.info(f"alert for run {run.run_id} sent to {sent}")

    return run_failure_alerts


def build_sensors(
    factory: TenantJobFactory,
    specs: Iterable[TenantJobSpec],
    *,
    alerts: AlertChannels | None = None,
    retrain_policy: RetrainPolicy = DEFAULT_RETRAIN_POLICY,
) -> list[dg.SensorDefinition]:
    """Every automation sensor the given tenant jobs (`TENANT_JOBS.values()`) allow."""
    by_type = {spec.job_type: spec for spec in specs}
    sensors: list[dg.SensorDefinition] = [
        build_onboarding_sensor(),
        build_failure_alert_sensor(alerts or AlertChannels()),
    ]
    if JobType.DATA_ETL in by_type:
        sensors.append(build_landing_sensor(factory, by_type[JobType.DATA_ETL]))
        if JobType.ML_TRAINING in by_type:
            sensors.append(
                build_retrain_sensor(
                    factory, by_type[JobType.DATA_ETL], by_type[JobType.ML_TRAINING], policy=retrain_policy
                )
            )
    return sensors
