"""measure_usage measures wall time, whole-process CPU, peak memory, GPU seconds and counts, also on failure."""

import subprocess
import sys
import threading
import time
import types

import pytest

from spotify_jobs.observability import usage as usage_module
from spotify_jobs.observability.usage import StepUsage, measure_usage

MIB = 2**20


def _burn(seconds: float, into: list[float]) -> None:
    start = time.thread_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(1000))
    into.append(time.thread_time() - start)


def test_cpu_seconds_count_every_thread_of_the_process():
    thread_cpu: list[float] = []
    with measure_usage() as meter:
        workers = [threading.Thread(target=_burn, args=(0.15, thread_cpu)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    usage = meter.usage
    # A per-thread clock on the calling thread would see ~0 s: the work ran on two other threads.
    assert usage.cpu_seconds >= sum(thread_cpu) - 0.02
    assert usage.wall_seconds >= 0.15
    assert usage.outcome == "success" and usage.error is None
    assert usage.end_timestamp >= usage.start_timestamp


def test_kernel_high_water_mark_catches_a_peak_freed_before_the_block_ends():
    with measure_usage() as meter:
        baseline = usage_module.psutil.Process().memory_info().rss
        blob = b"x" * (150 * MIB)
        del blob
    assert meter.usage.peak_memory_bytes >= baseline + 140 * MIB


def test_sampling_fallback_measures_memory_held_at_the_end(monkeypatch):
    monkeypatch.setattr(usage_module, "_reset_kernel_peak", lambda: False)
    with measure_usage(sample_interval=5) as meter:
        baseline = usage_module.psutil.Process().memory_info().rss
        blob = b"x" * (120 * MIB)
    assert len(blob) == 120 * MIB
    assert meter.usage.peak_memory_bytes >= baseline + 110 * MIB


def test_failure_is_measured_and_the_exception_propagates():
    with pytest.raises(KeyError, match="missing-column"), measure_usage() as meter:
        meter.add_records(7)
        meter.add_bytes(70)
        raise KeyError("missing-column")
    usage = meter.usage
    assert usage.outcome == "failure" and usage.error == "KeyError: 'missing-column'"
    assert (usage.records, usage.bytes_processed) == (7, 70)


@pytest.mark.parametrize("method", ["add_records", "add_bytes"])
def test_negative_counts_are_refused(method):
    with measure_usage() as meter, pytest.raises(ValueError, match="must be >= 0"):
        getattr(meter, method)(-1)


def test_bad_sample_interval_is_refused():
    with pytest.raises(ValueError, match="sample_interval"), measure_usage(sample_interval=0):
        pass


def test_utilisation_against_a_reservation():
    usage = StepUsage(10.0, 5.0, 256 * MIB, 0.0, 0, 0, 0, "success")
    assert usage.cpu_utilisation(0.5) == pytest.approx(1.0)
    assert usage.cpu_utilisation(2.0) == pytest.approx(0.25)
    assert usage.memory_utilisation(1024 * MIB) == pytest.approx(0.25)
    assert usage.cpu_utilisation(None) is None and usage.memory_utilisation(None) is None


def test_gpu_seconds_count_wall_time_per_cuda_device_in_use(monkeypatch):
    # CUDA is not available on the CI machines: stand in for torch.cuda with the calls measure_usage makes.
    peaks = {0: 3 * MIB, 1: 5 * MIB}
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        device_count=lambda: 2,
        reset_peak_memory_stats=lambda device: None,
        max_memory_allocated=lambda device: peaks[device],
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    with measure_usage() as meter:
        time.perf_counter()
    usage = meter.usage
    assert usage.gpu_seconds == pytest.approx(2 * usage.wall_seconds)
    assert usage.gpu_peak_memory_bytes == 5 * MIB


def test_cpu_only_torch_counts_no_gpu_seconds():
    import torch

    with measure_usage() as meter:
        torch.ones(4).sum()
    assert meter.usage.gpu_seconds == 0 and meter.usage.gpu_peak_memory_bytes == 0


def test_measuring_never_imports_torch():
    code = (
        "import sys\n"
        "from spotify_jobs.observability.usage import measure_usage\n"
        "with measure_usage():\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
