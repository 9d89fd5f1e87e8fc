"""Metered usage: what one tenant used on one UTC day, computed from plain facts about runs and storage.

Rules (the invoice explains itself only if these are stable):

- A run belongs to the UTC day its *end* falls in, so every finished run (success, failure or cancel:
  the reservation was held either way) is metered exactly once. Runs still going are metered on the day
  they end.
- A run's tenant is its `spotify-jobs/tenant` tag, else its tenant partition (`dagster/partition/tenant`
  for tenant x time partitions, `dagster/partition` when that is a known tenant). A run with neither, or
  with the two disagreeing, is *unattributed*: reported, billed to nobody.
- Reserved CPU and memory = the run's tier (`spotify-jobs/tier`; the tenant's registry tier when the tag
  is absent or unknown, as `resolve_placement` defaults it) x each step's duration; a step's duration is
  the sum of its attempts (each attempt is a pod). GPU-seconds: steps whose op tags ask for a GPU in runs
  tagged `spotify-jobs/gpu=true` (only those steps get one, see `spotify_jobs.k8s.config`).
- Records processed and bytes backed up come from integer materialisation metadata named in
  RECORDS_METADATA_KEYS and BYTES_BACKED_UP_METADATA_KEY.
- Billing's own steps and runs (job type `billing-report`) are not metered: the platform does not charge
  tenants for producing their invoices, and metering them would bill the meter.
- Storage GiB-days: bytes under the tenant's data prefix and its backup prefix that existed by the end
  of the day (modified before midnight UTC), times one day; billing's own files are excluded.

Quantities are Decimals with QUANTITY_PLACES decimal places: CPU core-seconds and GPU-seconds are exact
(durations are whole milliseconds), memory GiB-seconds and storage GiB-days are rounded half-even there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

import pyarrow as pa

from spotify_jobs.billing.tables import parquet_bytes, read_table
from spotify_jobs.etl.schema import output_key
from spotify_jobs.k8s.tags import GPU_TAG, JOB_TYPE_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.storage.object_store import ObjectInfo
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.partitions import TENANT_DIMENSION
from spotify_jobs.tenancy.registry import InvalidTenantId, validate_tenant_id
from spotify_jobs.tenancy.tiers import TIERS, JobType, tier_spec

USAGE_ASSET = "usage_records"
# Integer materialisation metadata read as "records processed", in order of preference: a step's
# records are the sum of the first key any of its materialisations reports (ETL reports `records_in`, its
# input; the tenant IO manager adds `rows` to every DataFrame output). Taking the input count when there
# is one keeps a step that reads N records and writes several outputs from counting them twice.
RECORDS_METADATA_KEYS: tuple[str, ...] = ("records_in", "rows")
BYTES_BACKED_UP_METADATA_KEY = "bytes_uploaded"
UNMETERED_JOB_TYPES = frozenset({JobType.BILLING_REPORT.value})
# Billing's own files under a tenant prefix: not the tenant's data, so not billed as storage.
BILLING_OWNED_PREFIXES: tuple[str, ...] = ("billing/", f"assets/{USAGE_ASSET}/")
PARTITION_TAG = "dagster/partition"
TENANT_PARTITION_TAG = f"{PARTITION_TAG}/{TENANT_DIMENSION}"
UNSPECIFIED_JOB_TYPE = "unspecified"
QUANTITY_PLACES = 9
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)
_GIB = 1024**3


class Resource(StrEnum):
    """A metered resource, in invoice order; `unit` is what usage records count it in."""

    CPU = "cpu"
    MEMORY = "memory"
    GPU = "gpu"
    RECORDS = "records"
    BACKUP = "backup"
    STORAGE = "storage"

    @property
    def unit(self) -> str:
        return _METERED_UNITS[self]


_METERED_UNITS = {
    Resource.CPU: "core-second",
    Resource.MEMORY: "GiB-second",
    Resource.GPU: "GPU-second",
    Resource.RECORDS: "record",
    Resource.BACKUP: "byte",
    Resource.STORAGE: "GiB-day",
}
RESOURCE_ORDER: tuple[Resource, ...] = tuple(Resource)


def quantise(value: Decimal) -> Decimal:
    """A usage quantity at QUANTITY_PLACES decimal places, rounded half-even."""
    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class StepFacts:
    """One step of a run as the instance recorded it."""

    step_key: str
    tags: Mapping[str, str]  # the op's tags
    duration_ms: int  # all attempts together
    materialisations: tuple[Mapping[str, int], ...] = ()  # integer metadata of each materialisation


@dataclass(frozen=True)
class RunFacts:
    """One finished run: its tags, when it ended, and (when loaded) its steps."""

    run_id: str
    job_name: str
    status: str
    tags: Mapping[str, str]
    end_time: float  # epoch seconds, UTC
    steps: tuple[StepFacts, ...] = ()


@dataclass(frozen=True)
class UsageRecord:
    """Usage of one resource by one tenant on one day, at one tier, from one job type."""

    date: str
    tenant: str
    resource: Resource
    tier: str
    job_type: str
    quantity: Decimal
    runs: int = 0

    @property
    def unit(self) -> str:
        return self.resource.unit


@dataclass(frozen=True)
class UnattributedRun:
    run_id: str
    job_name: str
    reason: str


@dataclass
class DayUsage:
    """What metering one tenant's day found: the records, and what it did not bill and why."""

    records: list[UsageRecord]
    runs_metered: list[str] = field(default_factory=list)
    unmetered_billing_runs: list[str] = field(default_factory=list)
    unattributed: list[UnattributedRun] = field(default_factory=list)
    tier_fallbacks: list[str] = field(default_factory=list)  # runs billed at the tenant's registry tier
    data_bytes: int = 0
    backup_bytes: int = 0


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def run_tenant(tags: Mapping[str, str], known_tenants: Iterable[str] = ()) -> tuple[str | None, str]:
    """(tenant, "") for an attributable run; (None, why) otherwise."""
    explicit = tags.get(TENANT_TAG)
    from_partition = tags.get(TENANT_PARTITION_TAG)
    if from_partition is None and tags.get(PARTITION_TAG) in set(known_tenants):
        from_partition = tags[PARTITION_TAG]
    if explicit and from_partition and explicit != from_partition:
        return None, f"tag {TENANT_TAG}={explicit!r} disagrees with tenant partition {from_partition!r}"
    tenant = explicit or from_partition
    if not tenant:
        return None, f"no {TENANT_TAG} tag and no tenant partition"
    try:
        return validate_tenant_id(tenant), ""
    except InvalidTenantId as exc:
        return None, str(exc)


