"""Protects the landing sensor: new export files start the ETL of their tenant and date, each file once,
late and re-uploaded files re-run their date with a new run key, thousands of files in one tick, on the
local store and on S3."""

from __future__ import annotations

import json
import os

import dagster as dg
import pytest

from spotify_jobs.automation.landing import LandingCursor, TenantMark, new_files
from spotify_jobs.automation.sensors import LANDING_SENSOR
from spotify_jobs.k8s.tags import PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.object_store import ObjectInfo

EXPORT = "Streaming_History_Audio_2026_0.json"


def land(
    platform: PlatformResource, tenant: str, date: str, export: str, name: str = EXPORT, mtime=None
) -> str:
    """Write one export file into the tenant's landing zone; returns its tenant-relative key."""
    storage = platform.tenant_storage(tenant)
    storage.write_bytes(b"[]", "landing", date, export, name)
    key = f"landing/{date}/{export}/{name}"
    if mtime is not None:
        os.utime(storage.uri(key), (mtime, mtime))
    return key


def tick(test_defs, instance, platform, cursor=None):
    sensor = test_defs.get_sensor_def(LANDING_SENSOR)
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),  # as the daemon has: run requests are checked against partitions
        cursor=cursor,
        resources={"platform": platform},
        definitions=test_defs,
    )
    return sensor.evaluate_tick(context)


def by_partition(result) -> dict[str, dg.RunRequest]:
    return {r.partition_key: r for r in result.run_requests}


def test_new_files_start_one_etl_run_per_tenant_and_date(test_defs, instance, platform, onboard):
    onboard("enterprise-001", "startup-042")
    land(platform, "enterprise-001", "2026-11-01", "export-a")
    land(platform, "enterprise-001", "2026-11-01", "export-b")
    land(platform, "enterprise-001", "2026-11-02", "export-a")
    land(platform, "startup-042", "2026-11-01", "export-z")

    result = tick(test_defs, instance, platform)

    runs = by_partition(result)
    assert sorted(runs) == [
        "2026-11-01|enterprise-001",
        "2026-11-01|startup-042",
        "2026-11-02|enterprise-001",
    ]
    for key, request in runs.items():
        tenant = key.split("|")[1]
        assert request.job_name == "data_etl_job"
        assert request.run_key.startswith(f"{tenant}|{key.split('|')[0]}|")
        assert request.tags[TENANT_TAG] == tenant
        assert request.tags["spotify-jobs/trigger"] == "landing"
    assert runs["2026-11-01|startup-042"].tags[TIER_TAG] == "small"
    assert runs["2026-11-01|enterprise-001"].tags[PRIORITY_TAG] == "high"

    again = tick(test_defs, instance, platform, result.cursor)
    assert not again.run_requests, "each file is processed once"
    assert "no new files in 2 landing zones" in again.skip_message


def test_a_late_file_re_runs_its_date_with_a_new_run_key(test_defs, instance, platform, onboard):
    onboard("startup-042")
    land(platform, "startup-042", "2026-11-01", "export-a")
    first = tick(test_defs, instance, platform)
    land(platform, "startup-042", "2026-11-05", "export-b")
    land(platform, "startup-042", "2026-11-01", "export-late")  # a late export for a processed date

    second = tick(test_defs, instance, platform, first.cursor)

    runs = by_partition(second)
    assert sorted(runs) == ["2026-11-01|startup-042", "2026-11-05|startup-042"]
    assert runs["2026-11-01|startup-042"].run_key != first.run_requests[0].run_key


