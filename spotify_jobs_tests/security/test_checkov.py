"""Protects the optional checkov pass: run from its own environment, its failed checks become extra
findings that no framework score or verdict counts. Skipped where no checkov executable is installed."""

from __future__ import annotations

import os
import shutil

import pytest

from spotify_jobs.security.findings import Ledger
from spotify_jobs.security.report import build_report
from spotify_jobs.security.scan import checkov_findings
from spotify_jobs_tests.security.helpers import restricted_pod_spec, workload

CHECKOV = os.environ.get("CHECKOV_BIN") or shutil.which("checkov")
NO_CHECKOV = "checkov is not installed (it is never a core dependency)"


@pytest.mark.skipif(not CHECKOV, reason=NO_CHECKOV)
def test_checkov_failed_checks_become_unscored_findings():
    spec = restricted_pod_spec()
    spec["containers"][0]["securityContext"]["privileged"] = True
    findings, note = checkov_findings([workload("Pod", spec, name="bad.pod")], CHECKOV)
    assert note.startswith(f"checkov ({CHECKOV}):")
    privileged = [f for f in findings if f.control == "CKV_K8S_16"]
    assert privileged, [f.control for f in findings]
    assert str(privileged[0].object) == "Pod/sj-dev-startup-042/bad.pod"
    assert privileged[0].source == "checkov" and privileged[0].frameworks == {}
    ledger = Ledger()
    for finding in findings:
        ledger.add_external(finding)
    report = build_report(
        ledger, tenant="startup-042", date="2026-11-20", scanned_at="t", environment="development"
    )
    assert report.passed and all(s["score"] is None for s in report.scores.values())
    assert "## Additional findings (not mapped, not scored)" in report.to_markdown()


def test_a_missing_checkov_executable_is_a_note_not_a_crash(tmp_path):
    findings, note = checkov_findings([workload()], str(tmp_path / "no-checkov"))
    assert findings == [] and "did not run" in note