def records_processed(materialisations: Sequence[Mapping[str, int]]) -> int:
    """Records one step processed, from its materialisations' metadata (see RECORDS_METADATA_KEYS)."""
    for key in RECORDS_METADATA_KEYS:
        if any(key in m for m in materialisations):
            return sum(m.get(key, 0) for m in materialisations)
    return 0


def meter_runs(
    runs: Iterable[RunFacts],
    tenant: str,
    day: date,
    tenant_tier: str,
    known_tenants: Iterable[str] = (),
) -> DayUsage:
    """Usage records of `tenant`'s runs that ended on `day`, and the runs that could not be attributed."""
    tenant = validate_tenant_id(tenant)
    start, end = (moment.timestamp() for moment in day_bounds(day))
    known = set(known_tenants)
    # Integer base units so nothing rounds while summing: millicore-ms, MiB-ms, GPU-ms, records, bytes.
    totals: dict[tuple[str, str, Resource], int] = defaultdict(int)
    contributing: dict[tuple[str, str, Resource], set[str]] = defaultdict(set)
    usage = DayUsage(records=[])
    for run in sorted(runs, key=lambda r: (r.end_time, r.run_id)):
        if not start <= run.end_time < end:
            continue
        owner, reason = run_tenant(run.tags, known)
        if owner is None:
            usage.unattributed.append(UnattributedRun(run.run_id, run.job_name, reason))
            continue
        if owner != tenant:
            continue
        run_job_type = run.tags.get(JOB_TYPE_TAG)
        if run_job_type in UNMETERED_JOB_TYPES:
            usage.unmetered_billing_runs.append(run.run_id)
            continue
        tier_name = run.tags.get(TIER_TAG)
        if tier_name not in TIERS:
            usage.tier_fallbacks.append(run.run_id)
            tier_name = tenant_tier
        tier = tier_spec(tier_name)
        run_has_gpu = run.tags.get(GPU_TAG) == "true"
        usage.runs_metered.append(run.run_id)
        for step in run.steps:
            job_type = step.tags.get(JOB_TYPE_TAG) or run_job_type or UNSPECIFIED_JOB_TYPE
            if job_type in UNMETERED_JOB_TYPES:
                continue
            amounts = {
                Resource.CPU: tier.cpu_millicores * step.duration_ms,
                Resource.MEMORY: tier.memory_mib * step.duration_ms,
                Resource.GPU: step.duration_ms if run_has_gpu and step.tags.get(GPU_TAG) == "true" else 0,
                Resource.RECORDS: records_processed(step.materialisations),
                Resource.BACKUP: sum(m.get(BYTES_BACKED_UP_METADATA_KEY, 0) for m in step.materialisations),
            }
            for resource, amount in amounts.items():
                if amount:
                    key = (job_type, tier.name, resource)
                    totals[key] += amount
                    contributing[key].add(run.run_id)
    for (job_type, tier_name, resource), base in sorted(totals.items(), key=lambda kv: _record_order(kv[0])):
        usage.records.append(
            UsageRecord(
                day.isoformat(),
                tenant,
                resource,
                tier_name,
                job_type,
                _from_base_units(resource, base),
                len(contributing[(job_type, tier_name, resource)]),
            )
        )
    return usage


