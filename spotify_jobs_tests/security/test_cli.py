"""Protects `security-scan` and `compliance-check`: JSON findings and scores, Markdown, exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from spotify_jobs.cli.security import compliance_check, security_scan
from spotify_jobs.etl.schema import output_key
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs_tests.security.helpers import DATE, TENANT, etl_tenant


@pytest.fixture
def env_platform(tmp_path, monkeypatch):
    """The platform the CLI will build from the environment, with a seeded critical violation."""
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SPOTIFY_JOBS_BACKUP_ROOT", str(tmp_path / "backups"))
    platform = PlatformResource.from_settings(load_settings())
    etl_tenant(platform, records=600)
    storage = platform.tenant_storage(TENANT)
    storage.write_bytes(
        b"contact,note\njane.doe@example.com,AKIAIOSFODNN7EXAMPLE\n",
        output_key("contacts", DATE)[:-8] + ".csv",
    )
    return platform


def test_security_scan_prints_findings_and_scores_and_exits_1_on_a_critical_control(env_platform):
    result = CliRunner().invoke(security_scan, ["--tenant", TENANT, "--date", DATE, "--checkov", ""])
    assert result.exit_code == 1, result.output
    [line] = result.stdout.strip().splitlines()
    report = json.loads(line)
    assert report["tenant"] == TENANT and not report["passed"]
    assert set(report["critical_failures"]) == {"DATA-PII-EMAIL", "DATA-SECRET"}
    assert set(report["scores"]) == {"PCI-DSS-4.0", "SOX-ITGC", "GDPR", "HIPAA", "ISO-27001-2022"}
    assert report["scores"]["GDPR"]["score"] < 100
    email = next(f for f in report["findings"] if f["control"] == "DATA-PII-EMAIL" and f["status"] == "fail")
    assert {"control", "severity", "object", "frameworks", "field", "remediation"} <= set(email)
    assert email["object"]["name"] == "assets/contacts/date=2026-11-20.csv"
    assert "Art. 5(1)(c)" in email["frameworks"]["GDPR"]
    assert env_platform.tenant_storage(TENANT).exists(f"reports/security/{DATE}/report.md")


def test_markdown_format_and_compliance_check_verdict(env_platform):
    markdown = CliRunner().invoke(security_scan, ["--tenant", TENANT, "--date", DATE, "--format", "markdown",
                                                  "--no-store", "--checkov", ""])  # fmt: skip
    assert markdown.exit_code == 1
    assert markdown.stdout.startswith(f"# Security and compliance report: {TENANT}, {DATE}")
    verdict = CliRunner().invoke(compliance_check, ["--tenant", TENANT, "--date", DATE, "--checkov", ""])
    assert verdict.exit_code == 1
    line = json.loads(verdict.stdout)
    assert line["passed"] is False and "DATA-SECRET" in line["critical_failures"]
    assert line["lowest_score"] == min(s for s in line["scores"].values() if s is not None)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        (security_scan, [], "give --tenant T"),
        (security_scan, ["--tenant", "no-such-tenant"], "unknown tenant 'no-such-tenant'"),
        (security_scan, ["--tenant", "Bad_Id"], "not a DNS-1123 label"),
        (compliance_check, ["--all", "--tenant", TENANT], "not both"),
        (compliance_check, ["--date", "2026-13-01"], "month must be in 1..12"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(tmp_path, monkeypatch, command, args, message):
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", str(tmp_path / "data"))
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2
    assert message in result.output
