"""deploy/monitoring: rules pass promtool, match targets.py, and use only metrics and labels the platform pushes."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from spotify_jobs.observability.metrics import (
    LABELS,
    MetricLabels,
    Reservation,
    backlog_registry,
    run_registry,
    step_registry,
)
from spotify_jobs.observability.targets import (
    CPU_UTILISATION_LIMIT,
    ERROR_RATE_LIMIT,
    MEMORY_UTILISATION_LIMIT,
    P95_DURATION_SLA_SECONDS,
    SUCCESS_RATE_TARGET,
)
from spotify_jobs.observability.usage import StepUsage

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "alert-rules.yaml"
RULE_TESTS = MONITORING / "alert-rules.test.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
_NAME = re.compile(r"\b(spotify_jobs[a-zA-Z0-9_:]*|push_time_seconds)\b")
GROUPING_LABELS = {"job", "instance", "run_id", "step", "attempt"}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed; run scripts/install-system-deps.sh (Debian package prometheus)"
        )
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=MONITORING, timeout=60)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _alert(name: str) -> str:
    return next(rule["expr"] for rule in _rules() if rule.get("alert") == name)


def _pushed_families() -> dict[str, set[str]]:
    """Sample name -> label names, for every series the platform pushes."""
    labels = MetricLabels("t", "data-etl", "small", "low", "success")
    usage = StepUsage(10.0, 5.0, 2**20, 1.0, 0, 3, 4, "success", end_timestamp=1.0)
    registries = [
        step_registry(usage, labels, Reservation(0.25, 512 * 2**20), asset="a"),
        run_registry(labels, 12.0, 1.0, "etl_job"),
        backlog_registry({"t": 1}, {"t": 0}),
    ]
    families: dict[str, set[str]] = {}
    for registry in registries:
        for family in registry.collect():
            for sample in family.samples:
                families.setdefault(sample.name, set()).update(sample.labels)
    families["push_time_seconds"] = set()
    return families


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def test_promtool_check_rules_passes():
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = _promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_passes():
    result = _promtool("check", "config", "prometheus.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_thresholds_are_the_targets():
    assert (
        float(re.search(r"< ([\d.]+)$", _alert("SpotifyJobsSuccessRateBelowTarget")).group(1))
        == SUCCESS_RATE_TARGET
    )
    assert (
        float(re.search(r">= ([\d.]+)$", _alert("SpotifyJobsErrorRateAtOrAboveLimit")).group(1))
        == ERROR_RATE_LIMIT
    )
    assert (
        float(re.search(r"> ([\d.]+)$", _alert("SpotifyJobsCpuUtilisationHigh")).group(1))
        == CPU_UTILISATION_LIMIT
    )
    assert (
        float(re.search(r"> ([\d.]+)$", _alert("SpotifyJobsMemoryUtilisationHigh")).group(1))
        == MEMORY_UTILISATION_LIMIT
    )
    slas = dict(re.findall(r'job_type="([a-z-]+)"\} > (\d+)', _alert("SpotifyJobsP95DurationOverSla")))
    assert {job: int(seconds) for job, seconds in slas.items()} == {
        job_type.value: seconds for job_type, seconds in P95_DURATION_SLA_SECONDS.items()
    }


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_rules_and_dashboard_use_only_pushed_or_recorded_metrics():
    known = set(_pushed_families()) | _recorded()
    exprs = [rule["expr"] for rule in _rules()] + _dashboard_exprs()
    used = {
        name for expr in exprs for name in _NAME.findall(re.sub(r'"[^"]*"', '""', expr))
    }  # not in strings
    assert used - known == set()
    # the rules read the metrics the issue asks for
    assert {
        "spotify_jobs_runs_total",
        "spotify_jobs_run_duration_seconds_bucket",
        "push_time_seconds",
    } <= used


def test_rule_test_series_look_like_what_the_platform_pushes():
    families = _pushed_families()
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for case in tests:
        for item in case["input_series"]:
            name, _, label_text = item["series"].partition("{")
            if name == "up":
                continue
            assert name in families, name
            labels = set(re.findall(r"([a-z_]+)=", label_text))
            assert labels - families[name] - GROUPING_LABELS == set(), (name, labels)
    assert set(LABELS) <= families["spotify_jobs_runs_total"]


def test_dashboard_queries_are_valid_promql(tmp_path):
    exprs = [expr.replace("$tenant", ".*") for expr in _dashboard_exprs()]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_has_the_panels_the_issue_asks_for():
    titles = [panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    for wanted in (
        "by outcome",
        "p50 / p95",
        "CPU used / reserved",
        "Peak memory / reserved",
        "Backlog per tenant",
    ):
        assert any(wanted in title for title in titles), wanted
