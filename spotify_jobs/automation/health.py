"""health-check: the instance's storage, the daemon's heartbeats, the data and backup stores, and the
Pushgateway. Each check says ok, fail or skip (not configured) and why."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import dagster as dg
from dagster._daemon.controller import get_daemon_statuses

from spotify_jobs.storage.object_store import ObjectStore

HEARTBEAT_TOLERANCE_SECONDS = 120.0  # the daemon beats every 30 s
HTTP_TIMEOUT_SECONDS = 5.0
PROBE_PREFIX = "_health"


@dataclass(frozen=True)
class HealthCheck:
    check: str
    status: str  # ok | fail | skip
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def check_instance_storage(instance: dg.DagsterInstance) -> HealthCheck:
    storages = ", ".join(
        type(s).__name__
        for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    )
    try:
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions("tenants")
    except Exception as exc:  # any storage error (locked SQLite, Postgres down) is the finding
        return HealthCheck("instance storage", "fail", f"{storages}: {type(exc).__name__}: {exc}")
    return HealthCheck("instance storage", "ok", storages)


def check_daemons(
    instance: dg.DagsterInstance, tolerance: float = HEARTBEAT_TOLERANCE_SECONDS, now: float | None = None
) -> HealthCheck:
    """Every daemon this instance needs (scheduler, sensors, run queue, ...) beat within `tolerance`."""
    required = list(instance.get_required_daemon_types())
    statuses = get_daemon_statuses(
        instance, required, curr_time_seconds=now or time.time(), heartbeat_tolerance_seconds=tolerance
    )
    missing = sorted(name for name, status in statuses.items() if status.last_heartbeat is None)
    stale = sorted(
        name for name, status in statuses.items() if status.last_heartbeat is not None and not status.healthy
    )
    if missing or stale:
        parts = []
        if missing:
            parts.append("no heartbeat from " + ", ".join(missing) + " (is `dagster-daemon run` up?)")
        if stale:
            parts.append(f"unhealthy or older than {tolerance:.0f}s: " + ", ".join(stale))
        return HealthCheck("daemon heartbeat", "fail", "; ".join(parts))
    return HealthCheck(
        "daemon heartbeat", "ok", f"{len(required)} daemons beating: {', '.join(sorted(required))}"
    )


def check_store(name: str, store: ObjectStore) -> HealthCheck:
    """Write, read back and delete a probe object."""
    key = f"{PROBE_PREFIX}/probe-{uuid.uuid4().hex}"
    payload = b"spotify-jobs health probe"
    try:
        store.write_bytes(key, payload)
        read = store.read_bytes(key)
        store.delete(key)
    except Exception as exc:  # StorageError and anything a backend raises
        return HealthCheck(name, "fail", f"{store.root}: {exc}")
    if read != payload:
        return HealthCheck(name, "fail", f"{store.root}: probe read back differs from what was written")
    return HealthCheck(name, "ok", f"{store.root}: write, read and delete work")


def check_pushgateway(url: str | None, timeout: float = HTTP_TIMEOUT_SECONDS) -> HealthCheck:
    if not url:
        return HealthCheck("pushgateway", "skip", "not configured (SPOTIFY_JOBS_PUSHGATEWAY_URL)")
    probe = url.rstrip("/") + "/-/healthy"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:
            return HealthCheck("pushgateway", "ok", f"{probe}: HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return HealthCheck("pushgateway", "fail", f"{probe}: HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return HealthCheck("pushgateway", "fail", f"{probe}: {exc}")
