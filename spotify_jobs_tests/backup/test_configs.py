"""Protects config backups: registry, rate cards and deploy values archive and restore verified, tampered
or path-escaping archives are refused, differing files are not overwritten without the flag."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile

import pytest

from spotify_jobs.backup.configs import (
    MANIFEST_NAME,
    ConfigArchiveError,
    ConfigRestoreRefused,
    backup_configs,
    restore_configs,
)
from spotify_jobs.tenancy.registry import DEFAULT_REGISTRY_PATH


@pytest.fixture
def checkout(tmp_path):
    """A checkout with a registry, two rate cards and nested deploy values (plus files to ignore)."""
    root = tmp_path / "repo"
    cards = root / "spotify_jobs" / "billing" / "rate_cards"
    cards.mkdir(parents=True)
    (cards / "standard.yaml").write_text("cpu_core_hour: 0.04\n")
    (cards / "enterprise.yaml").write_text("cpu_core_hour: 0.03\n")
    (cards / "README.md").write_text("not a rate card\n")
    (root / "deploy" / "helm").mkdir(parents=True)
    (root / "deploy" / "helm" / "values.yaml").write_text("dagsterWebserver:\n  replicaCount: 1\n")
    (root / "deploy" / "kustomize" / "overlays" / "startup-042").mkdir(parents=True)
    (root / "deploy" / "kustomize" / "overlays" / "startup-042" / "kustomization.yaml").write_text(
        "resources: []\n"
    )
    (root / "deploy" / "Dockerfile").write_text("FROM python:3.11\n")
    registry = tmp_path / "etc" / "tenants.yaml"
    registry.parent.mkdir()
    shutil.copy(DEFAULT_REGISTRY_PATH, registry)
    return root, registry


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_restores_every_file_verified(checkout, tmp_path):
    root, registry = checkout
    archive = tmp_path / "configs.tar.gz"
    made = backup_configs(archive, registry_path=registry, repo_root=root)
    assert made.roles == {"tenant_registry": 1, "rate_card": 2, "deploy_values": 2}
    before, registry_bytes = _tree(root), registry.read_bytes()

    shutil.rmtree(root / "deploy")
    (root / "spotify_jobs" / "billing" / "rate_cards" / "standard.yaml").unlink()
    registry.unlink()
    result = restore_configs(archive, registry_path=registry, repo_root=root)
    assert len(result.created) == 4 and len(result.unchanged) == 1
    assert registry.read_bytes() == registry_bytes
    after = _tree(root)
    assert {k: v for k, v in before.items() if k != "deploy/Dockerfile"} == after


def test_differing_files_need_overwrite(checkout, tmp_path):
    root, registry = checkout
    archive = tmp_path / "configs.tar.gz"
    backup_configs(archive, registry_path=registry, repo_root=root)
    values = root / "deploy" / "helm" / "values.yaml"
    values.write_text("changed: true\n")
    with pytest.raises(ConfigRestoreRefused, match=r"values\.yaml"):
        restore_configs(archive, registry_path=registry, repo_root=root)
    assert values.read_text() == "changed: true\n"
    plan = restore_configs(archive, registry_path=registry, repo_root=root, dry_run=True)
    assert plan.overwritten == [str(values)] and values.read_text() == "changed: true\n"
    restore_configs(archive, registry_path=registry, repo_root=root, overwrite=True)
    assert values.read_text() == "dagsterWebserver:\n  replicaCount: 1\n"


def _rewrite(archive, edit):
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    edit(members)
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _tamper(members):
    members["deploy/helm/values.yaml"] = b"image: evil\n"


def _escape(members):
    manifest = json.loads(members[MANIFEST_NAME])
    entry = next(e for e in manifest["files"] if e["name"] == "deploy/helm/values.yaml")
    entry["name"] = "deploy/../../outside.yaml"
    members["deploy/../../outside.yaml"] = members.pop("deploy/helm/values.yaml")
    members[MANIFEST_NAME] = json.dumps(manifest).encode()


def _bad_registry(members):
    manifest = json.loads(members[MANIFEST_NAME])
    entry = next(e for e in manifest["files"] if e["role"] == "tenant_registry")
    data = b"tenants:\n  - id: ../evil\n"
    members[entry["name"]] = data
    entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    members[MANIFEST_NAME] = json.dumps(manifest).encode()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_tamper, "does not match its sha256"),
        (_escape, "not a YAML file under deploy/"),
        (_bad_registry, "valid"),
    ],
)
def test_bad_archives_are_refused_before_writing(checkout, tmp_path, edit, message):
    root, registry = checkout
    archive = tmp_path / "configs.tar.gz"
    backup_configs(archive, registry_path=registry, repo_root=root)
    _rewrite(archive, edit)
    shutil.rmtree(root / "deploy")
    with pytest.raises(ConfigArchiveError, match=message):
        restore_configs(archive, registry_path=registry, repo_root=root)
    assert not (root / "deploy").exists() and not (tmp_path / "outside.yaml").exists()
