"""What operators ask of the instance about runs: list, find, follow, cancel (Dagster reads, no click).

Rows are plain dataclasses; `format_table` turns them into the fixed-width tables the CLI prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from spotify_jobs.k8s.tags import PRIORITY_TAG, TENANT_TAG

RunStatus = dg.DagsterRunStatus
STATUS_FILTERS: dict[str, tuple[RunStatus, ...]] = {
    "queued": (RunStatus.QUEUED, RunStatus.NOT_STARTED),
    "running": (RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING),
    "failed": (RunStatus.FAILURE,),
    "succeeded": (RunStatus.SUCCESS,),
    "canceled": (RunStatus.CANCELED,),
}
FINISHED = frozenset({RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED})
SHORT_ID = 8


class RunNotFound(ValueError):
    """No run, or more than one, matches what the operator typed."""


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def _seconds(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    return f"{(end or time.time()) - start:.1f}s"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    job: str
    tenant: str
    partition: str
    priority: str
    status: str
    created: str
    duration: str

    @classmethod
    def of(cls, record: dg.RunRecord) -> RunRow:
        run = record.dagster_run
        return cls(
            run_id=run.run_id,
            job=run.job_name,
            tenant=run.tags.get(TENANT_TAG, "-"),
            partition=run.tags.get("dagster/partition", "-"),
            priority=run.tags.get(PRIORITY_TAG, "-"),
            status=run.status.value,
            created=_when(record.create_timestamp.timestamp()),
            duration=_seconds(record.start_time, record.end_time),
        )


def list_runs(
    instance: dg.DagsterInstance, status: str | None = None, tenant: str | None = None, limit: int = 50
) -> list[RunRow]:
    """Newest first; `status` is a key of STATUS_FILTERS (None: every status)."""
    if status is not None and status not in STATUS_FILTERS:
        raise ValueError(f"unknown filter {status!r}; allowed: {', '.join(STATUS_FILTERS)}")
    filters = dg.RunsFilter(
        statuses=list(STATUS_FILTERS[status]) if status else None,
        tags={TENANT_TAG: tenant} if tenant else None,
    )
    return [RunRow.of(record) for record in instance.get_run_records(filters=filters, limit=limit)]


def find_run(instance: dg.DagsterInstance, run_id: str, scan: int = 1000) -> dg.DagsterRun:
    """The run with this id, or the only one among the newest `scan` runs whose id starts with it."""
    if not run_id:
        raise RunNotFound("give a run id (or its first characters, as list-jobs shows them)")
    run = instance.get_run_by_id(run_id)
    if run is not None:
        return run
    matches = [r for r in instance.get_runs(limit=scan) if r.run_id.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = ", ".join(r.run_id for r in matches[:5])
        raise RunNotFound(f"run id prefix {run_id!r} matches {len(matches)} runs ({ids}); give more of it")
    raise RunNotFound(f"no run {run_id!r} in this instance (see list-jobs)")


@dataclass(frozen=True)
class StepRow:
    step: str
    status: str
    start: str
    end: str
    duration: str
    attempts: int


def step_timeline(instance: dg.DagsterInstance, run_id: str) -> list[StepRow]:
    """Every step that started, in start order."""
    stats = sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time or float("inf"))
    return [
        StepRow(
            step=s.step_key,
            status=s.status.value if s.status else "IN_PROGRESS",
            start=_when(s.start_time),
            end=_when(s.end_time),
            duration=_seconds(s.start_time, s.end_time),
            attempts=s.attempts or 1,
        )
        for s in stats
    ]


@dataclass(frozen=True)
class LogLine:
    storage_id: int
    time: str
    level: str
    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.time} {self.level:7} {self.step:24} {self.message}"


def _log_line(record) -> LogLine:
    entry = record.event_log_entry
    text = (entry.user_message or entry.message or "").strip()
    event = entry.dagster_event.event_type_value if entry.dagster_event else ""
    return LogLine(
        storage_id=record.storage_id,
        time=_when(entry.timestamp),
        level=logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level),
        step=entry.step_key or "-",
        message=text.splitlines()[0] if text else event,
    )


def log_lines(
    instance: dg.DagsterInstance, run_id: str, *, last: int | None = None, after: int | None = None
):
    """The run's event log as lines: the `last` N, or every line after storage id `after`."""
    if last is not None:
        records = instance.get_records_for_run(run_id, limit=last, ascending=False).records
        return [_log_line(r) for r in reversed(records)]
    cursor = None
    lines: list[LogLine] = []
    while True:
        result = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
        lines.extend(_log_line(r) for r in result.records if after is None or r.storage_id > after)
        if not result.has_more:
            return lines
        cursor = result.cursor


def follow_run(
    instance: dg.DagsterInstance,
    run_id: str,
    on_line: Callable[[LogLine], None],
    *,
    after: int | None,
    interval: float,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunStatus:
    """Print new log lines until the run has finished (or `timeout` seconds passed); its last status."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        for line in log_lines(instance, run_id, after=after):
            on_line(line)
            after = line.storage_id
        status = instance.get_run_by_id(run_id).status
        if status in FINISHED or (deadline is not None and clock() >= deadline):
            return status
        sleep(interval)


def cancel_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunStatus:
    """Cancel a queued or running run through the run coordinator; its status afterwards."""
    if run.status in FINISHED:
        raise ValueError(f"run {run.run_id} already ended ({run.status.value}); nothing to cancel")
    instance.run_coordinator.cancel_run(run.run_id)
    return instance.get_run_by_id(run.run_id).status


def format_table(rows: Sequence[object], columns: Iterable[str]) -> str:
    """A fixed-width table of dataclass rows, one line per row under an upper-case header."""
    columns = list(columns)
    cells = [[c.upper() for c in columns]]
    for row in rows:
        values = [str(getattr(row, c)) for c in columns]
        if columns and columns[0] == "run_id":
            values[0] = values[0][:SHORT_ID]
        cells.append(values)
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )
