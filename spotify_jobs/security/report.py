"""The compliance report: control results, a score per framework, the trend against the previous scan,
rendered as JSON (machines) and Markdown (people) and stored per tenant and day.

A control fails when any object it was checked on fails it (risk findings do not fail it), passes when it
was checked and nothing failed, and does not apply when there was nothing to check it on. A framework's
score is passed / applicable over the controls that map to it: an auditor's view (does the control hold
for this tenant?), not a count of objects, which would let many clean files hide one privileged pod.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from spotify_jobs.security.controls import CONTROLS, FRAMEWORKS, REQUIREMENTS, Severity
from spotify_jobs.security.findings import Finding, Ledger, Status
from spotify_jobs.storage.tenant_storage import TenantStorage

REPORT_PREFIX = "reports/security"
REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
SCORE_WARN_THRESHOLD = 95.0
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_LISTED_RISKS = 10  # per control in the Markdown report; the JSON lists all


@dataclass(frozen=True)
class ControlResult:
    id: str
    status: str  # pass | fail | not_applicable
    objects_checked: int
    objects_failed: int
    reason: str = ""

    @property
    def control(self):
        return CONTROLS[self.id]

    def to_dict(self) -> dict:
        ctl = self.control
        return {
            "id": self.id,
            "title": ctl.title,
            "profile": ctl.profile.value,
            "severity": ctl.severity.value,
            "status": self.status,
            "objects_checked": self.objects_checked,
            "objects_failed": self.objects_failed,
            "reason": self.reason,
            "frameworks": {name: list(ids) for name, ids in ctl.frameworks.items()},
        }


def requirement_order(requirement: str) -> list:
    """Sort key that puts A.8.2 before A.8.11 and 164.312(a)(1) before 164.312(c)(1)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", requirement)]


def evaluate_controls(ledger: Ledger) -> list[ControlResult]:
    """The status of every control in the catalogue, from what the ledger checked and found."""
    failed_objects: dict[str, set] = {}
    for finding in ledger.findings:
        if finding.status is Status.FAIL and finding.control in CONTROLS:
            failed_objects.setdefault(finding.control, set()).add(finding.object)
    results = []
    for control_id in CONTROLS:
        checked = ledger.checked.get(control_id, set())
        failed = failed_objects.get(control_id, set())
        if failed:
            results.append(ControlResult(control_id, "fail", len(checked), len(failed)))
        elif checked:
            results.append(ControlResult(control_id, "pass", len(checked), 0))
        else:
            reason = ledger.not_applicable.get(control_id, "nothing to check it on")
            results.append(ControlResult(control_id, "not_applicable", 0, 0, reason))
    return results


def framework_scores(results: list[ControlResult]) -> dict[str, dict]:
    """Per framework: passed / applicable controls (as a percentage) and what failed."""
    scores = {}
    for framework, name in FRAMEWORKS.items():
        mapped = [r for r in results if framework in r.control.frameworks]
        applicable = [r for r in mapped if r.status != "not_applicable"]
        passed = [r for r in applicable if r.status == "pass"]
        failed = [r for r in applicable if r.status == "fail"]
        scores[framework] = {
            "name": name,
            "score": round(100.0 * len(passed) / len(applicable), 1) if applicable else None,
            "passed": len(passed),
            "applicable": len(applicable),
            "failed_controls": [r.id for r in failed],
            "requirements_failed": sorted(
                {req for r in failed for req in r.control.frameworks[framework]}, key=requirement_order
            ),
        }
    return scores


def trend_against(current: dict, previous: dict | None) -> dict | None:
    """Score deltas and new / resolved failing findings against the previous stored report."""
    if not previous:
        return None

    def failing(report: dict) -> set[str]:
        return {
            f"{f['control']}|{f['object']['kind']}/{f['object']['namespace']}/{f['object']['name']}|{f['field']}"
            for f in report.get("findings", [])
            if f.get("status") == Status.FAIL.value
        }

    now, before = failing(current), failing(previous)
    scores = {}
    for framework, entry in current["scores"].items():
        old = (previous.get("scores") or {}).get(framework, {}).get("score")
        new = entry["score"]
        delta = round(new - old, 1) if new is not None and old is not None else None
        scores[framework] = {"previous": old, "current": new, "delta": delta}
    return {
        "previous_date": previous.get("date"),
        "previous_scanned_at": previous.get("scanned_at"),
        "scores": scores,
        "new_findings": sorted(now - before),
        "resolved_findings": sorted(before - now),
    }


