"""Protects the device choice and the thread and process counts taken from the container's cgroup CPU limit."""

from __future__ import annotations

import pytest

from spotify_jobs.cpu_limits import PARALLEL_GRAIN, available_cpus, cgroup_cpu_limit, cpu_threads
from spotify_jobs.training.runtime import configure_torch_threads, select_device


def _write(root, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "50000 100000"}, 0.5),
        ({"cpu.max": "max 100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000", "cpu/cpu.cfs_period_us": "100000"}, 4.0),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "250000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 2.5),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({}, None),
        # v2 wins when both are mounted (hybrid hosts)
        (
            {"cpu.max": "100000 100000", "cpu/cpu.cfs_quota_us": "800000", "cpu/cpu.cfs_period_us": "100000"},
            1.0,
        ),
    ],
)
def test_cgroup_cpu_limit(tmp_path, files, expected):
    for relative, text in files.items():
        _write(tmp_path, relative, text)
    assert cgroup_cpu_limit(tmp_path) == expected


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"cpu.max": "lots"}, "cpu.max"),
        ({"cpu.max": "abc 100000"}, "cannot parse CPU quota"),
        ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "0"}, "must be positive"),
    ],
)
def test_cgroup_cpu_limit_rejects_malformed_files(tmp_path, files, message):
    for relative, text in files.items():
        _write(tmp_path, relative, text)
    with pytest.raises(ValueError, match=message):
        cgroup_cpu_limit(tmp_path)


@pytest.mark.parametrize(
    ("limit", "cpus", "work", "threads"),
    [
        (2.0, 64, None, 2),
        (2.5, 64, None, 2),
        (0.5, 64, None, 1),
        (16.0, 4, None, 4),
        (None, 8, None, 8),
        (None, 0, None, 1),
        (16.0, 64, 4 * PARALLEL_GRAIN, 4),
        (16.0, 64, 100 * PARALLEL_GRAIN, 16),
        (16.0, 64, PARALLEL_GRAIN // 2, 1),
    ],
)
def test_cpu_threads_follow_the_quota_not_the_node(limit, cpus, work, threads):
    assert cpu_threads(limit, cpus, work) == threads


def test_configure_torch_threads_sets_torch_from_the_cgroup(tmp_path):
    import torch

    before = torch.get_num_threads()
    _write(tmp_path, "cpu.max", "100000 100000")
    try:
        assert configure_torch_threads(root=tmp_path) == 1
        assert torch.get_num_threads() == 1
        _write(tmp_path, "cpu.max", "max 100000")
        assert configure_torch_threads(root=tmp_path) == available_cpus()
        assert torch.get_num_threads() == available_cpus()
        assert configure_torch_threads(work_items=PARALLEL_GRAIN, root=tmp_path) == 1
    finally:
        torch.set_num_threads(before)


def test_select_device():
    import torch

    assert select_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            select_device("cuda")
