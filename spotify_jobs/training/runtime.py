"""Where training runs: the device, and as many torch threads as the container's CPU quota allows."""

from __future__ import annotations

from pathlib import Path

from spotify_jobs.cpu_limits import CGROUP_ROOT, available_cpus, cgroup_cpu_limit, cpu_threads


def configure_torch_threads(work_items: int | None = None, root: Path = CGROUP_ROOT) -> int:
    """Set torch's intra-op thread count from the cgroup CPU limit (and the work size); returns it."""
    import torch

    threads = cpu_threads(cgroup_cpu_limit(root), available_cpus(), work_items)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def select_device(requested: str | None = None) -> str:
    """`cuda` when a GPU is visible, else `cpu`; `requested` forces one (a clear error if unavailable)."""
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r}; allowed: cpu, cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU")
    return requested
