"""Operator verbs of the old manage-jobs.sh, on Dagster's run queue: create-*-job, create-tenant-jobs,
list-jobs, monitor-job, cancel-job, offboard-tenant, and render-run-queue.

`create-*` submit a tenant's run to the run queue of the instance in $DAGSTER_HOME, with the run config and
tags a schedule would give it, exactly as `dagster job launch` submits (one JSON line per run). With
DRY_RUN=true (or --dry-run) they print the run config, the tags and every step's Kubernetes Job manifest
as YAML documents and submit nothing. Tenant, tier and priority default to the tenant's registry entry;
anything unknown is refused with the list of what is allowed (exit 2).
"""

from __future__ import annotations

import getpass
import json
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import dagster as dg
import yaml
from dagster._core.errors import DagsterHomeNotSetError

from spotify_jobs.automation.offboarding import RETRYABLE, final_backup_run, offboard, require_onboarded
from spotify_jobs.automation.run_queue import (
    PARALLEL_JOBS_ENV,
    instance_queue_config,
    open_workspace,
    submit_tenant_run,
)
from spotify_jobs.automation.run_requests import tenant_run
from spotify_jobs.automation.runs import (
    FINISHED,
    STATUS_FILTERS,
    cancel_run,
    find_run,
    follow_run,
    format_table,
    list_runs,
    log_lines,
    step_timeline,
)
from spotify_jobs.cli.common import fail_on_bad_input, tenant_job_spec
from spotify_jobs.jobs import TenantJobFactory, TenantJobSpec
from spotify_jobs.k8s.config import PlacementError
from spotify_jobs.k8s.manifests import ManifestRenderer
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import Settings, load_settings
from spotify_jobs.tenancy.registry import TenantRegistry, load_registry
from spotify_jobs.tenancy.tiers import JobType

DEFAULT_WORKSPACE = Path("workspace.yaml")
CREATE_VERBS = {
    "create-etl-job": JobType.DATA_ETL,
    "create-ml-job": JobType.ML_TRAINING,
    "create-backup-job": JobType.TENANT_BACKUP,
    "create-security-job": JobType.SECURITY_SCAN,
    "create-billing-job": JobType.BILLING_REPORT,
}


def _emit(payload: dict) -> None:
    click.echo(json.dumps(payload, default=str))


def _actor() -> str:
    return f"user:{getpass.getuser()}"


@contextmanager
def dagster_home_instance():
    """The instance of $DAGSTER_HOME, with a clear error when it is not set."""
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise click.UsageError(
            "set DAGSTER_HOME to the directory of the Dagster instance (make sets it)"
        ) from None
    with instance:
        yield instance


def _tenant(settings: Settings, registry: TenantRegistry, tenant: str | None) -> str:
    tenant = tenant or settings.tenant_id
    if not tenant:
        raise click.UsageError(
            f"no tenant: pass --tenant or set TENANT_ID; registered: {', '.join(registry.ids)}"
        )
    return registry.get(tenant).id


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


_workspace_option = click.option(
    "--workspace",
    "workspace_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_WORKSPACE,
    show_default=True,
    help="Workspace file naming the code location (the daemon's).",
)


def _tenant_run_options(command):
    for option in reversed(
        [
            click.option("--tenant", default=None, help="Tenant id (default: TENANT_ID)."),
            click.option(
                "--priority", default=None, help="critical|high|normal|low|batch (default: the tenant's)."
            ),
            click.option(
                "--tier",
                default=None,
                help="micro|small|medium|large|xlarge|enterprise (default: the tenant's).",
            ),
            click.option("--date", default=None, help="Partition date YYYY-MM-DD (default: today, UTC)."),
            click.option(
                "--dry-run/--no-dry-run",
                default=None,
                help="Print run config, tags and step manifests; submit nothing (default: DRY_RUN).",
            ),
            _workspace_option,
        ]
    ):
        command = option(command)
    return command


def _dry_run(settings: Settings, registry: TenantRegistry, specs, tenant, when, tier, priority) -> None:
    """The k8s run config, tags and step manifests of each run, as YAML documents; nothing submitted."""
    k8s_settings = settings.model_copy(update={"executor": "k8s"})
    factory = TenantJobFactory(k8s_settings, registry)
    documents = []
    with ManifestRenderer(k8s_settings) as renderer:
        for spec in specs:
            run_config, tags = tenant_run(
                factory, spec, tenant, when, tier=tier, priority=priority, actor=_actor()
            )
            manifests = renderer.render(spec.name, run_config, tags)
            documents.append(
                {
                    "dry_run": True,
                    "submitted": False,
                    "job": spec.name,
                    "tenant": tenant,
                    "partition": str(spec.partition_key(tenant, when)),
                    "run_config": run_config,
                    "tags": tags,
                    "steps": [m.step_key for m in manifests],
                }
            )
            documents.extend(m.body for m in manifests)
    click.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)


