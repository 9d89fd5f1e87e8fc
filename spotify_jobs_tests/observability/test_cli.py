"""`spotify-jobs audit` lists and verifies a tenant's trail; `sla-report` reports the instance's runs."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from click.testing import CliRunner

from spotify_jobs.cli.observability import audit, sla_report
from spotify_jobs.k8s.tags import JOB_TYPE_TAG, TENANT_TAG
from spotify_jobs.observability.audit import RECORDS_PREFIX, AuditTrail

TENANT = "startup-042"


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", str(root))
    return root


@pytest.fixture
def trail(data_root, platform):
    trail = AuditTrail(platform.tenant_storage(TENANT))
    for action in ("started", "backed-up", "offboarded"):
        trail.append(actor="cli:ops", action=action, subject="tenant_backup_job", run_id=f"run-{action}")
    return trail


def test_audit_lists_records_as_json_lines(trail):
    result = CliRunner().invoke(audit, ["--tenant", TENANT])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["seq"], r["action"]) for r in lines] == [(0, "started"), (1, "backed-up"), (2, "offboarded")]
    newest = CliRunner().invoke(audit, ["--tenant", TENANT, "--limit", "1"])
    assert [json.loads(line)["action"] for line in newest.output.splitlines()] == ["offboarded"]


def test_audit_verify_passes_then_fails_after_an_edit(trail):
    ok = CliRunner().invoke(audit, ["--tenant", TENANT, "--verify"])
    assert ok.exit_code == 0
    report = json.loads(ok.output)
    assert (report["ok"], report["records"], report["problems"]) == (True, 3, [])

    key = f"{RECORDS_PREFIX}/{1:012d}.json"
    raw = json.loads(trail.storage.read_bytes(key))
    raw["action"] = "restored"
    trail.storage.write_bytes(json.dumps(raw).encode(), key)
    broken = CliRunner().invoke(audit, ["--tenant", TENANT, "--verify"])
    assert broken.exit_code == 1
    report = json.loads(broken.output)
    assert report["ok"] is False and report["problems"] == [
        "record 1 was modified: its content does not match its hash"
    ]


def test_audit_refuses_a_malformed_tenant_id(data_root):
    result = CliRunner().invoke(audit, ["--tenant", "../other-tenant"])
    assert result.exit_code == 2 and "is not a DNS-1123 label" in result.output


@dg.asset
def cli_sla_asset(context: dg.AssetExecutionContext) -> None:
    """Fails when the run asks it to."""
    if context.run.tags.get("test/fail") == "yes":
        raise RuntimeError("failed on purpose")


def test_sla_report_prints_the_table_and_json_and_fails_on_breach(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tags = {TENANT_TAG: TENANT, JOB_TYPE_TAG: "billing-report"}
        dg.materialize([cli_sla_asset], instance=instance, tags=tags)
        dg.materialize(
            [cli_sla_asset], instance=instance, tags={**tags, "test/fail": "yes"}, raise_on_error=False
        )
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

        table = CliRunner().invoke(sla_report, ["--since", since])
        assert table.exit_code == 0, table.output
        assert "billing-report  startup-042  2" in table.output
        assert "BREACH billing-report/startup-042: success rate 50.00% < 99.50%" in table.output

        as_json = CliRunner().invoke(sla_report, ["--json", "--hours", "1"])
        payload = json.loads(as_json.output)
        total = next(r for r in payload["rows"] if r["job_type"] == "*" and r["tenant"] == "*")
        assert (total["runs"], total["succeeded"], total["failed"]) == (2, 1, 1)

        assert CliRunner().invoke(sla_report, ["--fail-on-breach"]).exit_code == 1
        bad = CliRunner().invoke(sla_report, ["--since", "yesterday"])
        assert bad.exit_code == 2 and "is not an ISO date" in bad.output


def test_sla_report_needs_dagster_home(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(sla_report, [])
    assert result.exit_code == 2 and "DAGSTER_HOME" in result.output
