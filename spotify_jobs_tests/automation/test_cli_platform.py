"""Protects the platform verbs: check-cluster against a local API server stand-in (reachable, missing
context, refused), health-check's four checks (daemon heartbeats, stores, Pushgateway), tier
recommendations from metered runs, and the benchmark runner."""

from __future__ import annotations

import time

import pytest
import yaml
from dagster._daemon.types import DaemonHeartbeat

from spotify_jobs.automation.rightsizing import recommend, smallest_fitting_tier
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.observability.sla import StepFact
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs_tests.automation.conftest import cli, json_lines
from spotify_jobs_tests.automation.location import TEST_JOBS, build_test_definitions

VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.2",
    "gitCommit": "abc",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def kubeconfig(tmp_path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "users": [{"name": "ops", "user": {"token": "test-token"}}],
                "contexts": [{"name": "local-ctx", "context": {"cluster": "local", "user": "ops"}}],
                "current-context": "local-ctx",
            }
        )
    )
    return str(path)


def test_check_cluster_reports_a_reachable_api_server(env, tmp_path, http_receiver):
    http_receiver.respond("/version", 200, VERSION)
    namespace = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "spotify-ai-agent-dev"}}
    http_receiver.respond("/api/v1/namespaces/spotify-ai-agent-dev", 200, namespace)
    env.setenv("KUBECONFIG", kubeconfig(tmp_path, http_receiver.url))

    result = cli("check-cluster")

    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    assert line["reachable"] is True
    assert (line["context"], line["version"], line["namespace_exists"]) == ("local-ctx", "v1.30.2", True)
    assert http_receiver.to("/version")[0].headers["Authorization"] == "Bearer test-token"


def test_check_cluster_says_when_the_namespace_is_missing(env, tmp_path, http_receiver):
    http_receiver.respond("/version", 200, VERSION)
    env.setenv("KUBECONFIG", kubeconfig(tmp_path, http_receiver.url))
    [line] = json_lines(cli("check-cluster"))
    assert line["reachable"] is True and line["namespace_exists"] is False


def test_check_cluster_without_a_context_says_so(env, tmp_path):
    env.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    result = cli("check-cluster")
    assert result.exit_code == 1
    assert "no Kubernetes context" in result.stderr and "KUBECONFIG" in result.stderr


def test_check_cluster_with_an_unreachable_server_says_so(env, tmp_path):
    env.setenv("KUBECONFIG", kubeconfig(tmp_path, "http://127.0.0.1:9"))
    result = cli("check-cluster", "--timeout", "2")
    assert result.exit_code == 1
    assert "API server http://127.0.0.1:9 is not reachable" in result.stderr


def beat(instance) -> None:
    """What a running `dagster-daemon` does for each of its daemons."""
    for daemon_type in instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), daemon_type, "test-daemon", errors=[]))


def checks(result) -> dict[str, dict]:
    return {line["check"]: line for line in json_lines(result)}


def test_health_check_fails_without_a_daemon_and_passes_with_one(home_instance):
    down = cli("health-check", "--json")
    assert down.exit_code == 1
    found = checks(down)
    assert found["daemon heartbeat"]["status"] == "fail"
    assert "no heartbeat from" in found["daemon heartbeat"]["detail"]
    assert "QUEUED_RUN_COORDINATOR" in found["daemon heartbeat"]["detail"]
    assert found["instance storage"]["status"] == "ok"
    assert found["data store"]["status"] == found["backup store"]["status"] == "ok"
    assert found["pushgateway"]["status"] == "skip"

    beat(home_instance)
    up = cli("health-check")
    assert up.exit_code == 0, up.output
    assert up.stdout.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]


def test_health_check_probes_the_pushgateway(home_instance, env, http_receiver):
    beat(home_instance)
    env.setenv("SPOTIFY_JOBS_PUSHGATEWAY_URL", http_receiver.url)
    http_receiver.respond("/-/healthy", 200, "OK")
    assert checks(cli("health-check", "--json"))["pushgateway"]["status"] == "ok"

    http_receiver.respond("/-/healthy", 503, "down")
    result = cli("health-check", "--json")
    assert result.exit_code == 1
    assert "HTTP 503" in checks(result)["pushgateway"]["detail"]


def test_health_check_fails_when_the_data_store_cannot_be_written(home_instance, env, tmp_path):
    beat(home_instance)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data root should be")
    env.setenv("SPOTIFY_JOBS_DATA_ROOT", str(blocker / "data"))
    result = cli("health-check", "--json")
    assert result.exit_code == 1
    assert checks(result)["data store"]["status"] == "fail"


