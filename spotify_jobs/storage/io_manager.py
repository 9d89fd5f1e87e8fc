"""IO manager that keeps each tenant's asset outputs as Parquet under that tenant's prefix.

Layout, relative to `tenants/<tenant>/`: `assets/<asset>/<dimension>=<value>.parquet` for tenant x time
partitions and `assets/<asset>/latest.parquet` for tenant-only partitions. Step pods share nothing but this
storage, so it works the same on a local directory and on S3.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import DATE_DIMENSION, MONTH_DIMENSION, TENANT_DIMENSION, tenant_of


def asset_output_key(asset_name: str, partition_key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(tenant id, key relative to the tenant's prefix) of one asset partition's Parquet file."""
    tenant = tenant_of(partition_key)
    if isinstance(partition_key, dg.MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        for dim in (DATE_DIMENSION, MONTH_DIMENSION):
            if dim in dims:
                return tenant, f"assets/{asset_name}/{dim}={dims[dim]}.parquet"
        others = sorted(d for d in dims if d != TENANT_DIMENSION)
        raise ValueError(f"partition key {partition_key!r} has no date or month dimension: {others}")
    return tenant, f"assets/{asset_name}/latest.parquet"


class TenantParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames of tenant-partitioned assets as Parquet in the tenant's own storage prefix."""

    platform: PlatformResource

    def _location(self, context: dg.OutputContext | dg.InputContext) -> tuple[str, str]:
        if not context.has_asset_partitions:
            raise ValueError(f"asset {context.asset_key.to_user_string()} must be tenant-partitioned")
        key = context.asset_partition_key
        partitions_def = context.asset_partitions_def
        if isinstance(partitions_def, dg.MultiPartitionsDefinition) and not isinstance(
            key, dg.MultiPartitionKey
        ):
            key = partitions_def.get_partition_key_from_str(key)
        return asset_output_key(context.asset_key.path[-1], key)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; this IO manager stores DataFrames"
            )
        tenant, key = self._location(context)
        uri = self.platform.tenant_storage(tenant).write_parquet(obj, key)
        context.add_output_metadata({"path": dg.MetadataValue.path(uri), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        tenant, key = self._location(context)
        return self.platform.tenant_storage(tenant).read_parquet(key)
