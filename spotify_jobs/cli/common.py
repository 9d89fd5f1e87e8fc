"""What every CLI command shares: turning bad input into a clear error, and finding jobs by name."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from spotify_jobs.jobs import TenantJobSpec
from spotify_jobs.k8s.config import PlacementError
from spotify_jobs.settings import SettingsError
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.tenancy.registry import TenantRegistryError, UnknownTenant

BAD_INPUT = (SettingsError, TenantRegistryError, UnknownTenant, PlacementError, StorageError, ValueError)


def fail_on_bad_input(command: Callable) -> Callable:
    """Report bad input (unknown tenant, tier, priority, job; invalid settings; storage failures) as one
    clear line and exit code 2, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BAD_INPUT as exc:
            raise click.UsageError(str(exc)) from exc

    return wrapper


def tenant_job_spec(name: str) -> TenantJobSpec:
    """The tenant job called `name` (`data_etl_job`) or of job type `name` (`data-etl`, `etl`)."""
    from spotify_jobs.definitions import TENANT_JOBS  # loads the code location only when a command needs it

    for spec in TENANT_JOBS.values():
        if name in (spec.name, spec.job_type.value, spec.job_type.value.split("-")[-1]):
            return spec
    allowed = ", ".join(spec.name for spec in TENANT_JOBS.values())
    raise ValueError(f"unknown job {name!r}; allowed: {allowed}")