def test_a_re_uploaded_file_counts_as_new_data(test_defs, instance, platform, onboard):
    onboard("startup-042")
    land(platform, "startup-042", "2026-11-01", "export-a", mtime=1_800_000_000)
    first = tick(test_defs, instance, platform)
    land(platform, "startup-042", "2026-11-01", "export-a", mtime=1_800_000_100)

    second = tick(test_defs, instance, platform, first.cursor)

    assert [r.partition_key for r in second.run_requests] == ["2026-11-01|startup-042"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_files_that_appear_late_within_the_look_back_are_found(test_defs, instance, platform, onboard):
    onboard("startup-042")
    now = 1_800_000_000
    land(platform, "startup-042", "2026-11-01", "export-new", mtime=now)
    first = tick(test_defs, instance, platform)
    # an upload that started 5 minutes before the newest file but became visible after it
    land(platform, "startup-042", "2026-11-01", "export-slow", mtime=now - 300)
    # and one older than the 15-minute look-back: out of reach, by design
    land(platform, "startup-042", "2026-11-02", "export-ancient", mtime=now - 3600)

    second = tick(test_defs, instance, platform, first.cursor)

    assert [r.partition_key for r in second.run_requests] == ["2026-11-01|startup-042"]


def test_only_onboarded_tenants_are_watched_and_their_backlog_is_found_on_onboarding(
    test_defs, instance, platform, onboard
):
    land(platform, "premium-client-001", "2026-11-01", "export-a")
    first = tick(test_defs, instance, platform)
    assert not first.run_requests

    onboard("premium-client-001")
    second = tick(test_defs, instance, platform, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-01|premium-client-001"]


def test_misplaced_files_and_dates_outside_the_partitions_are_ignored_once(
    test_defs, instance, platform, onboard, capsys
):
    onboard("startup-042")
    storage = platform.tenant_storage("startup-042")
    storage.write_bytes(b"[]", "landing", "not-a-date", "export-a", EXPORT)
    storage.write_bytes(b"[]", "landing", "stray.json")
    land(platform, "startup-042", "1999-12-31", "export-a")  # before the first partition

    first = tick(test_defs, instance, platform)

    assert not first.run_requests
    warnings = capsys.readouterr().err  # the tick's log, as the daemon's console shows it
    assert "startup-042/landing/not-a-date/export-a" in warnings
    assert "startup-042/landing/stray.json" in warnings
    assert "landing/1999-12-31/ ignored" in warnings
    second = tick(test_defs, instance, platform, first.cursor)
    assert not second.run_requests
    assert "ignored" not in capsys.readouterr().err


def test_thousands_of_files_in_one_tick(test_defs, instance, platform, onboard):
    onboard("enterprise-001", "premium-client-001", "startup-042")
    tenants = ("enterprise-001", "premium-client-001", "startup-042")
    for tenant in tenants:
        for n in range(700):
            land(platform, tenant, f"2026-11-0{1 + n % 3}", f"export-{n:04d}")

    result = tick(test_defs, instance, platform)

    assert len(result.run_requests) == 9  # 3 tenants x 3 dates, 2,100 files
    cursor = json.loads(result.cursor)
    assert sum(len(mark["r"]) for mark in cursor["tenants"].values()) == 2100
    assert not tick(test_defs, instance, platform, result.cursor).run_requests


def test_landing_zones_on_s3(test_defs, instance, s3_endpoint, s3_bucket, onboard, tmp_path):
    settings = load_settings(
        data_root=f"s3://{s3_bucket}/platform",
        backup_root=str(tmp_path / "backups"),
        s3_endpoint_url=s3_endpoint,
    )
    platform = PlatformResource.from_settings(settings)
    onboard("enterprise-001", "startup-042")
    land(platform, "enterprise-001", "2026-11-01", "export-a")
    land(platform, "startup-042", "2026-11-03", "export-b")

    first = tick(test_defs, instance, platform)
    assert sorted(by_partition(first)) == ["2026-11-01|enterprise-001", "2026-11-03|startup-042"]
    land(platform, "startup-042", "2026-11-03", "export-c")
    second = tick(test_defs, instance, platform, first.cursor)
    assert sorted(by_partition(second)) == ["2026-11-03|startup-042"]


@pytest.mark.parametrize("lookback", [500.0, 1500.0])
def test_the_cursor_forgets_files_older_than_the_look_back(lookback):
    listing = [
        ObjectInfo("landing/2026-11-01/e/a.json", 2, 1000.0),
        ObjectInfo("landing/2026-11-01/e/b.json", 2, 2000.0),
    ]
    fresh, mark = new_files(TenantMark(), listing, lookback)
    assert len(fresh) == 2
    assert mark.watermark == 2000.0
    assert len(mark.recent) == (1 if lookback < 1000 else 2)

    restored = LandingCursor.from_json(LandingCursor({"t": mark}).to_json()).marks["t"]
    assert restored == mark
    fresh_again, _ = new_files(restored, listing, lookback)
    assert fresh_again == []


def test_a_cursor_of_another_version_is_refused():
    with pytest.raises(ValueError, match="landing cursor version"):
        LandingCursor.from_json(json.dumps({"v": 99, "tenants": {}}))
