"""Protects deploy/docker (no Docker engine here, so statically): multi-stage builds that run as the step
pods' numeric user with a writable /tmp only, start the code server, let dagster-k8s's `args` replace the
command, install pyproject's torch range, and differ between CPU and GPU only in the torch wheel index."""

from __future__ import annotations

import re
import tomllib

import pytest

from spotify_jobs.k8s.config import SCRATCH_PATH, STEP_USER_ID
from spotify_jobs_tests.deploy.tree import DEPLOY

DOCKER = DEPLOY / "docker"
PYPROJECT = DEPLOY.parent / "pyproject.toml"
ENTRY = ["dagster", "api", "grpc", "-m", "spotify_jobs.definitions", "-h", "0.0.0.0", "-p", "3030"]


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def torch_requirement() -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (torch,) = [d for d in dependencies if d.startswith("torch")]
    return torch


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_image_is_multi_stage_non_root_and_read_only_friendly(name):
    steps = instructions(name)
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) == 2 and stages[-1].endswith("AS runtime")
    runtime = steps[[i for i, (word, _) in enumerate(steps) if word == "FROM"][-1] :]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users == [f"{STEP_USER_ID}:{STEP_USER_ID}"]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    for variable in ("HOME", "TMPDIR"):
        assert f"{variable}={SCRATCH_PATH}" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "compileall" in " ".join(rest for word, rest in steps if word == "RUN")
    # The build stage compiles the ETL's C reader; the runtime stage has no compiler.
    build = steps[: len(steps) - len(runtime)]
    assert "gcc" in " ".join(rest for word, rest in build if word == "RUN")
    assert "gcc" not in " ".join(rest for word, rest in runtime)
    assert not [word for word, _ in steps if word == "ENTRYPOINT"]
    (cmd,) = [rest for word, rest in steps if word == "CMD"]
    assert cmd == '["' + '", "'.join(ENTRY) + '"]'


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_torch_range_is_pyprojects(name):
    torch = torch_requirement()
    runs = [rest for word, rest in instructions(name) if word == "RUN" and "torch" in rest]
    assert runs == [f'pip install --index-url "${{TORCH_INDEX_URL}}" "{torch}"']


def test_cpu_and_gpu_images_differ_only_in_the_torch_index():
    cpu, gpu = instructions("Dockerfile"), instructions("Dockerfile.gpu")
    different = [(a, b) for a, b in zip(cpu, gpu, strict=True) if a != b]
    assert different == [
        (
            ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"),
            ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128"),
        )
    ]


def test_build_context_sends_only_the_package():
    cpu = (DOCKER / "Dockerfile.dockerignore").read_text()
    assert cpu == (DOCKER / "Dockerfile.gpu.dockerignore").read_text()
    rules = [line for line in cpu.splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!setup.py", "!spotify_jobs/**"} <= set(rules)
    assert "**/*.so" in rules  # the image compiles its own extension, never a copy built here
