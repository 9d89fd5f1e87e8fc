"""Fixtures of the automation tests: a test instance, the test code location, registries of any size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from dagster._core.test_utils import instance_for_test

from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs_tests.automation.location import build_test_definitions


def tenant_entry(tenant_id: str, **overrides) -> dict:
    """A registry entry; defaults to a small, normal-priority tenant without GPU."""
    entry = {
        "id": tenant_id,
        "display_name": f"Tenant {tenant_id}",
        "tier": "small",
        "priority": "normal",
        "max_concurrent_runs": 2,
        "quota": {"cpu": "4", "memory": "8Gi", "gpu": 0, "pods": 6, "jobs": 6},
    }
    entry.update(overrides)
    return entry


def write_registry(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"tenants": entries}))
    return path


@pytest.fixture(scope="module")
def module_instance():
    """A SQLite instance in a temp DAGSTER_HOME (schedule and sensor contexts need a persistent one)."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance(module_instance):
    """The module's instance, emptied: no runs, no events, no tenants partitions."""
    module_instance.wipe()
    for tenant in module_instance.get_dynamic_partitions(tenant_partitions.name):
        module_instance.delete_dynamic_partition(tenant_partitions.name, tenant)
    return module_instance


@pytest.fixture
def factory(settings) -> TenantJobFactory:
    return TenantJobFactory(settings, load_registry(settings.tenant_registry))


@pytest.fixture
def onboard(instance):
    """Add tenants' `tenants` partitions to the test instance."""

    def _onboard(*tenants: str) -> None:
        instance.add_dynamic_partitions(tenant_partitions.name, list(tenants))

    return _onboard


@pytest.fixture
def registry_settings(tmp_path):
    """Settings whose tenant registry is a file written by the test (tmp data root as well)."""

    def _settings(entries: list[dict]):
        registry = write_registry(tmp_path / "tenants.yaml", entries)
        return load_settings(
            data_root=str(tmp_path / "data"),
            backup_root=str(tmp_path / "backups"),
            tenant_registry=registry,
        )

    return _settings


@pytest.fixture
def test_defs(factory, platform):
    return build_test_definitions(factory, platform)


REPO_ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = str(REPO_ROOT / "workspace.yaml")


def ops_cli() -> click.Group:
    """The operator verbs as the `spotify-jobs` group registers them."""
    from spotify_jobs.cli import ops, ops_health

    return click.Group(commands={c.name: c for c in [*ops.commands, *ops_health.commands]})


def cli(*args: str, workspace: bool = False):
    """Invoke a verb in-process (the repo's workspace.yaml when it submits runs)."""
    argv = [*args, "--workspace", WORKSPACE] if workspace else list(args)
    return CliRunner().invoke(ops_cli(), argv)


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory):
    """A DAGSTER_HOME holding the repo's dagster.yaml (one per test module)."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.fixture
def env(dagster_home, tmp_path, monkeypatch):
    """The environment `make` gives the CLI, pointed at temp directories; the instance emptied."""
    for name in (
        "TENANT_ID",
        "PRIORITY",
        "RESOURCE_TIER",
        "SPOTIFY_JOBS_PUSHGATEWAY_URL",
        "KUBERNETES_SERVICE_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("PARALLEL_JOBS", "4")
    monkeypatch.setenv("DRY_RUN", "false")
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SPOTIFY_JOBS_BACKUP_ROOT", str(tmp_path / "backups"))
    with dg.DagsterInstance.get() as instance:
        instance.wipe()
        instance.wipe_daemon_heartbeats()
        for tenant in instance.get_dynamic_partitions(tenant_partitions.name):
            instance.delete_dynamic_partition(tenant_partitions.name, tenant)
    return monkeypatch


@pytest.fixture
def home_instance(env):
    """The instance of the CLI's DAGSTER_HOME."""
    with dg.DagsterInstance.get() as instance:
        yield instance
