"""Operator verbs that look at the platform rather than one run: check-cluster, health-check,
resource-optimization and performance-test."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from spotify_jobs.automation.cluster import DEFAULT_TIMEOUT_SECONDS, check_cluster
from spotify_jobs.automation.health import (
    HEARTBEAT_TOLERANCE_SECONDS,
    check_daemons,
    check_instance_storage,
    check_pushgateway,
    check_store,
)
from spotify_jobs.automation.rightsizing import recommend
from spotify_jobs.automation.runs import format_table
from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.cli.ops import dagster_home_instance
from spotify_jobs.observability.sla import metered_steps
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry

BENCHMARKS_DIR = Path("benchmarks")
MAIN_GUARD = 'if __name__ == "__main__":'


@click.command("check-cluster")
@click.option("--context", default=None, help="Kube context (default: the current one).")
@click.option("--kubeconfig", default=None, help="Kubeconfig file (default: KUBECONFIG or ~/.kube/config).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT_SECONDS, show_default=True)
@fail_on_bad_input
def check_cluster_command(context: str | None, kubeconfig: str | None, timeout: float) -> None:
    """Whether a Kubernetes API server is reachable through the kube context, its version, and whether
    NAMESPACE exists. One JSON line; exit 1, with the reason, when it is not reachable."""
    settings = load_settings()
    result = check_cluster(settings.namespace, context=context, config_file=kubeconfig, timeout=timeout)
    click.echo(json.dumps(result.as_dict()))
    if not result.reachable:
        click.echo(f"cluster not reachable: {result.problem}", err=True)
        raise SystemExit(1)


@click.command("health-check")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per check instead of the table.")
@click.option(
    "--heartbeat-tolerance",
    type=click.FloatRange(min=1),
    default=HEARTBEAT_TOLERANCE_SECONDS,
    show_default=True,
)
@fail_on_bad_input
def health_check(as_json: bool, heartbeat_tolerance: float) -> None:
    """Instance storage, daemon heartbeats, data and backup stores, Pushgateway; exit 1 if any check failed."""
    settings = load_settings()
    platform = PlatformResource.from_settings(settings)
    with dagster_home_instance() as instance:
        checks = [
            check_instance_storage(instance),
            check_daemons(instance, heartbeat_tolerance),
            check_store("data store", platform.data_store),
            check_store("backup store", platform.backup_store),
            check_pushgateway(settings.pushgateway_url),
        ]
    if as_json:
        for check in checks:
            click.echo(json.dumps(check.__dict__))
    else:
        click.echo(format_table(checks, ("check", "status", "detail")))
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@click.command("resource-optimization")
@click.option(
    "--days", type=click.IntRange(min=1), default=30, show_default=True, help="Window of past runs."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per tenant and job type.")
@fail_on_bad_input
def resource_optimization(days: int, as_json: bool) -> None:
    """Recommend a tier per tenant and job type from the CPU and peak memory its steps used (metered in the
    instance): the smallest tier keeping p95 use under 80 % CPU / 85 % memory."""
    settings = load_settings()
    registry = load_registry(settings.tenant_registry)
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    with dagster_home_instance() as instance:
        steps = metered_steps(instance, since, until)
    rows = recommend(steps, registry)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_dict()))
    elif rows:
        columns = ("tenant", "job_type", "steps", "current_tier", "p95_cpu_cores", "p95_peak_memory_mib",
                   "recommended_tier", "action")  # fmt: skip
        click.echo(format_table(rows, columns))
    else:
        click.echo(f"no metered steps in the last {days} days: run some jobs first")


@click.command("performance-test")
@click.option("--only", "names", multiple=True, help="Benchmark script name(s) without .py (default: all).")
@click.option(
    "--benchmarks-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=BENCHMARKS_DIR,
    show_default=True,
)
@click.option("--timeout", type=click.IntRange(min=1), default=1800, show_default=True, help="Per benchmark.")
@fail_on_bad_input
def performance_test(names: tuple[str, ...], benchmarks_dir: Path, timeout: int) -> None:
    """Run the benchmarks (each prints one JSON line) with this Python; one JSON line per benchmark with
    its result and wall time. Exit 1 when a benchmark failed."""
    # benchmarks are the scripts; modules they share (no __main__ guard) are not run
    scripts = sorted(p for p in benchmarks_dir.glob("*.py") if MAIN_GUARD in p.read_text())
    if names:
        known = {script.stem: script for script in scripts}
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise click.UsageError(
                f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}"
            )
        scripts = [known[name] for name in names]
    if not scripts:
        raise click.UsageError(f"no benchmark scripts in {benchmarks_dir}")
    failed = []
    for script in scripts:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout
            )
            lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
            result = json.loads(lines[-1]) if lines else None
            error = (
                None
                if done.returncode == 0 and result is not None
                else (done.stderr.strip()[-500:] or "printed no JSON line")
            )
        except subprocess.TimeoutExpired:
            result, error = None, f"timed out after {timeout}s"
        except json.JSONDecodeError as exc:
            result, error = None, f"last line is not JSON: {exc}"
        line = {
            "benchmark": script.stem,
            "ok": error is None,
            "seconds": round(time.perf_counter() - started, 2),
        }
        line.update({"result": result} if error is None else {"error": error})
        click.echo(json.dumps(line))
        if error is not None:
            failed.append(script.stem)
    if failed:
        raise SystemExit(1)


commands = [check_cluster_command, health_check, resource_optimization, performance_test]
