"""`generate-data` (demo exports into a tenant's landing zone) and `bench etl` (the ETL on a folder)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.etl.generator import VARIANTS, GenerationConfig, generate_exports
from spotify_jobs.etl.pipeline import run_directory
from spotify_jobs.etl.schema import ETL_OUTPUTS
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import validate_tenant_id


def _date(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    import datetime as dt

    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


@click.command("generate-data")
@click.option("--tenant", required=True, help="Tenant whose landing zone receives the exports.")
@click.option("--date", "date", required=True, callback=_date, help="Landing date, YYYY-MM-DD.")
@click.option(
    "--records", type=click.IntRange(min=1), required=True, help="Records to write (readable files)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--variant", type=click.Choice(VARIANTS), default="new", show_default=True, help="Export format."
)
@click.option("--data-root", default=None, help="Directory or s3://bucket/prefix; default: settings.")
@click.option(
    "--duplicate-share", type=float, default=0.005, show_default=True, help="Share of exact duplicates."
)
@click.option(
    "--malformed-share", type=float, default=0.002, show_default=True, help="Share of malformed records."
)
@click.option("--replace", is_flag=True, help="Replace what the landing date folder already holds.")
@fail_on_bad_input
def generate_data(
    tenant: str,
    date: str,
    records: int,
    seed: int,
    variant: str,
    data_root: str | None,
    duplicate_share: float,
    malformed_share: float,
    replace: bool,
) -> None:
    """Write Spotify Extended Streaming History exports to <data-root>/tenants/<tenant>/landing/<date>/."""
    settings = load_settings(**({"data_root": data_root} if data_root else {}))
    storage = PlatformResource.from_settings(settings).tenant_storage(validate_tenant_id(tenant))
    config = GenerationConfig(
        records=records,
        seed=seed,
        variant=variant,
        duplicate_share=duplicate_share,
        malformed_share=malformed_share,
    )
    report = generate_exports(storage, date, config, replace=replace)
    click.echo(json.dumps({**report.as_dict(), "landing": storage.uri("landing", date)}))


@click.command("etl")
@click.option(
    "--input",
    "input_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder laid out like a landing date folder: <export-id>/Streaming_History_Audio_*.json.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="Tenant whose pseudonymisation key to use.")
@click.option(
    "--outputs",
    default=",".join(ETL_OUTPUTS),
    show_default=True,
    help="Comma-separated outputs to write; without listening_events fewer fields are decoded.",
)
@fail_on_bad_input
def bench_etl(input_dir: Path, out_dir: Path, tenant: str, outputs: str) -> None:
    """Run the ETL's own code on a folder (no Dagster); write <out>/<output>.parquet; print one JSON line."""
    settings = load_settings()
    line = run_directory(
        input_dir,
        out_dir,
        tenant,
        settings.pseudonym_secret.get_secret_value(),
        outputs=[name.strip() for name in outputs.split(",") if name.strip()],
    )
    click.echo(json.dumps(line))
