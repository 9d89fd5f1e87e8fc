"""Reads a Dagster instance's own records of one UTC day's finished runs into plain `RunFacts`.

The only billing module that touches Dagster's instance API; everything it returns is plain data that
`spotify_jobs.billing.usage.meter_runs` prices into usage without Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import dagster as dg

from spotify_jobs.billing.usage import RunFacts, StepFacts, day_bounds

FINISHED_STATUSES = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def finished_runs_on(
    instance: dg.DagsterInstance,
    day: date,
    load_steps: Callable[[Mapping[str, str]], bool] = lambda tags: True,
) -> list[RunFacts]:
    """Every run that ended on `day` (UTC); steps are loaded only for runs whose tags `load_steps` accepts."""
    start, end = day_bounds(day)
    # A run that ended on the day was created before its end and last updated no earlier than its end.
    records = instance.get_run_records(
        dg.RunsFilter(statuses=list(FINISHED_STATUSES), updated_after=start, created_before=end)
    )
    facts = []
    for record in records:
        if record.end_time is None or not start.timestamp() <= record.end_time < end.timestamp():
            continue
        run = record.dagster_run
        tags = dict(run.tags)
        steps = _steps(instance, run, record.end_time) if load_steps(tags) else ()
        facts.append(RunFacts(run.run_id, run.job_name, run.status.value, tags, record.end_time, steps))
    return sorted(facts, key=lambda f: (f.end_time, f.run_id))


def _steps(instance: dg.DagsterInstance, run: dg.DagsterRun, run_end: float) -> tuple[StepFacts, ...]:
    op_tags: dict[str, Mapping[str, str]] = {}
    if run.execution_plan_snapshot_id:
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        # Mapped steps run as `op[mapping_key]`; the plan holds them once as `op[?]`.
        op_tags = {_unmapped(step.key): dict(step.tags or {}) for step in plan.steps}
    steps = []
    for stats in instance.get_run_step_stats(run.run_id):
        steps.append(
            StepFacts(
                step_key=stats.step_key,
                tags=op_tags.get(_unmapped(stats.step_key), {}),
                duration_ms=_duration_ms(stats, run_end),
                materialisations=tuple(
                    _integer_metadata(event.asset_materialization.metadata)
                    for event in stats.materialization_events
                    if event.asset_materialization is not None
                ),
            )
        )
    return tuple(sorted(steps, key=lambda s: s.step_key))


def _unmapped(step_key: str) -> str:
    return step_key.split("[", 1)[0]


def _duration_ms(stats, run_end: float) -> int:
    """All attempts of a step (each its own pod); an attempt cut off by the run's end ends with the run."""
    attempts = [(a.start_time, a.end_time) for a in stats.attempts_list if a.start_time is not None]
    if not attempts and stats.start_time is not None:
        attempts = [(stats.start_time, stats.end_time)]
    return sum(max(0, round(((stop or run_end) - begin) * 1000)) for begin, stop in attempts)


def _integer_metadata(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, int]:
    return {
        key: value.value
        for key, value in metadata.items()
        if isinstance(value, dg.IntMetadataValue) and value.value is not None
    }