def _create(
    job_types: list[JobType],
    *,
    tenant: str | None,
    priority: str | None,
    tier: str | None,
    date: str | None,
    dry_run: bool | None,
    workspace_file: Path,
    skip_refused: bool,
) -> None:
    settings = load_settings()
    registry = load_registry(settings.tenant_registry)
    tenant = _tenant(settings, registry, tenant)
    when = date or _today()
    factory = TenantJobFactory(settings, registry)
    specs: list[TenantJobSpec] = []
    for job_type in job_types:
        spec = tenant_job_spec(job_type.value)
        try:
            tenant_run(factory, spec, tenant, when, tier=tier, priority=priority)  # refuse before any I/O
        except PlacementError as refused:
            if not skip_refused:
                raise
            _emit({"job": spec.name, "tenant": tenant, "submitted": False, "refused": str(refused)})
            continue
        specs.append(spec)
    if settings.dry_run if dry_run is None else dry_run:
        _dry_run(settings, registry, specs, tenant, when, tier, priority)
        return
    with dagster_home_instance() as instance, open_workspace(instance, workspace_file) as context:
        workspace = context.create_request_context()
        for spec in specs:
            run = submit_tenant_run(
                workspace, factory, spec, tenant, when, tier=tier, priority=priority, actor=_actor()
            )
            _emit(
                {
                    "job": spec.name,
                    "tenant": tenant,
                    "submitted": True,
                    "run_id": run.run_id,
                    "partition": run.tags.get("dagster/partition"),
                    "priority": run.tags.get("spotify-jobs/priority"),
                    "tier": run.tags.get("spotify-jobs/tier"),
                    "status": run.status.value,
                }
            )


def _create_command(verb: str, job_type: JobType) -> click.Command:
    @click.command(verb)
    @_tenant_run_options
    @fail_on_bad_input
    def command(tenant, priority, tier, date, dry_run, workspace_file) -> None:
        _create(
            [job_type],
            tenant=tenant,
            priority=priority,
            tier=tier,
            date=date,
            dry_run=dry_run,
            workspace_file=workspace_file,
            skip_refused=False,
        )

    command.help = (
        f"Queue one tenant's {job_type.spec.job_name} run (one JSON line), or with --dry-run print its run "
        "config, tags and step manifests."
    )
    return command


create_commands = [_create_command(verb, job_type) for verb, job_type in CREATE_VERBS.items()]


@click.command("create-tenant-jobs")
@_tenant_run_options
@fail_on_bad_input
def create_tenant_jobs(tenant, priority, tier, date, dry_run, workspace_file) -> None:
    """Queue every job type for one tenant (one JSON line each); job types the tenant cannot run (e.g.
    training without GPU quota) are reported as refused and skipped."""
    from spotify_jobs.definitions import TENANT_JOBS

    _create(
        list(TENANT_JOBS),
        tenant=tenant,
        priority=priority,
        tier=tier,
        date=date,
        dry_run=dry_run,
        workspace_file=workspace_file,
        skip_refused=True,
    )


@click.command("list-jobs")
@click.option(
    "--filter",
    "status",
    type=click.Choice(list(STATUS_FILTERS)),
    default=None,
    help="Only runs in this state.",
)
@click.option("--tenant", default=None, help="Only this tenant's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per run instead of the table.")
@fail_on_bad_input
def list_jobs(status: str | None, tenant: str | None, limit: int, as_json: bool) -> None:
    """Runs in the instance, newest first: id, job, tenant, partition, priority, status, created, duration."""
    settings = load_settings()
    if tenant:
        load_registry(settings.tenant_registry).get(tenant)
    with dagster_home_instance() as instance:
        rows = list_runs(instance, status, tenant, limit)
    if as_json:
        for row in rows:
            _emit(row.__dict__)
        return
    columns = ("run_id", "job", "tenant", "partition", "priority", "status", "created", "duration")
    click.echo(format_table(rows, columns) if rows else "no runs match")


@click.command("monitor-job")
@click.option("--run", "run_id", required=True, help="Run id, or its first characters (as list-jobs shows).")
@click.option(
    "--follow/--no-follow", default=True, show_default=True, help="Stream new log lines until it ends."
)
@click.option(
    "--lines", type=click.IntRange(min=0), default=20, show_default=True, help="Last log lines shown."
)
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Stop following after N seconds.")
@fail_on_bad_input
def monitor_job(run_id: str, follow: bool, lines: int, interval: float, timeout: float | None) -> None:
    """A run's status, step timeline and last log lines; follows it until it ends. Exit 1 when it failed
    or was cancelled, 3 when it was still going when --timeout ran out."""
    with dagster_home_instance() as instance:
        run = find_run(instance, run_id)
        click.echo(
            f"run {run.run_id}  job {run.job_name}  tenant {run.tags.get('spotify-jobs/tenant', '-')}  "
            f"partition {run.tags.get('dagster/partition', '-')}  status {run.status.value}"
        )
        shown = log_lines(instance, run.run_id, last=lines) if lines else []
        for line in shown:
            click.echo(str(line))
        status = run.status
        if follow and status not in FINISHED:
            status = follow_run(
                instance,
                run.run_id,
                lambda line: click.echo(str(line)),
                after=shown[-1].storage_id if shown else None,
                interval=interval,
                timeout=timeout,
            )
        timeline = step_timeline(instance, run.run_id)
    click.echo(
        "\nsteps:\n"
        + (
            format_table(timeline, ("step", "status", "start", "end", "duration", "attempts"))
            if timeline
            else "no step has started"
        )
    )
    click.echo(f"\nstatus: {status.value}")
    if status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        raise SystemExit(1)
    if follow and status not in FINISHED:
        raise SystemExit(3)


