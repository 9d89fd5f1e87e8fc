"""Protects the compliance report: control statuses, per-framework scores, trend, storage and rendering."""

from __future__ import annotations

import json

import pytest

from spotify_jobs.security.controls import CONTROLS, FRAMEWORKS, GDPR, HIPAA, ISO, PCI, REQUIREMENTS, SOX
from spotify_jobs.security.findings import Ledger, ObjectRef, Status
from spotify_jobs.security.report import (
    build_report,
    evaluate_controls,
    previous_report,
    report_key,
    store_report,
)

JOB = ObjectRef("Job", "sj-dev-startup-042", "step-a")
FILE = ObjectRef("File", "startup-042", "assets/listening_events/date=2026-11-20.parquet")
LANDING = ObjectRef("File", "startup-042", "landing/2026-11-20/export-a/x.json")


def ledger_with(privileged_fails: bool = True, email_risk: bool = True) -> Ledger:
    ledger = Ledger()
    ledger.check("PSS-PRIVILEGED", JOB)
    if privileged_fails:
        ledger.fail(
            "PSS-PRIVILEGED",
            JOB,
            "spec.template.spec.containers[0].securityContext.privileged",
            "runs privileged",
        )
    ledger.check("DATA-PII-EMAIL", FILE)
    if email_risk:
        ledger.fail("DATA-PII-EMAIL", LANDING, "$[*].contact", "1 value", status=Status.RISK)
    ledger.skip("TEN-BACKUP-ENCRYPTED", "local backup root")
    return ledger


def report_of(ledger: Ledger, date: str = "2026-11-20", previous: dict | None = None):
    return build_report(ledger, tenant="startup-042", date=date, scanned_at=f"{date}T03:00:00+00:00",
                        environment="development", previous=previous)  # fmt: skip


def test_control_statuses_follow_checks_failures_and_risks():
    results = {r.id: r for r in evaluate_controls(ledger_with())}
    assert results["PSS-PRIVILEGED"].status == "fail" and results["PSS-PRIVILEGED"].objects_failed == 1
    assert results["DATA-PII-EMAIL"].status == "pass", "a landing-file risk does not fail the control"
    assert results["DATA-PII-EMAIL"].objects_checked == 2
    assert results["TEN-BACKUP-ENCRYPTED"].status == "not_applicable"
    assert results["TEN-BACKUP-ENCRYPTED"].reason == "local backup root"
    assert results["PSS-HOSTPATH"].status == "not_applicable"
    assert set(results) == set(CONTROLS)


def test_scores_are_passed_over_applicable_controls_of_each_framework():
    report = report_of(ledger_with())
    # Privileged maps to every framework and failed; the e-mail control maps to GDPR, HIPAA and ISO and passed.
    assert {name: (s["passed"], s["applicable"], s["score"]) for name, s in report.scores.items()} == {
        PCI: (0, 1, 0.0),
        SOX: (0, 1, 0.0),
        GDPR: (1, 2, 50.0),
        HIPAA: (1, 2, 50.0),
        ISO: (1, 2, 50.0),
    }
    assert report.scores[PCI]["failed_controls"] == ["PSS-PRIVILEGED"]
    assert report.scores[PCI]["requirements_failed"] == ["2.2.6", "7.2.5"]
    healthy = report_of(ledger_with(privileged_fails=False))
    assert all(s["score"] == 100.0 for s in healthy.scores.values())
    assert report_of(Ledger()).scores[PCI]["score"] is None


def test_a_critical_failure_fails_the_report():
    report = report_of(ledger_with())
    assert [r.id for r in report.critical_failures] == ["PSS-PRIVILEGED"] and not report.passed
    assert report_of(ledger_with(privileged_fails=False)).passed
    medium = Ledger()
    medium.fail("K8S-RESOURCE-LIMITS", JOB, "spec.template.spec.containers[0].resources.limits", "no limit")
    assert report_of(medium).passed, "only critical controls fail the verdict"


def test_trend_against_the_previous_scan():
    before = report_of(ledger_with(privileged_fails=False), date="2026-11-19").to_dict()
    after = report_of(ledger_with(), previous=before)
    assert after.trend["previous_date"] == "2026-11-19"
    assert after.trend["scores"][GDPR] == {"previous": 100.0, "current": 50.0, "delta": -50.0}
    assert after.trend["new_findings"] == [
        "PSS-PRIVILEGED|Job/sj-dev-startup-042/step-a|spec.template.spec.containers[0].securityContext.privileged"
    ]
    assert after.trend["resolved_findings"] == []
    fixed = report_of(ledger_with(privileged_fails=False), date="2026-11-21", previous=after.to_dict())
    assert len(fixed.trend["resolved_findings"]) == 1 and fixed.trend["scores"][PCI]["delta"] == 100.0


def test_reports_are_stored_per_day_and_the_previous_one_is_found(platform):
    storage = platform.tenant_storage("startup-042")
    for date in ("2026-11-18", "2026-11-19", "2026-11-21"):
        store_report(storage, report_of(ledger_with(), date=date))
    uris = store_report(storage, report_of(ledger_with(), date="2026-11-20"))
    assert uris["json"].endswith("tenants/startup-042/reports/security/2026-11-20/report.json")
    assert storage.read_bytes(report_key("2026-11-20", "report.md")).startswith(
        b"# Security and compliance report"
    )
    assert previous_report(storage, "2026-11-20")["date"] == "2026-11-19"
    assert previous_report(storage, "2026-11-18") is None
    stored = storage.read_json(report_key("2026-11-20", "report.json"))
    assert json.loads(json.dumps(stored)) == report_of(ledger_with(), date="2026-11-20").to_dict()


def test_markdown_is_readable_and_complete():
    ledger = ledger_with()
    ledger.fail("K8S-IMAGE-PINNED", JOB, "spec.template.spec.containers[0].image", "image 'a|b:latest'")
    markdown = report_of(ledger).to_markdown()
    assert markdown.startswith("# Security and compliance report: startup-042, 2026-11-20")
    assert "**FAIL**: 2 failed controls, 1 of them critical" in markdown
    for heading in ("## Scores", "## Failed controls", "## Findings", "## Risks", "## All controls",
                    "## Requirements referenced"):  # fmt: skip
        assert heading in markdown
    assert "| PCI DSS v4.0 | 0.0 % | 0 / 2 | first scan | 2.2.6, 6.5.1, 7.2.5 |" in markdown
    assert "| PSS-PRIVILEGED: Privileged containers are not allowed | critical | 1 / 1 |" in markdown
    assert "2.2.6 System security parameters are configured to prevent misuse" in markdown
    assert "A.8.9 Configuration management; A.8.11 Data masking" in markdown
    assert "| TEN-BACKUP-ENCRYPTED | isolation | high | n/a (local backup root) | 0 |" in markdown
    assert "- **DATA-PII-EMAIL**: 1 file/field findings" in markdown


@pytest.mark.parametrize("control_id", sorted(CONTROLS))
def test_every_control_maps_to_known_requirements_and_has_a_remediation(control_id):
    control = CONTROLS[control_id]
    assert control.frameworks and control.remediation
    for framework, ids in control.frameworks.items():
        assert framework in FRAMEWORKS
        assert set(ids) <= set(REQUIREMENTS[framework])


def test_every_cited_requirement_is_used_and_every_framework_scored():
    cited = {(fw, req) for c in CONTROLS.values() for fw, ids in c.frameworks.items() for req in ids}
    listed = {(fw, req) for fw, reqs in REQUIREMENTS.items() for req in reqs}
    assert cited == listed
