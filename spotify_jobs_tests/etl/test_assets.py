"""Materialising the ETL assets and their checks, on local storage and on S3 (moto over HTTP), and re-runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spotify_jobs.etl.assets import asset_checks, assets
from spotify_jobs.etl.files import landing_files
from spotify_jobs.etl.generator import GenerationConfig, generate_exports
from spotify_jobs.etl.pipeline import TenantStorageSink, run_etl, tenant_key
from spotify_jobs.etl.schema import ETL_OUTPUTS, output_key
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import tenant_date_key

from .conftest import DATE

TENANT = "startup-042"


def _materialize(platform: PlatformResource, tenant: str = TENANT, selection=None) -> dg.ExecuteInJobResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [tenant])
    return dg.materialize(
        [*assets, *asset_checks],
        partition_key=tenant_date_key(tenant, DATE),
        resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
        instance=instance,
        selection=selection,
        raise_on_error=False,
    )


def _read(platform: PlatformResource, name: str, tenant: str = TENANT) -> pa.Table:
    return pq.read_table(pa.BufferReader(platform.tenant_storage(tenant).read_bytes(output_key(name, DATE))))


def _metadata(result: dg.ExecuteInJobResult, name: str) -> dict:
    [event] = [
        m for m in result.asset_materializations_for_node("etl_landing_date") if m.asset_key.path == [name]
    ]
    return {key: value.value for key, value in event.metadata.items()}


def _checks(result: dg.ExecuteInJobResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _assert_materialised(result: dg.ExecuteInJobResult, platform: PlatformResource, report) -> None:
    assert result.success
    events = _metadata(result, "listening_events")
    assert events["input_records"] == report.records_in
    assert events["clean_records"] == report.clean
    assert events["duplicate_records"] == report.duplicates
    assert events["quarantined_records"] == sum(report.malformed.values()) + report.unreadable_files
    assert events["conserved"] is True
    assert events["records_in"] == report.records_in  # billed on exactly one materialisation
    assert "records_in" not in _metadata(result, "daily_track_stats")
    assert "| listener_id |" in events["preview"]
    checks = _checks(result)
    assert len(checks) == len(asset_checks)
    assert all(checks.values()), checks
    assert _read(platform, "listening_events").num_rows == report.clean
    assert _read(platform, "quarantined_events").num_rows == events["quarantined_records"]
    stats = _read(platform, "daily_track_stats")
    assert stats.num_rows == _metadata(result, "daily_track_stats")["dagster/row_count"] > 0


def test_materialize_local_then_rerun_replaces_outputs(platform):
    report = generate_exports(platform.tenant_storage(TENANT), DATE, GenerationConfig(records=2500, seed=3))
    first = _materialize(platform)
    _assert_materialised(first, platform, report)
    before = {name: _read(platform, name) for name in ETL_OUTPUTS}

    # A new delivery replaces the landing date; re-running replaces all three outputs.
    report = generate_exports(
        platform.tenant_storage(TENANT),
        DATE,
        GenerationConfig(records=1200, seed=4, variant="legacy"),
        replace=True,
    )
    second = _materialize(platform)
    _assert_materialised(second, platform, report)
    assert _read(platform, "listening_events").num_rows == report.clean != before["listening_events"].num_rows

    # The same input again gives the same outputs (idempotent).
    third = _materialize(platform)
    assert third.success
    for name in ETL_OUTPUTS:
        assert _read(platform, name).equals(
            pq.read_table(pa.BufferReader(platform.tenant_storage(TENANT).read_bytes(output_key(name, DATE))))
        )
    assert _metadata(third, "listening_events")["clean_records"] == report.clean


def test_materialize_on_s3(s3_endpoint, s3_bucket, tmp_path):
    settings = load_settings(
        data_root=f"s3://{s3_bucket}/data", backup_root=str(tmp_path / "backups"), s3_endpoint_url=s3_endpoint
    )
    platform = PlatformResource.from_settings(settings)
    report = generate_exports(platform.tenant_storage(TENANT), DATE, GenerationConfig(records=1500, seed=5))
    result = _materialize(platform)
    _assert_materialised(result, platform, report)
    assert _metadata(result, "listening_events")["path"].startswith(
        f"s3://{s3_bucket}/data/tenants/{TENANT}/"
    )


def test_parser_threads_read_s3_files_concurrently(s3_endpoint, s3_bucket, tmp_path, monkeypatch):
    from spotify_jobs.etl import pipeline

    settings = load_settings(
        data_root=f"s3://{s3_bucket}/data", backup_root=str(tmp_path / "backups"), s3_endpoint_url=s3_endpoint
    )
    storage = PlatformResource.from_settings(settings).tenant_storage(TENANT)
    generate_exports(storage, DATE, GenerationConfig(records=1500, seed=6, max_file_bytes=40_000))
    files, _ = landing_files(storage, DATE)
    key = tenant_key(settings.pseudonym_secret.get_secret_value(), TENANT)
    runs = {}
    for threads, batch_bytes in ((1, pipeline.BATCH_BYTES), (3, 1)):  # then one file a batch, three at once
        monkeypatch.setattr(pipeline, "BATCH_BYTES", batch_bytes)
        out = tmp_path / f"out-{threads}"
        result = run_etl(files, key, pipeline.DirectorySink(out), threads=threads)
        runs[threads] = (result.counts(), [pq.read_table(out / f"{name}.parquet") for name in ETL_OUTPUTS])
    assert len(files) > 3
    assert runs[3][0] == runs[1][0]
    assert all(a.equals(b) for a, b in zip(runs[3][1], runs[1][1], strict=True))


def test_subset_writes_only_the_selected_output(platform):
    report = generate_exports(platform.tenant_storage(TENANT), DATE, GenerationConfig(records=800, seed=6))
    result = _materialize(platform, selection=["daily_track_stats"])
    assert result.success
    storage = platform.tenant_storage(TENANT)
    assert storage.exists(output_key("daily_track_stats", DATE))
    assert not storage.exists(output_key("listening_events", DATE))
    meta = _metadata(result, "daily_track_stats")
    assert meta["records_in"] == report.records_in
    assert meta["clean_records"] == report.clean


def test_personal_data_check_fails_when_pseudonymisation_breaks(platform, monkeypatch):
    generate_exports(platform.tenant_storage(TENANT), DATE, GenerationConfig(records=600, seed=7))
    # Simulate a broken pseudonymiser that stores the raw listener key.
    monkeypatch.setattr("spotify_jobs.etl.pipeline.listener_id", lambda _key, listener_key: listener_key)
    result = _materialize(platform)
    checks = _checks(result)
    assert checks["listening_events_has_no_personal_data"] is False
    assert checks["listening_events_schema"] is False  # raw usernames are not 64-hex ids either
    assert checks["daily_track_stats_has_no_personal_data"] is True


def test_unregistered_tenant_fails_clearly(platform):
    generate_exports(platform.tenant_storage("not-registered"), DATE, GenerationConfig(records=50))
    result = _materialize(platform, tenant="not-registered")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "unknown tenant 'not-registered'" in failure.event_specific_data.error.to_string()


def test_missing_landing_data_fails_clearly(platform):
    result = _materialize(platform)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "no Streaming_History_Audio_*.json files" in failure.event_specific_data.error.to_string()


@pytest.mark.parametrize("hostile", ["../x", "A_B", "tenant/../../etc", "ténant", ""])
def test_hostile_tenant_partition_never_reaches_storage(platform, hostile, tmp_path):
    with pytest.raises(ValueError, match="tenant id"):
        tenant_date_key(hostile, DATE)
    with pytest.raises(ValueError, match="tenant id"):
        platform.tenant_storage(hostile)


def test_landing_file_that_storage_cannot_address_is_quarantined(platform, tmp_path):
    storage = platform.tenant_storage(TENANT)
    report = generate_exports(storage, DATE, GenerationConfig(records=300, seed=8, malformed_share=0))
    odd = Path(platform.data_root) / "tenants" / TENANT / "landing" / DATE / "my export"
    odd.mkdir(parents=True)
    (odd / "Streaming_History_Audio_2026_0.json").write_text("[]")
    files, _ = landing_files(storage, DATE)
    result = run_etl(files, tenant_key("s", TENANT), TenantStorageSink(storage, DATE))
    assert result.records_in == report.records_in + 1
    assert result.quarantine_reasons == {"file_unreadable": 1}
    assert result.clean == report.clean