@dataclass
class ScanReport:
    tenant: str
    date: str
    scanned_at: str
    environment: str
    findings: list[Finding]
    controls: list[ControlResult]
    scores: dict[str, dict]
    coverage: dict = field(default_factory=dict)
    method: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    trend: dict | None = None

    @property
    def critical_failures(self) -> list[ControlResult]:
        """Failed controls of critical severity: these fail the asset check and the CLI's exit code."""
        return [r for r in self.controls if r.status == "fail" and r.control.severity is Severity.CRITICAL]

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    @property
    def lowest_score(self) -> float | None:
        values = [s["score"] for s in self.scores.values() if s["score"] is not None]
        return min(values) if values else None

    def to_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "date": self.date,
            "scanned_at": self.scanned_at,
            "environment": self.environment,
            "passed": self.passed,
            "critical_failures": [r.id for r in self.critical_failures],
            "scores": self.scores,
            "findings": [f.to_dict() for f in self.findings],
            "controls": [r.to_dict() for r in self.controls],
            "coverage": self.coverage,
            "method": self.method,
            "notes": self.notes,
            "trend": self.trend,
        }

    def to_markdown(self) -> str:
        return render_markdown(self)


def build_report(
    ledger: Ledger,
    *,
    tenant: str,
    date: str,
    scanned_at: str,
    environment: str,
    coverage: dict | None = None,
    method: dict | None = None,
    previous: dict | None = None,
) -> ScanReport:
    """Evaluate the ledger into a report; `previous` (a stored report's JSON) gives the trend."""
    controls = evaluate_controls(ledger)
    findings = sorted(
        ledger.findings,
        key=lambda f: (f.status is not Status.FAIL, f.severity.rank, f.control, str(f.object), f.field),
    )
    report = ScanReport(
        tenant=tenant,
        date=date,
        scanned_at=scanned_at,
        environment=environment,
        findings=findings,
        controls=controls,
        scores=framework_scores(controls),
        coverage=coverage or {},
        method=method or {},
        notes=list(ledger.notes),
    )
    report.trend = trend_against(report.to_dict(), previous)
    return report


def report_key(date: str, name: str) -> str:
    return f"{REPORT_PREFIX}/{date}/{name}"


def previous_report(storage: TenantStorage, date: str) -> dict | None:
    """The newest stored report of a day before `date` (None if there is none)."""
    dates = set()
    for info in storage.list(REPORT_PREFIX):
        parts = info.key.split("/")
        if len(parts) == 4 and parts[3] == REPORT_JSON and _DATE_DIR.match(parts[2]) and parts[2] < date:
            dates.add(parts[2])
    if not dates:
        return None
    return storage.read_json(report_key(max(dates), REPORT_JSON))


def store_report(storage: TenantStorage, report: ScanReport) -> dict[str, str]:
    """Write the report's JSON and Markdown under `reports/security/<date>/`; returns their URIs."""
    return {
        "json": storage.write_json(report.to_dict(), report_key(report.date, REPORT_JSON)),
        "markdown": storage.write_bytes(
            report.to_markdown().encode(), report_key(report.date, REPORT_MARKDOWN)
        ),
    }


# ---------------------------------------------------------------------------------------------- markdown


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _requirements(frameworks: dict) -> str:
    return "; ".join(f"{name} {', '.join(ids)}" for name, ids in frameworks.items())


def _score_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _trend_text(report: ScanReport, framework: str) -> str:
    if not report.trend:
        return "first scan"
    delta = report.trend["scores"].get(framework, {}).get("delta")
    if delta is None:
        return "n/a"
    if delta == 0:
        return "= no change"
    return f"{'▲' if delta > 0 else '▼'} {delta:+.1f} pts"