def step(
    cores: float, memory_mib: float, tier: str = "large", job_type: str = "data-etl", tenant: str = "t1"
):
    reserved = {"large": (2.0, 4096), "enterprise": (16.0, 32768), "small": (0.25, 512)}[tier]
    return StepFact(
        run_id="r",
        step_key="s",
        attempt=0,
        tenant=tenant,
        job_type=job_type,
        outcome="success",
        wall_seconds=100.0,
        cpu_seconds=100.0 * cores,
        peak_memory_bytes=int(memory_mib * 1024 * 1024),
        reserved_cpu_cores=reserved[0],
        reserved_memory_bytes=reserved[1] * 1024 * 1024,
        pushed=True,
    )


@pytest.mark.parametrize(
    ("cores", "memory_mib", "minimum", "expected"),
    [
        (0.05, 50, "micro", "micro"),
        (0.09, 50, "micro", "small"),  # 0.09 cores > 80 % of micro's 0.1
        (1.5, 3000, "micro", "large"),
        (1.5, 3600, "micro", "xlarge"),  # 3600 MiB > 85 % of large's 4 GiB
        (0.05, 50, "xlarge", "xlarge"),  # never below the job type's minimum
        (20.0, 1000, "micro", None),  # more than the largest tier allows
    ],
)
def test_smallest_fitting_tier(cores, memory_mib, minimum, expected):
    fit = smallest_fitting_tier(cores, memory_mib, minimum)
    assert (fit.name if fit else None) == expected


def test_recommendations_per_tenant_and_job_type():
    registry = load_registry()
    rows = {
        (r.tenant, r.job_type): r
        for r in recommend(
            [
                *(step(0.1, 200, "enterprise", tenant="enterprise-001") for _ in range(5)),
                step(1.9, 3900, "large", tenant="startup-042"),
                step(0.5, 1000, "large", "ml-training", "enterprise-001"),
            ],
            registry,
        )
    }
    etl = rows[("enterprise-001", "data-etl")]
    assert (etl.steps, etl.current_tier, etl.recommended_tier, etl.action) == (
        5,
        "enterprise",
        "small",
        "downsize",
    )
    assert rows[("startup-042", "data-etl")].action == "upsize"
    assert rows[("startup-042", "data-etl")].recommended_tier == "xlarge"
    assert rows[("enterprise-001", "ml-training")].recommended_tier == "xlarge"  # training's minimum


def test_resource_optimization_reads_metered_runs_from_the_instance(home_instance, tmp_path):
    settings = load_settings()
    factory = TenantJobFactory(settings, load_registry(settings.tenant_registry))
    defs = build_test_definitions(factory, PlatformResource.from_settings(settings))
    home_instance.add_dynamic_partitions(tenant_partitions.name, ["enterprise-001"])
    spec = TEST_JOBS[JobType.DATA_ETL]
    _config, tags = factory.run_parts(spec, "enterprise-001")
    for day in ("2026-11-01", "2026-11-02"):
        result = defs.resolve_job_def(spec.name).execute_in_process(
            instance=home_instance, partition_key=f"{day}|enterprise-001", tags=tags
        )
        assert result.success

    shown = cli("resource-optimization", "--json")

    assert shown.exit_code == 0, shown.output
    [row] = json_lines(shown)
    assert (row["tenant"], row["job_type"], row["steps"]) == ("enterprise-001", "data-etl", 2)
    assert row["current_tier"] == "enterprise"
    assert row["p95_peak_memory_mib"] > 32  # the stand-in asset holds a 32 MiB buffer
    assert row["action"] == "downsize"


def test_resource_optimization_with_no_runs_says_so(home_instance):
    result = cli("resource-optimization")
    assert result.exit_code == 0
    assert "no metered steps in the last 30 days" in result.stdout


def test_performance_test_runs_each_benchmark_and_reports_failures(env, tmp_path):
    benchmarks = tmp_path / "benchmarks"
    benchmarks.mkdir()
    main = 'if __name__ == "__main__":\n'
    (benchmarks / "fast.py").write_text(
        f'import json\n{main}    print("warm")\n    print(json.dumps({{"seconds": 0.01}}))\n'
    )
    (benchmarks / "broken.py").write_text(f'{main}    raise SystemExit("no data")\n')
    (benchmarks / "shared.py").write_text("VALUE = 1\n")  # a module the benchmarks import: not run

    both = cli("performance-test", "--benchmarks-dir", str(benchmarks))
    assert both.exit_code == 1
    lines = {line["benchmark"]: line for line in json_lines(both)}
    assert set(lines) == {"fast", "broken"}
    assert lines["fast"]["ok"] is True and lines["fast"]["result"] == {"seconds": 0.01}
    assert lines["broken"]["ok"] is False and "no data" in lines["broken"]["error"]

    assert cli("performance-test", "--benchmarks-dir", str(benchmarks), "--only", "fast").exit_code == 0
    unknown = cli("performance-test", "--benchmarks-dir", str(benchmarks), "--only", "nope")
    assert unknown.exit_code == 2 and "available: broken, fast" in unknown.output
