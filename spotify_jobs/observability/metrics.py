"""Prometheus metrics of steps, runs and the run queue, pushed to a Pushgateway (no Dagster here).

Batch steps end before Prometheus could scrape them, so they push. Every step execution pushes its own
group, `job="spotify_jobs_step"` keyed by run id, step key and attempt, and every finished run its own
group, `job="spotify_jobs_run"` keyed by run id: concurrent runs and retried steps never overwrite each
other. Each group carries an `..._end_timestamp_seconds` gauge, so the alert rules count the executions
that ended in a window (`time() - end < 86400`) without counters that would have to survive the pod.
Groups stay in the Pushgateway until `prune_groups()` removes those older than the retention.

A Pushgateway that is down, slow or refusing never raises out of here: `push_group()` returns a
`PushOutcome` saying what went wrong and counts it in `PUSH_FAILURES` (the process's own registry).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import delete_from_gateway, push_to_gateway

from spotify_jobs.observability.usage import StepUsage

log = logging.getLogger(__name__)

STEP_GROUP_JOB = "spotify_jobs_step"
RUN_GROUP_JOB = "spotify_jobs_run"
BACKLOG_GROUP_JOB = "spotify_jobs_backlog"
PUSH_TIMEOUT_SECONDS = 5.0
LABELS = ("tenant", "job_type", "tier", "priority", "outcome")
UNKNOWN = "unknown"

# Bucket bounds include every job type's p95 SLA (90 min, 2 h, 3 h, 6 h, 8 h) so that
# histogram_quantile() compared with an SLA is exact at the threshold.
DURATION_BUCKETS = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    5400,
    7200,
    10800,
    14400,
    21600,
    28800,
    43200,
)

PUSH_FAILURES = Counter(
    "spotify_jobs_pushgateway_push_failures_total",
    "Pushes to the Pushgateway that failed in this process.",
    ["group_job"],
)


@dataclass(frozen=True)
class MetricLabels:
    """Who and what a measurement belongs to; every pushed series carries these labels."""

    tenant: str
    job_type: str
    tier: str
    priority: str
    outcome: str

    def values(self) -> dict[str, str]:
        return {name: getattr(self, name) or UNKNOWN for name in LABELS}


@dataclass(frozen=True)
class Reservation:
    """What the step's pod reserved (requests = limits), from its tier."""

    cpu_cores: float
    memory_bytes: int


@dataclass(frozen=True)
class PushOutcome:
    pushed: bool
    error: str | None = None


def _gauge(registry: CollectorRegistry, name: str, doc: str, labels: MetricLabels, value: float) -> None:
    Gauge(name, doc, LABELS, registry=registry).labels(**labels.values()).set(value)


def _counter(registry: CollectorRegistry, name: str, doc: str, labels: MetricLabels, value: float) -> None:
    # prometheus_client appends `_total` itself.
    Counter(name.removesuffix("_total"), doc, LABELS, registry=registry).labels(**labels.values()).inc(value)


def step_registry(
    usage: StepUsage, labels: MetricLabels, reservation: Reservation | None, asset: str
) -> CollectorRegistry:
    """The metrics of one step execution, in a registry of their own."""
    registry = CollectorRegistry()
    Histogram(
        "spotify_jobs_step_duration_seconds",
        "Wall time of one step execution.",
        [*LABELS, "asset"],
        buckets=DURATION_BUCKETS,
        registry=registry,
    ).labels(**labels.values(), asset=asset).observe(usage.wall_seconds)
    _counter(registry, "spotify_jobs_steps_total", "Step executions (one per pushed group).", labels, 1)
    _counter(
        registry,
        "spotify_jobs_step_cpu_seconds_total",
        "CPU seconds the step process used.",
        labels,
        usage.cpu_seconds,
    )
    _gauge(
        registry,
        "spotify_jobs_step_peak_memory_bytes",
        "Peak resident memory of the step process.",
        labels,
        usage.peak_memory_bytes,
    )
    _counter(
        registry,
        "spotify_jobs_step_gpu_seconds_total",
        "Wall seconds times CUDA devices in use.",
        labels,
        usage.gpu_seconds,
    )
    _counter(
        registry, "spotify_jobs_step_records_total", "Records the step processed.", labels, usage.records
    )
    _counter(
        registry,
        "spotify_jobs_step_processed_bytes_total",
        "Bytes the step processed.",
        labels,
        usage.bytes_processed,
    )
    _gauge(
        registry,
        "spotify_jobs_step_end_timestamp_seconds",
        "Unix time the step execution ended.",
        labels,
        usage.end_timestamp,
    )
    if reservation is not None:
        _gauge(
            registry,
            "spotify_jobs_step_reserved_cpu_cores",
            "CPU cores the step pod reserved.",
            labels,
            reservation.cpu_cores,
        )
        _gauge(
            registry,
            "spotify_jobs_step_reserved_memory_bytes",
            "Memory the step pod reserved.",
            labels,
            reservation.memory_bytes,
        )
        cpu = usage.cpu_utilisation(reservation.cpu_cores)
        if cpu is not None:
            _gauge(
                registry,
                "spotify_jobs_step_cpu_utilisation_ratio",
                "CPU seconds used over reserved cores times wall time.",
                labels,
                cpu,
            )
        _gauge(
            registry,
            "spotify_jobs_step_memory_utilisation_ratio",
            "Peak memory over reserved memory.",
            labels,
            usage.memory_utilisation(reservation.memory_bytes) or 0.0,
        )
    return registry


