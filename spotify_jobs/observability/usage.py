"""What one step used: wall time, CPU seconds, peak memory, GPU seconds, records and bytes (no Dagster here).

`measure_usage()` wraps a block of work in the step process and yields a `UsageMeter`; when the block ends,
`meter.usage` holds a `StepUsage`. What each figure means:

- CPU seconds: user + system time of the whole process (every thread: pandas, pyarrow, DuckDB and torch
  do their work on worker threads, which a per-thread clock would miss) plus reaped child processes.
  Dagster runs one step per process in Kubernetes and steps one after another in-process locally, so the
  process delta is the step's; two meters open at once in one process would each count both.
- Peak memory: the process's resident set high-water mark. On Linux the kernel's mark (VmHWM) is reset
  when the block starts (`/proc/self/clear_refs`), so it is exact for this block; where that is refused, and
  always for child processes, a background thread samples RSS every `sample_interval` seconds.
- GPU seconds: wall seconds times the CUDA devices in use, counted only when torch was already imported
  and CUDA initialised by the end of the block (torch is never imported here).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

_HWM_LINE = re.compile(r"^VmHWM:\s+(\d+)\s+kB$", re.MULTILINE)
DEFAULT_SAMPLE_INTERVAL = 0.2


@dataclass(frozen=True)
class StepUsage:
    """Resources one block of work used, and whether it raised."""

    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int
    gpu_seconds: float
    gpu_peak_memory_bytes: int
    records: int
    bytes_processed: int
    outcome: str  # "success" or "failure"
    error: str | None = None
    start_timestamp: float = 0.0
    end_timestamp: float = 0.0

    def cpu_utilisation(self, reserved_cpu_cores: float | None) -> float | None:
        """CPU seconds over what the reservation allowed in the same wall time; None without a reservation."""
        if not reserved_cpu_cores or self.wall_seconds <= 0:
            return None
        return self.cpu_seconds / (self.wall_seconds * reserved_cpu_cores)

    def memory_utilisation(self, reserved_memory_bytes: int | None) -> float | None:
        """Peak resident memory over the reserved memory; None without a reservation."""
        if not reserved_memory_bytes:
            return None
        return self.peak_memory_bytes / reserved_memory_bytes


def _process_cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _reset_kernel_peak() -> bool:
    """Reset this process's VmHWM; False where the kernel or the sandbox does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _kernel_peak_bytes() -> int:
    try:
        with open("/proc/self/status") as handle:
            match = _HWM_LINE.search(handle.read())
    except OSError:
        return 0
    return int(match.group(1)) * 1024 if match else 0


class _RssSampler:
    """Samples the resident memory of the process and its children on a daemon thread."""

    def __init__(self, process: psutil.Process, interval: float):
        self._process = process
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, name="spotify-jobs-rss-sampler", daemon=True)

    def sample(self) -> int:
        rss = self._process.memory_info().rss
        try:
            children = self._process.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                rss += child.memory_info().rss
            except psutil.Error:  # the child exited between listing and reading
                continue
        with self._lock:
            self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak


@dataclass
class UsageMeter:
    """Handed to the measured block: count what it processed; `usage` is set when the block ends."""

    records: int = 0
    bytes_processed: int = 0
    usage: StepUsage | None = None
    metadata: dict[str, object] = field(default_factory=dict)  # filled by metering.step_meter on exit
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_records(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"record count must be >= 0, got {count}")
        with self._lock:
            self.records += int(count)

    def add_bytes(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"byte count must be >= 0, got {count}")
        with self._lock:
            self.bytes_processed += int(count)


def _cuda_devices_in_use() -> int:
    """CUDA devices torch initialised in this process; 0 when torch was never imported or CUDA never used."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_available() or not cuda.is_initialized():
        return 0
    return cuda.device_count()


def _cuda_reset_peak() -> None:
    if _cuda_devices_in_use():
        cuda = sys.modules["torch"].cuda
        for device in range(cuda.device_count()):
            cuda.reset_peak_memory_stats(device)


def _cuda_peak_bytes(devices: int) -> int:
    if not devices:
        return 0
    cuda = sys.modules["torch"].cuda
    return max(cuda.max_memory_allocated(device) for device in range(devices))


@contextmanager
def measure_usage(*, sample_interval: float = DEFAULT_SAMPLE_INTERVAL) -> Iterator[UsageMeter]:
    """Measure the block; the yielded meter's `usage` is filled in on exit, also when the block raises."""
    if sample_interval <= 0:
        raise ValueError(f"sample_interval must be > 0 seconds, got {sample_interval}")
    process = psutil.Process(os.getpid())
    meter = UsageMeter()
    kernel_peak = _reset_kernel_peak()
    _cuda_reset_peak()
    sampler = _RssSampler(process, sample_interval)
    start_timestamp = time.time()
    start_wall = time.perf_counter()
    start_cpu = _process_cpu_seconds(process)
    sampler.start()
    outcome, error = "success", None
    try:
        yield meter
    except BaseException as exc:
        outcome, error = "failure", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        wall = time.perf_counter() - start_wall
        cpu = _process_cpu_seconds(process) - start_cpu
        sampled_peak = sampler.stop()
        peak = max(sampled_peak, _kernel_peak_bytes()) if kernel_peak else sampled_peak
        devices = _cuda_devices_in_use()
        meter.usage = StepUsage(
            wall_seconds=wall,
            cpu_seconds=max(cpu, 0.0),
            peak_memory_bytes=peak,
            gpu_seconds=wall * devices,
            gpu_peak_memory_bytes=_cuda_peak_bytes(devices),
            records=meter.records,
            bytes_processed=meter.bytes_processed,
            outcome=outcome,
            error=error,
            start_timestamp=start_timestamp,
            end_timestamp=time.time(),
        )
