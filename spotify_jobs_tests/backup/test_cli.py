"""Protects `spotify-jobs backup run|list|restore` and `backup-configs`/`restore-configs`: one JSON line each,
exit 1 on refusal or failed verification, exit 2 on bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.store import LocalFileStore
from spotify_jobs.cli.backup import backup, backup_configs_command, restore_configs_command
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.tenancy.registry import DEFAULT_REGISTRY_PATH
from spotify_jobs_tests.backup.helpers import seed_tenant, tenant_files

TENANT = "enterprise-001"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SPOTIFY_JOBS_BACKUP_ROOT", str(tmp_path / "backups"))
    monkeypatch.setenv("SPOTIFY_JOBS_TENANT_REGISTRY", str(DEFAULT_REGISTRY_PATH))
    return tmp_path


def _json_line(result) -> dict:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return json.loads(lines[0])


def test_run_list_and_restore(env):
    files = seed_tenant(LocalObjectStore(env / "data"), TENANT)
    runner = CliRunner()
    first = runner.invoke(backup, ["run", "--tenant", TENANT])
    assert first.exit_code == 0, first.output
    made = _json_line(first)
    assert {"backup_id", "files", "bytes_uploaded", "bytes_deduplicated", "seconds"} <= made.keys()
    assert made["files"] == len(files) and made["bytes_uploaded"] > 0
    second = _json_line(runner.invoke(backup, ["run", "--tenant", TENANT]))
    assert second["bytes_uploaded"] == 0

    assert second["retention"]["deleted"] == [made["backup_id"]]  # one daily backup per day is kept
    listed = _json_line(runner.invoke(backup, ["list", "--tenant", TENANT]))
    assert [b["backup_id"] for b in listed["backups"]] == [second["backup_id"]]

    target = env / "restored"
    dry = runner.invoke(backup, ["restore", "--tenant", TENANT, "--target", str(target), "--dry-run"])
    assert dry.exit_code == 0 and len(_json_line(dry)["changes"]) == len(files)
    assert not target.exists()
    done = runner.invoke(
        backup, ["restore", "--tenant", TENANT, "--backup", second["backup_id"], "--target", str(target)]
    )
    assert done.exit_code == 0, done.output
    assert _json_line(done)["verified"] == len(files)
    assert tenant_files(LocalFileStore(target), TENANT) == files


def test_restore_exit_codes(env):
    seed_tenant(LocalObjectStore(env / "data"), TENANT)
    runner = CliRunner()
    runner.invoke(backup, ["run", "--tenant", TENANT])
    refused = runner.invoke(backup, ["restore", "--tenant", TENANT, "--target", str(env / "data")])
    assert refused.exit_code == 0  # restoring over identical data changes nothing

    (env / "data" / "tenants" / TENANT / "reports" / "summary.json").write_text("{}")
    refused = runner.invoke(backup, ["restore", "--tenant", TENANT, "--target", str(env / "data")])
    assert refused.exit_code == 1 and "overwrite" in _json_line(refused)["error"]

    repo = TenantBackupRepository(LocalFileStore(env / "backups"), TENANT)
    victim = max(repo.load_manifest("latest").entries, key=lambda e: e.size)
    (env / "backups" / repo.content_key(victim.sha256)).write_bytes(b"\0" * victim.size)
    failed = runner.invoke(backup, ["restore", "--tenant", TENANT, "--target", str(env / "elsewhere")])
    assert failed.exit_code == 1
    body = _json_line(failed)
    assert body["ok"] is False and [f["path"] for f in body["failed"]] == [victim.path]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--tenant", "../enterprise-001"],
        ["run", "--tenant", "no-such-tenant"],
        ["list", "--tenant", "UPPER"],
        ["restore", "--tenant", TENANT, "--backup", "../x", "--target", "t"],
        ["restore", "--tenant", TENANT, "--target", "ftp://host/x"],
    ],
)
def test_bad_input_exits_2(env, args):
    result = CliRunner().invoke(backup, args)
    assert result.exit_code == 2, result.output


def test_config_commands(env, tmp_path):
    repo_root = tmp_path / "repo"
    (repo_root / "deploy").mkdir(parents=True)
    (repo_root / "deploy" / "values.yaml").write_text("a: 1\n")
    archive = tmp_path / "configs.tar.gz"
    runner = CliRunner()
    made = runner.invoke(backup_configs_command, ["--output", str(archive), "--repo-root", str(repo_root)])
    assert made.exit_code == 0, made.output
    assert _json_line(made)["files"] == 2
    (repo_root / "deploy" / "values.yaml").write_text("a: 2\n")
    args = ["--file", str(archive), "--repo-root", str(repo_root)]
    refused = runner.invoke(restore_configs_command, args)
    assert refused.exit_code == 1 and "values.yaml" in _json_line(refused)["error"]
    done = runner.invoke(restore_configs_command, [*args, "--overwrite"])
    assert done.exit_code == 0 and (repo_root / "deploy" / "values.yaml").read_text() == "a: 1\n"