def run_registry(
    labels: MetricLabels, duration_seconds: float | None, end_timestamp: float, dagster_job: str
) -> CollectorRegistry:
    """The metrics of one finished run (outcome success, failure or canceled); no duration if it never started."""
    registry = CollectorRegistry()
    run_labels = [*LABELS, "dagster_job"]
    values = {**labels.values(), "dagster_job": dagster_job}
    duration = Histogram(
        "spotify_jobs_run_duration_seconds",
        "Wall time of one run, start to end.",
        run_labels,
        buckets=DURATION_BUCKETS,
        registry=registry,
    ).labels(**values)
    if duration_seconds is not None:
        duration.observe(duration_seconds)
    Counter(
        "spotify_jobs_runs", "Finished runs (one per pushed group).", run_labels, registry=registry
    ).labels(**values).inc()
    Gauge(
        "spotify_jobs_run_end_timestamp_seconds", "Unix time the run ended.", run_labels, registry=registry
    ).labels(**values).set(end_timestamp)
    return registry


def backlog_registry(queued: Mapping[str, int], in_progress: Mapping[str, int]) -> CollectorRegistry:
    """Runs waiting and running per tenant (every tenant given, zeros included)."""
    registry = CollectorRegistry()
    queued_gauge = Gauge(
        "spotify_jobs_runs_queued", "Runs queued, not yet started.", ["tenant"], registry=registry
    )
    running_gauge = Gauge(
        "spotify_jobs_runs_in_progress", "Runs started, not ended.", ["tenant"], registry=registry
    )
    for tenant in sorted(set(queued) | set(in_progress)):
        queued_gauge.labels(tenant=tenant).set(queued.get(tenant, 0))
        running_gauge.labels(tenant=tenant).set(in_progress.get(tenant, 0))
    return registry


def push_group(
    url: str | None,
    job: str,
    registry: CollectorRegistry,
    grouping_key: Mapping[str, str] | None = None,
    *,
    timeout: float = PUSH_TIMEOUT_SECONDS,
) -> PushOutcome:
    """Replace the group `job` + `grouping_key` on the Pushgateway at `url`; never raises.

    No URL configured means metrics are off: nothing is pushed and nothing is counted as a failure.
    """
    if not url:
        return PushOutcome(pushed=False, error="no pushgateway_url configured")
    try:
        push_to_gateway(
            url, job=job, registry=registry, grouping_key=dict(grouping_key or {}), timeout=timeout
        )
    except Exception as exc:  # a metrics outage must never fail the work that is being measured
        PUSH_FAILURES.labels(group_job=job).inc()
        error = f"{type(exc).__name__}: {exc}"
        log.warning("push to Pushgateway %s failed (job=%s): %s", url, job, error)
        return PushOutcome(pushed=False, error=error)
    return PushOutcome(pushed=True)


def _base_url(url: str) -> str:
    return (url if "://" in url else f"http://{url}").rstrip("/")


def list_groups(url: str, *, timeout: float = PUSH_TIMEOUT_SECONDS) -> list[dict]:
    """The Pushgateway's groups (`/api/v1/metrics`): each has `labels` and `push_time_seconds`."""
    with urllib.request.urlopen(f"{_base_url(url)}/api/v1/metrics", timeout=timeout) as response:
        payload = json.load(response)
    groups = []
    for group in payload.get("data", []):
        push_time = group.get("push_time_seconds", {}).get("metrics", [{}])[0].get("value", "0")
        groups.append({"labels": group["labels"], "push_time_seconds": float(push_time)})
    return groups


def prune_groups(
    url: str,
    max_age_seconds: float,
    *,
    now: float | None = None,
    jobs: tuple[str, ...] = (STEP_GROUP_JOB, RUN_GROUP_JOB),
) -> int:
    """Delete the step and run groups pushed more than `max_age_seconds` ago; returns how many.

    Per-run groups would otherwise pile up in the Pushgateway (and as series in Prometheus) for ever;
    keep the retention longer than the longest alert window.
    """
    if max_age_seconds <= 0:
        raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
    cutoff = (time.time() if now is None else now) - max_age_seconds
    deleted = 0
    for group in list_groups(url):
        labels = dict(group["labels"])
        job = labels.pop("job", None)
        if job in jobs and group["push_time_seconds"] < cutoff:
            delete_from_gateway(_base_url(url), job=job, grouping_key=labels, timeout=PUSH_TIMEOUT_SECONDS)
            deleted += 1
    return deleted
