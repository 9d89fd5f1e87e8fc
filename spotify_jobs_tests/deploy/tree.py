"""Where the committed deploy/ tree is, and how the tests read its rendered YAML."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PRODUCTION_PROFILE = DEPLOY / "k8s" / "profiles" / "production.yaml"


def yaml_files(directory: Path) -> dict[str, str]:
    """{path relative to `directory`: text} of every YAML file below it."""
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*.yaml"))}


def objects_of(files: dict[str, str]) -> list[dict]:
    """The Kubernetes objects in rendered files (kustomization.yaml files left out)."""
    return [
        yaml.safe_load(text)
        for name, text in sorted(files.items())
        if not name.endswith("kustomization.yaml")
    ]
