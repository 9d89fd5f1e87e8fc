"""The observability assets, checks, sensors and logger load together into one code location."""

import subprocess
from pathlib import Path

import dagster as dg

from spotify_jobs.observability import assets as observability
from spotify_jobs.observability.loggers import build_json_lines_logger, json_lines_logger
from spotify_jobs.observability.sensors import audit_sensors, sensors
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import daily_partitions

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_with_observability_load(platform):
    defs = dg.Definitions(
        assets=observability.assets,
        asset_checks=observability.asset_checks,
        sensors=sensors,
        resources={"platform": platform},
        loggers={"console": dg.colored_console_logger, "json": build_json_lines_logger(["s3cr3t"])},
    )
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {s.name for s in repository.sensor_defs} == {
        "audit_started_sensor",
        "audit_success_sensor",
        "audit_failure_sensor",
        "audit_canceled_sensor",
        "platform_backlog_sensor",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors)
    assert len(audit_sensors) == 4
    report = defs.resolve_assets_def("platform_sla_report")
    assert report.partitions_def == daily_partitions
    assert report.group_names_by_key[report.key] == "observability"
    assert report.descriptions_by_key[report.key].startswith("SLA and utilisation")
    assert isinstance(platform, PlatformResource) and isinstance(json_lines_logger, dg.LoggerDefinition)


def test_install_script_finds_the_tools_installed():
    result = subprocess.run(
        [str(ROOT / "scripts" / "install-system-deps.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
