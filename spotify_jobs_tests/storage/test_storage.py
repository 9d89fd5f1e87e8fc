"""Protects tenant storage: the same behaviour on a local directory and on S3 (moto's server), and no way out of
a tenant's prefix."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from spotify_jobs.resources import PlatformResource
from spotify_jobs.storage.io_manager import TenantParquetIOManager, asset_output_key
from spotify_jobs.storage.object_store import (
    LocalObjectStore,
    ObjectExists,
    S3ObjectStore,
    StorageError,
    open_store,
)
from spotify_jobs.storage.tenant_storage import TenantStorage, UnsafeKeyError
from spotify_jobs.tenancy.partitions import tenant_date_key, tenant_partitions
from spotify_jobs.tenancy.registry import InvalidTenantId


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/data", request.getfixturevalue("s3_endpoint"))


def test_bytes_parquet_and_json_round_trip(store):
    storage = TenantStorage(store, "enterprise-001")
    frame = pd.DataFrame({"track_uri": ["spotify:track:" + "a" * 22], "plays": [3]})
    uri = storage.write_parquet(frame, "assets/daily_track_stats/date=2026-11-01.parquet")
    assert "tenants/enterprise-001/assets/daily_track_stats" in uri
    pd.testing.assert_frame_equal(
        storage.read_parquet("assets/daily_track_stats/date=2026-11-01.parquet"), frame
    )
    storage.write_json({"b": 1, "a": [1, 2]}, "reports", "x.json")
    assert storage.read_json("reports/x.json") == {"a": [1, 2], "b": 1}
    storage.write_bytes(b"raw", "landing/2026-11-01/export-1/f.json")
    assert storage.read_bytes("landing", "2026-11-01", "export-1", "f.json") == b"raw"
    assert sorted(i.key for i in storage.list()) == [
        "assets/daily_track_stats/date=2026-11-01.parquet",
        "landing/2026-11-01/export-1/f.json",
        "reports/x.json",
    ]
    assert storage.delete_prefix("landing") == 1
    assert not storage.exists("landing/2026-11-01/export-1/f.json")


def test_tenants_never_see_each_other(store):
    TenantStorage(store, "enterprise-001").write_bytes(b"mine", "reports/a.txt")
    other = TenantStorage(store, "startup-042")
    assert list(other.list()) == []
    assert not other.exists("reports/a.txt")


@pytest.mark.parametrize(
    "part", ["../startup-042/x", "/etc/passwd", "a/../../b", "..", "a//b", "a\\b", "x\x00y", ""]
)
def test_keys_cannot_escape_the_tenant_prefix(store, part):
    storage = TenantStorage(store, "enterprise-001")
    with pytest.raises(UnsafeKeyError):
        storage.write_bytes(b"x", part)


def test_hostile_tenant_id_is_rejected_before_any_io(tmp_path):
    root = tmp_path / "never-created"
    with pytest.raises(InvalidTenantId):
        TenantStorage(LocalObjectStore(root), "../../etc")
    assert not root.exists()


def test_missing_object_error_names_the_object(store):
    storage = TenantStorage(store, "enterprise-001")
    with pytest.raises(StorageError, match=r"tenants/enterprise-001/nothing\.bin"):
        storage.read_bytes("nothing.bin")


def test_unreachable_bucket_is_a_clear_storage_error(s3_endpoint):
    store = S3ObjectStore("bucket-that-does-not-exist", "p", endpoint_url=s3_endpoint)
    with pytest.raises(StorageError, match="s3://bucket-that-does-not-exist/p/tenants/t-1/x"):
        TenantStorage(store, "t-1").write_bytes(b"x", "x")


def test_io_manager_layout():
    assert asset_output_key("daily_track_stats", tenant_date_key("startup-042", "2026-11-01")) == (
        "startup-042",
        "assets/daily_track_stats/date=2026-11-01.parquet",
    )
    assert asset_output_key("recommendation_model", "startup-042") == (
        "startup-042",
        "assets/recommendation_model/latest.parquet",
    )


def test_io_manager_passes_dataframes_between_assets_through_s3(s3_endpoint, s3_bucket, s3_client, tmp_path):
    platform = PlatformResource(
        data_root=f"s3://{s3_bucket}/data",
        backup_root=str(tmp_path / "backups"),
        s3_endpoint_url=s3_endpoint,
        tenant_registry=str(tmp_path / "unused.yaml"),
        pseudonym_secret="test-secret",
    )

    @dg.asset(partitions_def=tenant_partitions)
    def upstream() -> pd.DataFrame:
        return pd.DataFrame({"n": [1, 2, 3]})

    @dg.asset(partitions_def=tenant_partitions)
    def downstream(upstream: pd.DataFrame) -> pd.DataFrame:
        return upstream.assign(n=upstream["n"] * 2)

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["startup-042"])
    result = dg.materialize(
        [upstream, downstream],
        partition_key="startup-042",
        instance=instance,
        resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
    )
    assert result.success
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {
        "data/tenants/startup-042/assets/upstream/latest.parquet",
        "data/tenants/startup-042/assets/downstream/latest.parquet",
    }
    stored = platform.tenant_storage("startup-042").read_parquet("assets/downstream/latest.parquet")
    assert stored["n"].tolist() == [2, 4, 6]


def test_create_claims_a_key_once(store):
    storage = TenantStorage(store, "enterprise-001")
    storage.create(b"first", "audit/records/000000000001.json")
    with pytest.raises(ObjectExists, match=r"000000000001\.json"):
        storage.create(b"second", "audit/records/000000000001.json")
    assert storage.read_bytes("audit/records/000000000001.json") == b"first"
