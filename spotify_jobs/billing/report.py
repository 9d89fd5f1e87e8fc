"""One tenant's monthly report: read usage, add late-usage adjustments, price, render, and close the month.

The asset and the CLI both call `build_month_report`. A month closes the first time its report is built
with `close=True` after the month has ended (UTC); from then on it is re-rendered from its ledger entry,
byte for byte. Usage metered after the close is not lost and not silently re-billed: the next month to
close carries it as adjustment lines (usage now recorded minus usage already billed, per day, resource
and tier), looking back ADJUSTMENT_LOOKBACK_MONTHS closed months.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from spotify_jobs.billing.invoice import (
    Invoice,
    InvoiceError,
    InvoiceInputs,
    UsageRow,
    price_invoice,
    row_order,
    rows_for_days,
)
from spotify_jobs.billing.ledger import (
    LedgerEntry,
    closed_months,
    read_ledger,
    report_key,
    write_ledger,
)
from spotify_jobs.billing.rates import (
    RateCardBook,
    RateCardError,
    TenantRates,
    month_days,
    validate_month,
)
from spotify_jobs.billing.render import REPORT_FILES, render_report, sha256
from spotify_jobs.billing.usage import Resource, UsageRecord, day_bounds, quantise, read_usage
from spotify_jobs.storage.tenant_storage import TenantStorage

ADJUSTMENT_LOOKBACK_MONTHS = 12
UsageKey = tuple[str, Resource, str]  # (date, resource, tier)


@dataclass(frozen=True)
class MonthReport:
    invoice: Invoice
    inputs: InvoiceInputs
    files: dict[str, bytes]
    reproduced: bool = False  # re-rendered from the closed month's ledger entry
    matches_ledger: bool | None = None  # closed: the re-rendered files hash as the ledger recorded
    missing_usage_days: tuple[str, ...] = ()  # ended days with no usage record file
    late_usage: tuple[UsageRow, ...] = ()  # closed: usage recorded after the close, for the next month
    written: tuple[str, ...] = ()  # URIs this call wrote


def month_of(partition_month_start: str) -> str:
    """'2026-03-01' (a monthly partition key) -> '2026-03'."""
    return validate_month(partition_month_start[:7])


def month_end(month: str) -> datetime:
    """The first instant after the month, UTC."""
    return day_bounds(month_days(month)[-1])[1]


def _previous_months(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:])
    months = []
    for _ in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        months.append(f"{year:04d}-{number:02d}")
    return months


def usage_quantities(records: Iterable[UsageRecord]) -> dict[UsageKey, Decimal]:
    """{(date, resource, tier): quantity} summed over job types: the level invoices price at."""
    quantities: dict[UsageKey, Decimal] = defaultdict(Decimal)
    for record in records:
        quantities[(record.date, record.resource, record.tier)] += record.quantity
    return dict(quantities)


def month_usage(
    storage: TenantStorage, month: str, now: datetime | None = None
) -> tuple[dict[UsageKey, Decimal], list[str], set[str]]:
    """({(date, resource, tier): quantity}, ended days with no usage file, days with a usage file)."""
    records: list[UsageRecord] = []
    missing, present = [], set()
    for day in month_days(month):
        day_records = read_usage(storage, day)
        if day_records is None:
            if now is None or day_bounds(day)[1] <= now:
                missing.append(day.isoformat())
            continue
        present.add(day.isoformat())
        records.extend(day_records)
    return usage_quantities(records), missing, present


def billed_usage(entries: Iterable[LedgerEntry], usage_month: str) -> dict[UsageKey, Decimal]:
    """What the closed months' invoices have billed of `usage_month`: its own usage plus later adjustments."""
    billed: dict[UsageKey, Decimal] = defaultdict(Decimal)
    for entry in entries:
        rows = entry.inputs.usage if entry.month == usage_month else entry.inputs.adjustments
        for row in rows:
            if row.usage_month == usage_month:
                billed[row.key] += row.quantity
    return dict(billed)


def _late_rows(
    storage: TenantStorage, usage_entry: LedgerEntry, entries: list[LedgerEntry]
) -> list[UsageRow]:
    """Usage of a closed month recorded now minus what has been billed of it, priced with its frozen cards.

    Only days that have a usage file now are compared: a missing file is no evidence of zero usage.
    """
    usage_month = usage_entry.month
    current, _, present = month_usage(storage, usage_month)
    billed = billed_usage(entries, usage_month)
    deltas = {
        key: quantise(current.get(key, Decimal(0)) - billed.get(key, Decimal(0)))
        for key in set(current) | set(billed)
        if key[0] in present
    }
    return rows_for_days(usage_month, deltas, usage_entry.inputs.rates.values())


def pending_adjustments(storage: TenantStorage, month: str, entries: list[LedgerEntry]) -> list[UsageRow]:
    """Late usage of the closed months before `month` (within the lookback) not yet billed anywhere."""
    window = set(_previous_months(month, ADJUSTMENT_LOOKBACK_MONTHS))
    rows: list[UsageRow] = []
    for entry in entries:
        if entry.month in window:
            rows.extend(_late_rows(storage, entry, entries))
    return sorted(rows, key=row_order)


