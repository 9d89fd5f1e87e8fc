"""How many CPUs this process may really use.

In a pod, `os.cpu_count()` is the node's core count; the CPU limit lives in the cgroup (v2 `cpu.max`,
v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`). Running more threads or processes than the quota allows gets the
step throttled, so torch threads (training) and parser threads (ETL) follow the quota.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Elements per operation a thread must have before another one is used. The trainer's ops are small (a batch
# of rows); idle OpenMP threads spin between them, and on a shared or throttled CPU 2 threads ran 10x slower
# than 1 at 65k-262k elements per op (measured on a loaded 2-core VM). Big batches still get threads.
PARALLEL_GRAIN = 262_144
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ratio(quota: str, period: str, source: Path) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        raise ValueError(f"cannot parse CPU quota {quota!r} / period {period!r} in {source}") from None
    if quota_us <= 0:  # -1 in cgroup v1: no limit
        return None
    if period_us <= 0:
        raise ValueError(f"CPU period {period_us} in {source} must be positive")
    return quota_us / period_us


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The container's CPU limit in cores (cgroup v2 or v1 under `root`); None when unlimited or unknown."""
    v2 = root / "cpu.max"
    text = _read(v2)
    if text is not None:
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"cannot parse {v2}: expected '<quota|max> <period>', got {text!r}")
        return None if parts[0] == "max" else _ratio(parts[0], parts[1], v2)
    for name in _V1_CPU_DIRS:
        quota_file = root / name / "cpu.cfs_quota_us"
        quota = _read(quota_file)
        period = _read(root / name / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ratio(quota, period, quota_file)
    return None


def available_cpus() -> int:
    """CPUs this process may be scheduled on (affinity), before any quota."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_threads(limit: float | None, cpus: int, work_items: int | None = None) -> int:
    """Threads for a CPU quota of `limit` cores on `cpus` schedulable CPUs: at least 1, at most the quota,
    and at most one per `PARALLEL_GRAIN` elements of the largest tensor an operation works on."""
    threads = max(1, cpus) if limit is None else max(1, min(cpus, math.floor(limit)))
    if work_items is not None:
        threads = min(threads, max(1, work_items // PARALLEL_GRAIN))
    return threads