def render_markdown(report: ScanReport) -> str:
    """The report for people: verdict, scores, failed controls, findings, risks, all controls, coverage."""
    out: list[str] = []
    verdict = "PASS" if report.passed else "FAIL"
    failing = [r for r in report.controls if r.status == "fail"]
    out.append(f"# Security and compliance report: {report.tenant}, {report.date}")
    out.append("")
    out.append(f"Scanned {report.scanned_at} in {report.environment}. **{verdict}**: "
               f"{len(failing)} failed control{'' if len(failing) == 1 else 's'}, "
               f"{len(report.critical_failures)} of them critical; "
               f"lowest framework score {_score_text(report.lowest_score)} "
               f"(warning below {SCORE_WARN_THRESHOLD:.0f} %).")  # fmt: skip
    if report.trend:
        new, resolved = len(report.trend["new_findings"]), len(report.trend["resolved_findings"])
        out.append(f"Against the scan of {report.trend['previous_date']}: {new} new and {resolved} resolved "
                   "failing findings.")  # fmt: skip
    out += ["", "## Scores", "", "| Framework | Score | Passed / applicable | Trend | Requirements failed |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for framework, entry in report.scores.items():
        out.append(f"| {entry['name']} | {_score_text(entry['score'])} | {entry['passed']} / {entry['applicable']} "
                   f"| {_trend_text(report, framework)} | {', '.join(entry['requirements_failed']) or '-'} |")  # fmt: skip

    out += ["", "## Failed controls", ""]
    if failing:
        out += [
            "| Control | Severity | Objects failed / checked | Requirements |",
            "| --- | --- | --- | --- |",
        ]
        for r in sorted(failing, key=lambda r: (r.control.severity.rank, r.id)):
            out.append(f"| {r.id}: {_cell(r.control.title)} | {r.control.severity.value} | "
                       f"{r.objects_failed} / {r.objects_checked} | {_cell(_requirements(r.control.frameworks))} |")  # fmt: skip
    else:
        out.append("None.")

    fails = [f for f in report.findings if f.status is Status.FAIL and f.control in CONTROLS]
    out += ["", "## Findings", ""]
    if not fails:
        out.append("No failing findings.")
    for f in fails:
        out.append(f"- **{f.control}** ({f.severity.value}) `{_cell(f.object)}` `{f.field}`: {f.message}. "
                   f"Fix: {f.remediation}")  # fmt: skip
    external = [f for f in report.findings if f.control not in CONTROLS]
    if external:
        out += ["", "## Additional findings (not mapped, not scored)", ""]
        out += [
            f"- {f.source} **{f.control}** `{_cell(f.object)}` `{f.field}`: {f.message}" for f in external
        ]

    risks = [f for f in report.findings if f.status is Status.RISK]
    out += ["", "## Risks (reported, not failures)", ""]
    if not risks:
        out.append("None.")
    else:
        by_control = Counter(f.control for f in risks)
        out.append("Raw landing files hold the exports as delivered, personal data included, until the ETL "
                   "pseudonymises them: what is found there is risk, not a control failure.")  # fmt: skip
        out.append("")
        for control_id, total in sorted(by_control.items()):
            listed = [f for f in risks if f.control == control_id][:MAX_LISTED_RISKS]
            out.append(f"- **{control_id}**: {total} file/field findings"
                       + (f" (first {len(listed)} below)" if total > len(listed) else ""))  # fmt: skip
            out += [f"  - `{_cell(f.object.name)}` `{f.field}`: {f.message}" for f in listed]

    out += ["", "## All controls", "", "| Control | Profile | Severity | Status | Objects checked |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in report.controls:
        status = r.status if r.status != "not_applicable" else f"n/a ({_cell(r.reason)})"
        out.append(
            f"| {r.id} | {r.control.profile.value} | {r.control.severity.value} | {status} | {r.objects_checked} |"
        )

    out += ["", "## Requirements referenced", ""]
    for framework, name in FRAMEWORKS.items():
        cited = sorted(
            {req for r in report.controls for req in r.control.frameworks.get(framework, ())},
            key=requirement_order,
        )
        out.append(f"- {name}: " + "; ".join(f"{req} {REQUIREMENTS[framework][req]}" for req in cited))

    if report.coverage:
        cov = report.coverage
        out += ["", "## Coverage", ""]
        for key, value in cov.items():
            if isinstance(value, list):
                out.append(
                    f"- {key}: {len(value)}" + ("" if not value else f" ({'; '.join(map(str, value[:5]))})")
                )
            else:
                out.append(f"- {key}: {value}")
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {_cell(note)}" for note in report.notes]
    if report.method:
        out += ["", "## Method", ""] + [f"- {key}: {value}" for key, value in report.method.items()]
    return "\n".join(out) + "\n"


def restricted_profile_findings(findings: list[Finding]) -> list[Finding]:
    """Findings of the Pod Security Standards controls (the restricted profile includes baseline)."""
    return [f for f in findings if f.control in CONTROLS and CONTROLS[f.control].pod_security_standard]
