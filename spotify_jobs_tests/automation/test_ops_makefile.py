"""Protects ops.mk: every seed verb exists, passes only the seed variables that are set, requires JOB_NAME
and BACKUP_FILE where it needs them, and calls a `spotify-jobs` command that exists."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import click
import pytest

from spotify_jobs.cli import backup, observability, ops, ops_health, security
from spotify_jobs_tests.automation.conftest import REPO_ROOT

SEED_VERBS = (
    "check-cluster",
    "create-ml-job",
    "create-etl-job",
    "create-security-job",
    "create-billing-job",
    "create-backup-job",
    "create-tenant-jobs",
    "monitor-job",
    "list-jobs",
    "cancel-job",
    "health-check",
    "security-scan-all",
    "compliance-check",
    "backup-job-configs",
    "restore-job-configs",
    "performance-test",
    "performance-report",
    "resource-optimization",
    "offboard-tenant",
)
# What the Makefile provides before `include ops.mk`; the prerequisites exist as empty rules here.
HARNESS = f"""BIN := .venv/bin
INSTALLED := .venv/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
DRY_RUN ?= false
include {REPO_ROOT / "ops.mk"}
$(INSTALLED) $(DAGSTER_HOME)/dagster.yaml: ; @:
"""


def cli_commands() -> dict[str, click.Command]:
    named = {c.name: c for module in (ops, ops_health, backup, observability) for c in module.commands}
    named.update({c.name: c for c in vars(security).values() if isinstance(c, click.Command)})
    return named


@pytest.fixture
def make(tmp_path):
    if shutil.which("make") is None:
        pytest.fail("GNU make is needed to check ops.mk (Debian package `make`)")
    (tmp_path / "Makefile").write_text(HARNESS)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", "-n", *args], cwd=tmp_path, capture_output=True, text=True)

    return run


def command_line(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "spotify-jobs" in line]
    return shlex.split(line)[1:]


@pytest.mark.parametrize("verb", SEED_VERBS)
def test_every_seed_verb_calls_an_existing_command(make, verb):
    args = command_line(
        make(verb, "JOB_NAME=0123abcd", "BACKUP_FILE=configs.tar.gz", "TENANT_ID=startup-042")
    )
    command = cli_commands().get(args[0])
    assert command is not None, f"{verb} calls `spotify-jobs {args[0]}`, which no CLI module defines"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    flags = [a for a in args[1:] if a.startswith("--")]
    unknown = [f for f in flags if f not in options and not (isinstance(command, click.Group))]
    assert not unknown, f"{verb}: {args[0]} has no option {unknown}"


def test_create_passes_only_the_variables_that_are_set(make):
    assert command_line(make("create-etl-job")) == ["create-etl-job"]
    assert command_line(
        make(
            "create-ml-job",
            "TENANT_ID=enterprise-001",
            "PRIORITY=critical",
            "RESOURCE_TIER=xlarge",
            "DATE=2026-11-01",
        )
    ) == [
        "create-ml-job",
        "--tenant",
        "enterprise-001",
        "--priority",
        "critical",
        "--tier",
        "xlarge",
        "--date",
        "2026-11-01",
    ]


def test_filters_and_windows(make):
    assert command_line(make("list-jobs", "FILTER=queued", "TENANT_ID=startup-042")) == [
        "list-jobs",
        "--filter",
        "queued",
        "--tenant",
        "startup-042",
    ]
    assert command_line(make("performance-report", "HOURS=48")) == ["sla-report", "--hours", "48"]
    assert command_line(make("restore-job-configs", "BACKUP_FILE=a.tgz", "DRY_RUN=true"))[-1] == "--dry-run"


@pytest.mark.parametrize(("verb", "variable"), [("monitor-job", "JOB_NAME"), ("cancel-job", "JOB_NAME"),
                                                ("restore-job-configs", "BACKUP_FILE")])  # fmt: skip
def test_verbs_that_need_a_variable_say_so(make, verb, variable):
    result = make(verb)
    assert result.returncode != 0
    assert f"{variable} is required" in result.stderr
