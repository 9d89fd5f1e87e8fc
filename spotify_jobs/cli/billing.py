"""`spotify-jobs billing`: monthly billing reports from the command line (same code as the asset)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from spotify_jobs.billing.invoice import InvoiceError
from spotify_jobs.billing.ledger import LedgerError
from spotify_jobs.billing.rates import DEFAULT_RATE_CARDS_DIR, RateCardError, load_rate_cards, validate_month
from spotify_jobs.billing.report import build_month_report
from spotify_jobs.billing.usage import UsageFileError
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import SettingsError, load_settings
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.tenancy.registry import InvalidTenantId, UnknownTenant


def _month(_ctx, _param, value: str) -> str:
    try:
        return validate_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group("billing")
def billing() -> None:
    """Monthly invoices per tenant, priced from metered usage."""


@billing.command("report")
@click.option("--tenant", required=True, help="Tenant id, as in the tenant registry.")
@click.option("--month", required=True, callback=_month, help="Usage month, YYYY-MM (UTC).")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write invoice.csv, invoice.parquet and invoice.html into.",
)
@click.option(
    "--rate-cards",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DEFAULT_RATE_CARDS_DIR,
    show_default=True,
    help="Directory of rate card YAML files.",
)
def report(tenant: str, month: str, out_dir: Path, rate_cards: Path) -> None:
    """Write one tenant's report for MONTH into OUT and print one JSON line with the total and input hash.

    A closed month is reproduced from its ledger, byte for byte; an open month is a draft priced from the
    usage recorded so far. This command never closes a month (the billing_report asset does).
    """
    try:
        settings = load_settings()
        platform = PlatformResource.from_settings(settings)
        platform.tenant(tenant)
        result = build_month_report(
            platform.tenant_storage(tenant),
            load_rate_cards(rate_cards),
            month,
            now=datetime.now(UTC),
            close=False,
            store=False,
        )
    except (SettingsError, InvalidTenantId, UnknownTenant, RateCardError, InvoiceError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from None
    except (StorageError, UsageFileError) as exc:
        raise click.ClickException(f"cannot read billing data: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sorted(result.files.items()):
        path = out_dir / name
        path.write_bytes(data)
        paths.append(str(path))
    invoice = result.invoice
    click.echo(
        json.dumps(
            {
                "tenant": invoice.tenant,
                "month": invoice.month,
                "status": invoice.status,
                "total": str(invoice.total),
                "currency": invoice.currency,
                "input_hash": invoice.input_hash,
                "rate_card_versions": list(invoice.rate_card_versions),
                "files": paths,
            },
            sort_keys=True,
        )
    )