def _record_order(key: tuple[str, str, Resource]) -> tuple[int, int, str]:
    job_type, tier_name, resource = key
    return RESOURCE_ORDER.index(resource), tier_spec(tier_name).rank, job_type


def _from_base_units(resource: Resource, base: int) -> Decimal:
    if resource is Resource.CPU:
        return quantise(Decimal(base) / 1_000_000)  # millicore-ms -> core-seconds
    if resource is Resource.MEMORY:
        return quantise(Decimal(base) / (1024 * 1000))  # MiB-ms -> GiB-seconds
    if resource is Resource.GPU:
        return quantise(Decimal(base) / 1000)
    return quantise(Decimal(base))


def stored_bytes(objects: Iterable[ObjectInfo], day: date, exclude: Sequence[str] = ()) -> int:
    """Bytes of the objects that existed by the end of `day` (keys relative to a tenant prefix)."""
    end = day_bounds(day)[1].timestamp()
    return sum(o.size for o in objects if o.modified < end and not o.key.startswith(tuple(exclude)))


def storage_record(
    tenant: str, day: date, tier: str, data_bytes: int, backup_bytes: int
) -> UsageRecord | None:
    """The day's storage GiB-days of a tenant (data plus backups), or None when it stores nothing."""
    total = data_bytes + backup_bytes
    if total <= 0:
        return None
    return UsageRecord(day.isoformat(), tenant, Resource.STORAGE, tier, "", quantise(Decimal(total) / _GIB))


def meter_tenant_day(
    runs: Iterable[RunFacts],
    tenant: str,
    day: date,
    tenant_tier: str,
    known_tenants: Iterable[str],
    data_objects: Iterable[ObjectInfo],
    backup_objects: Iterable[ObjectInfo],
) -> DayUsage:
    """All of a tenant's usage records for one day: its runs, then its storage (data plus backups)."""
    usage = meter_runs(runs, tenant, day, tenant_tier, known_tenants)
    usage.data_bytes = stored_bytes(data_objects, day, exclude=BILLING_OWNED_PREFIXES)
    usage.backup_bytes = stored_bytes(backup_objects, day)
    record = storage_record(tenant, day, tenant_tier, usage.data_bytes, usage.backup_bytes)
    if record is not None:
        usage.records.append(record)
    return usage


# --- usage record files: `tenants/<t>/assets/usage_records/date=<day>.parquet` (the IO manager's layout) ---

USAGE_SCHEMA = pa.schema(
    [
        ("date", pa.string()),
        ("tenant", pa.string()),
        ("resource", pa.string()),
        ("unit", pa.string()),
        ("tier", pa.string()),
        ("job_type", pa.string()),
        ("quantity", pa.decimal128(38, QUANTITY_PLACES)),
        ("runs", pa.int64()),
    ]
)


class UsageFileError(ValueError):
    """A usage record file that is not what metering writes."""


def usage_key(day: date | str) -> str:
    return output_key(USAGE_ASSET, str(day))


def usage_table(records: Sequence[UsageRecord]) -> pa.Table:
    columns = {
        "date": [r.date for r in records],
        "tenant": [r.tenant for r in records],
        "resource": [r.resource.value for r in records],
        "unit": [r.unit for r in records],
        "tier": [r.tier for r in records],
        "job_type": [r.job_type for r in records],
        "quantity": [quantise(r.quantity) for r in records],
        "runs": [r.runs for r in records],
    }
    return pa.Table.from_pydict(columns, schema=USAGE_SCHEMA)


def write_usage(storage: TenantStorage, day: date, records: Sequence[UsageRecord]) -> str:
    """Store one day's usage records of the storage's tenant; returns the file's URI."""
    for record in records:
        if record.tenant != storage.tenant_id or record.date != day.isoformat():
            raise UsageFileError(
                f"usage record for {record.tenant} on {record.date} cannot go into "
                f"{storage.tenant_id}'s file for {day.isoformat()}"
            )
    return storage.write_bytes(parquet_bytes(usage_table(records)), usage_key(day))


def read_usage(storage: TenantStorage, day: date) -> list[UsageRecord] | None:
    """One day's usage records of the storage's tenant; None when that day was never metered."""
    key = usage_key(day)
    if not storage.exists(key):
        return None
    table = read_table(storage.read_bytes(key))
    if table.schema != USAGE_SCHEMA:
        raise UsageFileError(f"{storage.uri(key)} has schema {table.schema}, expected {USAGE_SCHEMA}")
    records = [
        UsageRecord(
            row["date"],
            row["tenant"],
            Resource(row["resource"]),
            row["tier"],
            row["job_type"],
            row["quantity"],
            row["runs"],
        )
        for row in table.to_pylist()
    ]
    for record in records:
        if record.tenant != storage.tenant_id or record.date != day.isoformat():
            raise UsageFileError(f"{storage.uri(key)} holds a record for {record.tenant} on {record.date}")
    return records
