"""Every partitions definition of the platform, and how to read a tenant or date out of a partition key."""

from __future__ import annotations

import dagster as dg

from spotify_jobs.tenancy.registry import validate_tenant_id

PARTITIONS_START = "2026-01-01"
TENANT_DIMENSION = "tenant"
DATE_DIMENSION = "date"
MONTH_DIMENSION = "month"

tenant_partitions = dg.DynamicPartitionsDefinition(name="tenants")
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)
tenant_daily_partitions = dg.MultiPartitionsDefinition(
    {TENANT_DIMENSION: tenant_partitions, DATE_DIMENSION: daily_partitions}
)
tenant_monthly_partitions = dg.MultiPartitionsDefinition(
    {TENANT_DIMENSION: tenant_partitions, MONTH_DIMENSION: monthly_partitions}
)


_TIME = "time"  # a date or a month start, from a multi-partition key that arrived as a plain string


def _dimensions(partition_key: str | dg.MultiPartitionKey) -> dict[str, str]:
    if isinstance(partition_key, dg.MultiPartitionKey):
        return dict(partition_key.keys_by_dimension)
    if "|" in partition_key:
        # `dagster job execute --tags '{"dagster/partition": "2026-11-01|t"}'` hands the step the string form;
        # dimensions are ordered by name, so the time ("date" or "month") comes before "tenant".
        parts = partition_key.split("|")
        if len(parts) != 2:
            raise ValueError(f"partition key {partition_key!r} is not '<date or month>|<tenant>'")
        return {_TIME: parts[0], TENANT_DIMENSION: parts[1]}
    return {TENANT_DIMENSION: partition_key}


def tenant_of(partition_key: str | dg.MultiPartitionKey) -> str:
    """The validated tenant id of a tenant or tenant x time partition key."""
    return validate_tenant_id(_dimensions(partition_key)[TENANT_DIMENSION])


def time_of(partition_key: str | dg.MultiPartitionKey) -> str | None:
    """The date (YYYY-MM-DD) or month start of a tenant x time partition key; None for a tenant key."""
    dims = _dimensions(partition_key)
    return dims.get(DATE_DIMENSION) or dims.get(MONTH_DIMENSION) or dims.get(_TIME)


def tenant_date_key(tenant_id: str, date: str) -> dg.MultiPartitionKey:
    """The tenant x daily partition key for one tenant and one UTC date."""
    return dg.MultiPartitionKey({TENANT_DIMENSION: validate_tenant_id(tenant_id), DATE_DIMENSION: date})


def tenant_month_key(tenant_id: str, month_start: str) -> dg.MultiPartitionKey:
    """The tenant x monthly partition key; `month_start` is the month's first day, YYYY-MM-01."""
    return dg.MultiPartitionKey(
        {TENANT_DIMENSION: validate_tenant_id(tenant_id), MONTH_DIMENSION: month_start}
    )
