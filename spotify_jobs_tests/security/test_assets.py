"""Protects the Dagster wiring: the security_scan asset stores its report, its checks fail with ERROR on a
critical control and warn below 95 %, and a clean tenant passes both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.store import open_file_store
from spotify_jobs.etl.schema import output_key
from spotify_jobs.k8s.tags import JOB_TYPE_TAG
from spotify_jobs.security.assets import asset_checks, assets, security_scan
from spotify_jobs.security.report import report_key
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import tenant_date_key
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.security.helpers import DATE, TENANT

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", [TENANT])
        yield instance


def materialize(platform, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*assets, *asset_checks],
        partition_key=tenant_date_key(TENANT, TODAY),
        resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
        instance=instance,
    )


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_definitions_follow_the_platform_conventions():
    spec = security_scan.specs_by_key[security_scan.key]
    assert spec.group_name == "security" and spec.owners == ["team:ml-platform"]
    assert security_scan.op.tags[JOB_TYPE_TAG] == JobType.SECURITY_SCAN.value
    assert security_scan.descriptions_by_key[security_scan.key]
    assert {c.op.tags[JOB_TYPE_TAG] for c in asset_checks} == {JobType.SECURITY_SCAN.value}


def test_a_clean_backed_up_tenant_passes_both_checks(platform, clean_tenant, instance):
    backups = open_file_store(platform.backup_root)
    run_backup(platform.data_store, backups, TENANT, now=datetime.now(UTC) - timedelta(hours=1))
    result = materialize(platform, instance)
    assert result.success
    checks = evaluations(result)
    assert checks["security_scan_no_critical_failures"].passed
    assert checks["security_scan_scores_at_least_95"].passed
    metadata = result.asset_materializations_for_node("security_scan")[0].metadata
    assert metadata["passed"].value is True and metadata["score GDPR"].value == 100.0
    stored = clean_tenant.read_json(report_key(TODAY, "report.json"))
    assert stored["passed"] and stored["date"] == TODAY and stored["tenant"] == TENANT


def test_a_card_number_in_a_clean_output_fails_the_check_with_error(platform, clean_tenant, instance):
    key = output_key("listening_events", DATE)
    events = clean_tenant.read_parquet(key)
    events.loc[0, "track_name"] = "paid with 4111 1111 1111 1111"
    clean_tenant.write_parquet(events, key)
    result = materialize(platform, instance)
    assert result.success, "a failing check is reported, not raised"
    checks = evaluations(result)
    critical = checks["security_scan_no_critical_failures"]
    assert not critical.passed and critical.severity == dg.AssetCheckSeverity.ERROR
    assert "DATA-PII-CARD" in critical.metadata["critical_controls_failed"].value
    scores = checks["security_scan_scores_at_least_95"]
    assert not scores.passed and scores.severity == dg.AssetCheckSeverity.WARN
    assert "GDPR" in scores.metadata["below_threshold"].value