def assemble_inputs(
    tenant: str,
    month: str,
    usage: dict[UsageKey, Decimal],
    adjustments: list[UsageRow],
    book: RateCardBook,
    frozen: Iterable[TenantRates] = (),
) -> InvoiceInputs:
    """Invoice inputs: usage tagged with the card in force on its day, plus the cards adjustments use.

    `frozen` are the cards closed months were billed with; a version that differs from the book's card
    of the same version means a card was edited after it billed a month, which is refused.
    """
    rates: dict[str, TenantRates] = {
        card.version: card.rates_for(tenant) for card in book.cards_during(month)
    }
    frozen_by_version: dict[str, TenantRates] = {}
    for frozen_rates in frozen:
        known = rates.get(frozen_rates.version) or frozen_by_version.get(frozen_rates.version)
        if known is not None and known.to_json() != frozen_rates.to_json():
            raise RateCardError(
                f"rate card {frozen_rates.version} differs from the version that billed a closed month of "
                f"{tenant}; publish a change as a new version with a new effective date"
            )
        frozen_by_version[frozen_rates.version] = frozen_rates
    month_versions = list(rates)
    for row in adjustments:
        if row.rate_card_version not in rates and row.rate_card_version not in frozen_by_version:
            raise InvoiceError(
                f"adjustment {row} names rate card {row.rate_card_version}, which billed no closed month"
            )
        rates.setdefault(row.rate_card_version, frozen_by_version.get(row.rate_card_version))
    usage_rows = rows_for_days(month, usage, [rates[v] for v in month_versions])
    return InvoiceInputs(
        tenant=tenant,
        month=month,
        usage=tuple(usage_rows),
        adjustments=tuple(adjustments),
        rates=rates,
        credits=book.credits_for(tenant, month),
    )


def _ledger_entries(storage: TenantStorage) -> list[LedgerEntry]:
    entries = []
    for month in closed_months(storage):
        entry = read_ledger(storage, month)
        if entry is not None:
            entries.append(entry)
    return entries


def reproduce_closed(entry: LedgerEntry) -> tuple[Invoice, dict[str, bytes], bool]:
    """(invoice, files, whether every file hashes as the ledger recorded) of a closed month."""
    invoice = price_invoice(entry.inputs, "closed")
    files = render_report(invoice)
    return invoice, files, all(sha256(files[name]) == entry.files.get(name) for name in REPORT_FILES)


def build_month_report(
    storage: TenantStorage,
    book: RateCardBook,
    month: str,
    *,
    now: datetime,
    close: bool,
    store: bool,
) -> MonthReport:
    """The tenant's report for `month`; `close` closes an ended month, `store` writes files to storage.

    A closed month is reproduced from its ledger entry (and its files are written only where missing). An
    open month is priced from the usage records now stored plus pending adjustments; it closes when
    `close` is set and the month has ended, which writes its files and then its ledger entry.
    """
    month = validate_month(month)
    tenant = storage.tenant_id
    entries = _ledger_entries(storage)
    closed = next((e for e in entries if e.month == month), None)
    written: list[str] = []
    if closed is not None:
        invoice, files, matches = reproduce_closed(closed)
        if store and matches:
            for name in REPORT_FILES:
                if not storage.exists(report_key(month, name)):
                    written.append(storage.write_bytes(files[name], report_key(month, name)))
        late = _late_rows(storage, closed, entries)
        return MonthReport(invoice, closed.inputs, files, True, matches, (), tuple(late), tuple(written))

    usage, missing, _ = month_usage(storage, month, now)
    adjustments = pending_adjustments(storage, month, entries)
    frozen = [rates for entry in entries for rates in entry.inputs.rates.values()]
    inputs = assemble_inputs(tenant, month, usage, adjustments, book, frozen)
    ended = now >= month_end(month)
    invoice = price_invoice(inputs, "closed" if close and ended else "draft")
    files = render_report(invoice)
    if store or invoice.status == "closed":
        for name in REPORT_FILES:
            written.append(storage.write_bytes(files[name], report_key(month, name)))
    if invoice.status == "closed":
        entry = LedgerEntry(
            tenant=tenant,
            month=month,
            closed_at=now.astimezone(UTC).isoformat(),
            input_hash=inputs.input_hash,
            currency=invoice.currency,
            total=str(invoice.total),
            rate_card_versions=invoice.rate_card_versions,
            files={name: sha256(files[name]) for name in REPORT_FILES},
            inputs=inputs,
        )
        written.append(write_ledger(storage, entry))
    return MonthReport(invoice, inputs, files, missing_usage_days=tuple(missing), written=tuple(written))


def verify_closed_month(storage: TenantStorage, month: str) -> dict[str, object] | None:
    """For a closed month: whether a fresh render and the stored files both match the ledger, file by file.

    None while the month is open.
    """
    entry = read_ledger(storage, month)
    if entry is None:
        return None
    _, files, _ = reproduce_closed(entry)
    result: dict[str, object] = {}
    for name in REPORT_FILES:
        key = report_key(month, name)
        stored = storage.read_bytes(key) if storage.exists(key) else None
        result[name] = {
            "ledger": entry.files.get(name),
            "rerendered": sha256(files[name]),
            "stored": sha256(stored) if stored is not None else None,
            "identical": stored is not None
            and stored == files[name]
            and sha256(stored) == entry.files.get(name),
        }
    return result
