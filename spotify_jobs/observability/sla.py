"""SLA and utilisation figures per job type and tenant over a window, from the Dagster instance.

`compute_sla(instance, since, until)` reads the runs that ended in [since, until) and the `usage/...` step
metadata that `metering.step_meter` recorded for them, and returns an `SlaReport`:

- success rate: runs that succeeded over runs that succeeded or failed (cancelled runs are counted apart:
  somebody chose to stop them);
- error rate: step executions that failed (attempts later retried included) over all metered executions;
- p50 / p95 duration: run start to end, linear interpolation between ranks (numpy's default);
- CPU used versus reserved: CPU seconds over reserved cores x wall seconds, summed over steps;
- memory used versus reserved: peak RSS over reserved memory, the worst step and the mean.

Each row is checked against `targets.py`; `SlaReport.breaches()` lists what missed. `summarise()` does the
arithmetic on plain facts, so it is testable without an instance.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import dagster as dg

from spotify_jobs.observability.metering import PLATFORM_TENANT, USAGE_PREFIX
from spotify_jobs.observability.metrics import UNKNOWN
from spotify_jobs.observability.runs import run_job_type, run_tenant
from spotify_jobs.observability.targets import (
    CPU_UTILISATION_LIMIT,
    ERROR_RATE_LIMIT,
    MEMORY_UTILISATION_LIMIT,
    P95_DURATION_SLA_SECONDS,
    SUCCESS_RATE_TARGET,
)
from spotify_jobs.tenancy.tiers import JobType

ALL = "*"
_ENDED = {
    dg.DagsterRunStatus.SUCCESS: "success",
    dg.DagsterRunStatus.FAILURE: "failure",
    dg.DagsterRunStatus.CANCELED: "canceled",
}
_PAGE = 1000


@dataclass(frozen=True)
class RunFact:
    run_id: str
    tenant: str
    job_type: str
    outcome: str  # success, failure or canceled
    start: float | None
    end: float

    @property
    def duration(self) -> float | None:
        return self.end - self.start if self.start is not None else None


@dataclass(frozen=True)
class StepFact:
    run_id: str
    step_key: str
    attempt: int
    tenant: str
    job_type: str
    outcome: str
    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int
    reserved_cpu_cores: float | None
    reserved_memory_bytes: int | None
    pushed: bool


@dataclass(frozen=True)
class SlaRow:
    job_type: str
    tenant: str
    runs: int
    succeeded: int
    failed: int
    canceled: int
    success_rate: float | None
    step_executions: int
    step_failures: int
    error_rate: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    p95_sla_seconds: int | None
    cpu_seconds: float
    reserved_cpu_seconds: float
    cpu_utilisation: float | None
    memory_utilisation_max: float | None
    memory_utilisation_mean: float | None
    steps_not_pushed: int
    breaches: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class SlaReport:
    since: datetime
    until: datetime
    rows: tuple[SlaRow, ...]

    @property
    def total(self) -> SlaRow:
        return next(r for r in self.rows if r.job_type == ALL and r.tenant == ALL)

    def row(self, job_type: str, tenant: str = ALL) -> SlaRow:
        for row in self.rows:
            if row.job_type == job_type and row.tenant == tenant:
                return row
        raise KeyError(f"no SLA row for job type {job_type!r} and tenant {tenant!r}")

    def breaches(self) -> list[str]:
        return [f"{r.job_type}/{r.tenant}: {b}" for r in self.rows for b in r.breaches]

    def as_dict(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": [asdict(r) for r in self.rows],
            "breaches": self.breaches(),
        }

    def summary_table(self) -> str:
        """A fixed-width text table, one line per job type x tenant (and the totals), for terminals and logs."""
        header = (
            "job_type", "tenant", "runs", "ok", "fail", "cancel", "success", "errors", "p50", "p95", "p95 SLA",
            "cpu/res", "mem max", "breaches",
        )  # fmt: skip
        lines = [header]
        for r in self.rows:
            lines.append(
                (
                    r.job_type, r.tenant, str(r.runs), str(r.succeeded), str(r.failed), str(r.canceled),
                    _pct(r.success_rate), _pct(r.error_rate), _dur(r.p50_seconds), _dur(r.p95_seconds),
                    _dur(r.p95_sla_seconds), _pct(r.cpu_utilisation), _pct(r.memory_utilisation_max),
                    str(len(r.breaches)) if r.breaches else "-",
                )
            )  # fmt: skip
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        title = f"SLA {self.since.isoformat()} .. {self.until.isoformat()}"
        body = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
        ]
        return "\n".join([title, *body, *(f"BREACH {b}" for b in self.breaches())])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.2f}h"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _sla_seconds(job_type: str) -> int | None:
    try:
        return P95_DURATION_SLA_SECONDS[JobType(job_type)]
    except ValueError:
        return None


def _row(job_type: str, tenant: str, runs: list[RunFact], steps: list[StepFact]) -> SlaRow:
    succeeded = sum(r.outcome == "success" for r in runs)
    failed = sum(r.outcome == "failure" for r in runs)
    canceled = sum(r.outcome == "canceled" for r in runs)
    durations = [r.duration for r in runs if r.outcome in ("success", "failure") and r.duration is not None]
    step_failures = sum(s.outcome == "failure" for s in steps)
    reserved_steps = [s for s in steps if s.reserved_cpu_cores]
    cpu = sum(s.cpu_seconds for s in reserved_steps)
    reserved_cpu = sum(s.wall_seconds * s.reserved_cpu_cores for s in reserved_steps)
    memory = [s.peak_memory_bytes / s.reserved_memory_bytes for s in steps if s.reserved_memory_bytes]
    p95 = percentile(durations, 95)
    sla = _sla_seconds(job_type)
    row = SlaRow(
        job_type=job_type,
        tenant=tenant,
        runs=len(runs),
        succeeded=succeeded,
        failed=failed,
        canceled=canceled,
        success_rate=succeeded / (succeeded + failed) if succeeded + failed else None,
        step_executions=len(steps),
        step_failures=step_failures,
        error_rate=step_failures / len(steps) if steps else None,
        p50_seconds=percentile(durations, 50),
        p95_seconds=p95,
        p95_sla_seconds=sla,
        cpu_seconds=cpu,
        reserved_cpu_seconds=reserved_cpu,
        cpu_utilisation=cpu / reserved_cpu if reserved_cpu > 0 else None,
        memory_utilisation_max=max(memory) if memory else None,
        memory_utilisation_mean=statistics.fmean(memory) if memory else None,
        steps_not_pushed=sum(not s.pushed for s in steps),
    )
    breaches = []
    if row.success_rate is not None and row.success_rate < SUCCESS_RATE_TARGET:
        breaches.append(f"success rate {_pct(row.success_rate)} < {_pct(SUCCESS_RATE_TARGET)}")
    if row.error_rate is not None and row.error_rate >= ERROR_RATE_LIMIT:
        breaches.append(f"error rate {_pct(row.error_rate)} >= {_pct(ERROR_RATE_LIMIT)}")
    if p95 is not None and sla is not None and p95 > sla:
        breaches.append(f"p95 duration {_dur(p95)} > SLA {_dur(sla)}")
    if row.cpu_utilisation is not None and row.cpu_utilisation > CPU_UTILISATION_LIMIT:
        breaches.append(f"CPU {_pct(row.cpu_utilisation)} of reserved > {_pct(CPU_UTILISATION_LIMIT)}")
    if row.memory_utilisation_max is not None and row.memory_utilisation_max > MEMORY_UTILISATION_LIMIT:
        breaches.append(
            f"memory {_pct(row.memory_utilisation_max)} of reserved > {_pct(MEMORY_UTILISATION_LIMIT)}"
        )
    return SlaRow(**{**asdict(row), "breaches": tuple(breaches)})


def summarise(
    runs: Iterable[RunFact], steps: Iterable[StepFact], since: datetime, until: datetime
) -> SlaReport:
    """Rows per (job type, tenant), per job type over all tenants, and one total row (`*`, `*`)."""
    runs, steps = list(runs), list(steps)
    keys = {(r.job_type, r.tenant) for r in runs} | {(s.job_type, s.tenant) for s in steps}
    rows = []
    for job_type in sorted({k[0] for k in keys}):
        for tenant in sorted({t for j, t in keys if j == job_type}):
            rows.append(
                _row(
                    job_type,
                    tenant,
                    [r for r in runs if (r.job_type, r.tenant) == (job_type, tenant)],
                    [s for s in steps if (s.job_type, s.tenant) == (job_type, tenant)],
                )
            )
        rows.append(
            _row(
                job_type,
                ALL,
                [r for r in runs if r.job_type == job_type],
                [s for s in steps if s.job_type == job_type],
            )
        )
    rows.append(_row(ALL, ALL, runs, steps))
    return SlaReport(since=since, until=until, rows=tuple(rows))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"window bounds must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _ended_runs(instance: dg.DagsterInstance, since: float, until: float) -> list[dg.RunRecord]:
    records, cursor = [], None
    while True:
        page = instance.get_run_records(
            dg.RunsFilter(statuses=list(_ENDED), updated_after=datetime.fromtimestamp(since, UTC)),
            limit=_PAGE,
            cursor=cursor,
        )
        records += [r for r in page if r.end_time is not None and since <= r.end_time < until]
        if len(page) < _PAGE:
            return records
        cursor = page[-1].dagster_run.run_id


def _optional(usage: dict[str, object], name: str, kind: type) -> object:
    return kind(usage[name]) if usage.get(name) is not None else None


def _step_fact(run_id: str, metadata: dict[str, object]) -> StepFact | None:
    usage = {k.removeprefix(USAGE_PREFIX): v for k, v in metadata.items() if k.startswith(USAGE_PREFIX)}
    if "outcome" not in usage:
        return None
    return StepFact(
        run_id=run_id,
        step_key=str(usage.get("step_key", "")),
        attempt=int(usage.get("attempt", 0)),
        tenant=str(usage.get("tenant", PLATFORM_TENANT)),
        job_type=str(usage.get("job_type", UNKNOWN)),
        outcome=str(usage["outcome"]),
        wall_seconds=float(usage.get("wall_seconds", 0.0)),
        cpu_seconds=float(usage.get("cpu_seconds", 0.0)),
        peak_memory_bytes=int(usage.get("peak_memory_bytes", 0)),
        reserved_cpu_cores=_optional(usage, "reserved_cpu_cores", float),
        reserved_memory_bytes=_optional(usage, "reserved_memory_bytes", int),
        pushed=bool(usage.get("pushed", False)),
    )


def _metered_steps(
    instance: dg.DagsterInstance, run_ids: set[str], after: float, before: float
) -> list[StepFact]:
    facts: dict[tuple[str, str, int], StepFact] = {}
    for asset_key in instance.get_asset_keys():
        for fetch in (instance.fetch_materializations, instance.fetch_observations):
            cursor, has_more = None, True
            while has_more:
                result = fetch(
                    dg.AssetRecordsFilter(
                        asset_key=asset_key, after_timestamp=after, before_timestamp=before
                    ),
                    limit=_PAGE,
                    cursor=cursor,
                )
                for record in result.records:
                    entry = record.event_log_entry
                    event = entry.asset_materialization or entry.asset_observation
                    if entry.run_id not in run_ids or event is None:
                        continue
                    fact = _step_fact(entry.run_id, {k: v.value for k, v in event.metadata.items()})
                    # one fact per execution, whichever asset of a multi-asset step carried it
                    if fact is not None:
                        facts[(fact.run_id, fact.step_key, fact.attempt)] = fact
                cursor, has_more = result.cursor, result.has_more
    return list(facts.values())


def _runs_and_steps(
    instance: dg.DagsterInstance, since: datetime, until: datetime
) -> tuple[list[dg.RunRecord], list[StepFact]]:
    """The runs that ended in [since, until) and their metered steps."""
    since, until = _utc(since), _utc(until)
    if until <= since:
        raise ValueError(f"empty window: until {until.isoformat()} is not after since {since.isoformat()}")
    start, end = since.timestamp(), until.timestamp()
    records = _ended_runs(instance, start, end)
    run_ids = {r.dagster_run.run_id for r in records}
    earliest = min((r.start_time or r.end_time for r in records), default=start)
    return records, (_metered_steps(instance, run_ids, earliest - 1, end + 1) if run_ids else [])


def metered_steps(instance: dg.DagsterInstance, since: datetime, until: datetime) -> list[StepFact]:
    """What every step of the runs that ended in [since, until) measured (for right-sizing)."""
    return _runs_and_steps(instance, since, until)[1]


def compute_sla(instance: dg.DagsterInstance, since: datetime, until: datetime) -> SlaReport:
    """SLA and utilisation of the runs that ended in [since, until) (timezone-aware bounds)."""
    since, until = _utc(since), _utc(until)
    records, steps = _runs_and_steps(instance, since, until)
    step_labels: dict[str, tuple[str, str]] = {}
    for step in steps:
        step_labels.setdefault(step.run_id, (step.job_type, step.tenant))
    runs = []
    for record in records:
        run = record.dagster_run
        from_steps = step_labels.get(run.run_id, (UNKNOWN, PLATFORM_TENANT))
        runs.append(
            RunFact(
                run_id=run.run_id,
                tenant=run_tenant(run.tags) or from_steps[1],
                job_type=run_job_type(run.tags) or from_steps[0],
                outcome=_ENDED[run.status],
                start=record.start_time,
                end=record.end_time,
            )
        )
    return summarise(runs, steps, since, until)