@click.command("cancel-job")
@click.option("--run", "run_id", required=True, help="Run id, or its first characters.")
@click.option(
    "--dry-run/--no-dry-run", default=None, help="Only say what would be cancelled (default: DRY_RUN)."
)
@fail_on_bad_input
def cancel_job(run_id: str, dry_run: bool | None) -> None:
    """Cancel a queued run (it never starts) or a running one (its steps are terminated)."""
    settings = load_settings()
    with dagster_home_instance() as instance:
        run = find_run(instance, run_id)
        if settings.dry_run if dry_run is None else dry_run:
            if run.status in FINISHED:
                raise ValueError(f"run {run.run_id} already ended ({run.status.value}); nothing to cancel")
            _emit(
                {"run_id": run.run_id, "job": run.job_name, "status": run.status.value, "would_cancel": True}
            )
            return
        status = cancel_run(instance, run)
    _emit({"run_id": run.run_id, "job": run.job_name, "cancelled": True, "status": status.value})


@click.command("offboard-tenant")
@click.option("--tenant", default=None, help="Tenant id (default: TENANT_ID).")
@click.option("--date", default=None, help="Partition date of the final backup (default: today, UTC).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    help="Seconds to wait for the final backup; run again to resume.",
)
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@click.option("--dry-run/--no-dry-run", default=None, help="Only say what would happen (default: DRY_RUN).")
@_workspace_option
@fail_on_bad_input
def offboard_tenant(tenant, date, timeout, interval, dry_run, workspace_file) -> None:
    """Take a final backup of a tenant, and only once it succeeded remove its `tenants` partition (no
    schedule or sensor starts runs for it after that). One JSON line; exit 1 while not offboarded."""
    settings = load_settings()
    registry = load_registry(settings.tenant_registry)
    tenant = _tenant(settings, registry, tenant)
    spec = tenant_job_spec(JobType.TENANT_BACKUP.value)
    with dagster_home_instance() as instance:
        require_onboarded(instance, tenant)
        if settings.dry_run if dry_run is None else dry_run:
            backup = final_backup_run(instance, tenant)
            reuse = backup is not None and backup.status not in RETRYABLE
            _emit(
                {
                    "tenant": tenant,
                    "dry_run": True,
                    "final_backup": backup.run_id if reuse else f"would submit {spec.name}",
                    "then": "remove the tenants partition once the final backup succeeded",
                }
            )
            return
        with open_workspace(instance, workspace_file) as context:
            outcome = offboard(
                context,
                TenantJobFactory(settings, registry),
                spec,
                PlatformResource.from_settings(settings),
                tenant,
                date or _today(),
                actor=_actor(),
                timeout=timeout,
                interval=interval,
                on_line=lambda line: click.echo(str(line), err=True),
                on_submit=lambda run: click.echo(f"final backup {run.run_id} queued", err=True),
            )
    if not outcome.offboarded:
        _emit(
            {
                "tenant": tenant,
                "offboarded": False,
                "final_backup_run": outcome.backup.run_id,
                "status": outcome.backup.status.value,
                "next": "run offboard-tenant again: it waits for this backup, or submits a new one if it failed",
            }
        )
        raise SystemExit(1)
    _emit(
        {
            "tenant": tenant,
            "offboarded": True,
            "final_backup_run": outcome.backup.run_id,
            "audit_seq": outcome.audit_seq,
            "next": f"delete {tenant} from the tenant registry ({settings.tenant_registry})",
        }
    )


@click.command("render-run-queue")
@click.option(
    "--max-concurrent-runs",
    default=PARALLEL_JOBS_ENV,
    show_default=True,
    help="A number, or the environment variable the instance reads it from.",
)
@fail_on_bad_input
def render_run_queue(max_concurrent_runs: str) -> None:
    """The run_coordinator and run_retries sections of dagster.yaml for the tenant registry."""
    settings = load_settings()
    value = int(max_concurrent_runs) if max_concurrent_runs.isdigit() else max_concurrent_runs
    config = instance_queue_config(load_registry(settings.tenant_registry), value)
    click.echo(yaml.safe_dump(config, sort_keys=False), nl=False)


commands = [
    *create_commands,
    create_tenant_jobs,
    list_jobs,
    monitor_job,
    cancel_job,
    offboard_tenant,
    render_run_queue,
]
