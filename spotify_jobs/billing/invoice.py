"""Pricing: invoice inputs (usage, late-usage adjustments, frozen rate cards, credits) -> an invoice.

Rounding rule, applied in this order and nowhere else:

1. A usage line's quantity is its metered quantity converted to the billing unit (BILLING_UNITS), rounded
   half-even to 6 decimal places.
2. A line's amount is quantity x unit price, rounded half-even to the cent.
3. A discount line is -(sum of the rounded charge amounts priced with one card) x that card's plan
   percentage / 100, rounded half-even to the cent; one per card with a non-zero discount.
4. Credits are whole cents, applied in id order after discounts, each capped at what is left to pay.
5. Subtotal, discounts, credits and total are exact sums of rounded lines: the lines always add up.

Charges are grouped into one line per (resource, tier, rate card version): a rate change mid-month splits
a resource into two lines, each priced with the card in force on its days. Late usage of a month that is
already closed becomes an adjustment line in the month that closes next, priced with the card the usage
month was billed with (frozen in its ledger entry).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from spotify_jobs.billing.rates import Credit, RateCardError, TenantRates, canonical, rates_on, validate_month
from spotify_jobs.billing.usage import RESOURCE_ORDER, Resource, quantise
from spotify_jobs.tenancy.registry import validate_tenant_id
from spotify_jobs.tenancy.tiers import tier_spec

FORMAT = "spotify-jobs-billing/1"
CENT = Decimal("0.01")
BILLED_QUANTITY_PLACES = 6
_QUANTITY_QUANTUM = Decimal(1).scaleb(-BILLED_QUANTITY_PLACES)
# Billing unit and how many metered units make one.
BILLING_UNITS: dict[Resource, tuple[str, int]] = {
    Resource.CPU: ("core-hour", 3600),
    Resource.MEMORY: ("GiB-hour", 3600),
    Resource.GPU: ("GPU-hour", 3600),
    Resource.RECORDS: ("million records", 1_000_000),
    Resource.BACKUP: ("GiB backed up", 1024**3),
    Resource.STORAGE: ("GiB-day", 1),
}
ROUNDING_RULE = (
    "quantities: billing unit, half-even to 6 places; each line: quantity x unit price, half-even to the cent; "
    "discounts: per rate card, half-even to the cent; totals: exact sums of the lines"
)
CHARGE_KINDS = ("usage", "adjustment")
LINE_KINDS = (*CHARGE_KINDS, "discount", "credit")


class InvoiceError(ValueError):
    """Inputs that cannot be priced; the message says which row and why."""


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def billing_quantity(resource: Resource, metered: Decimal) -> Decimal:
    """Metered quantity in the billing unit, rounded half-even to 6 places."""
    return (metered / BILLING_UNITS[resource][1]).quantize(_QUANTITY_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class UsageRow:
    """Usage (or, for an adjustment, the change in usage) of one resource on one day, at one tier."""

    usage_month: str
    date: str
    resource: Resource
    tier: str
    quantity: Decimal
    rate_card_version: str

    def to_json(self) -> dict[str, str]:
        return {
            "usage_month": self.usage_month,
            "date": self.date,
            "resource": self.resource.value,
            "tier": self.tier,
            "quantity": canonical(self.quantity),
            "rate_card_version": self.rate_card_version,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> UsageRow:
        return cls(
            raw["usage_month"],
            raw["date"],
            Resource(raw["resource"]),
            raw["tier"],
            Decimal(raw["quantity"]),
            raw["rate_card_version"],
        )

    @property
    def key(self) -> tuple[str, Resource, str]:
        return self.date, self.resource, self.tier


def row_order(row: UsageRow) -> tuple:
    return row.usage_month, row.date, RESOURCE_ORDER.index(row.resource), tier_spec(row.tier).rank


@dataclass(frozen=True)
class InvoiceInputs:
    """Everything one month's invoice of one tenant depends on; its hash is the report's input hash."""

    tenant: str
    month: str
    usage: tuple[UsageRow, ...]
    adjustments: tuple[UsageRow, ...]
    rates: Mapping[str, TenantRates]  # by version: every card a row or the month itself uses
    credits: tuple[Credit, ...]

    def __post_init__(self):
        validate_tenant_id(self.tenant)
        validate_month(self.month)
        currencies = sorted({r.currency for r in self.rates.values()})
        if len(currencies) != 1:
            raise InvoiceError(
                f"{self.tenant} {self.month}: rate cards must share one currency, got {currencies}"
            )
        for row in (*self.usage, *self.adjustments):
            if row.rate_card_version not in self.rates:
                raise InvoiceError(
                    f"{row} is priced with rate card {row.rate_card_version}, which is missing"
                )
        for row in self.usage:
            if row.usage_month != self.month or row.quantity < 0:
                raise InvoiceError(f"usage row {row} does not belong to {self.month} or is negative")
        for row in self.adjustments:
            if row.usage_month >= self.month:
                raise InvoiceError(f"adjustment {row} is not for a month before {self.month}")

    @property
    def currency(self) -> str:
        return next(iter(self.rates.values())).currency

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "tenant": self.tenant,
            "month": self.month,
            "usage": [r.to_json() for r in sorted(self.usage, key=row_order)],
            "adjustments": [r.to_json() for r in sorted(self.adjustments, key=row_order)],
            "rate_cards": {v: self.rates[v].to_json() for v in sorted(self.rates)},
            "credits": [c.to_json() for c in sorted(self.credits, key=lambda c: c.id)],
        }

    @classmethod
    def from_json(cls, raw: Mapping) -> InvoiceInputs:
        if raw.get("format") != FORMAT:
            raise InvoiceError(f"invoice inputs in format {raw.get('format')!r}; this code reads {FORMAT!r}")
        return cls(
            tenant=raw["tenant"],
            month=raw["month"],
            usage=tuple(UsageRow.from_json(r) for r in raw["usage"]),
            adjustments=tuple(UsageRow.from_json(r) for r in raw["adjustments"]),
            rates={v: TenantRates.from_json(r) for v, r in raw["rate_cards"].items()},
            credits=tuple(Credit.model_validate(c) for c in raw["credits"]),
        )

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    @property
    def input_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()


@dataclass(frozen=True)
class Line:
    kind: str  # usage | adjustment | discount | credit
    description: str
    amount: Decimal
    resource: str = ""
    tier: str = ""
    usage_month: str = ""
    period_start: str = ""
    period_end: str = ""
    rate_card_version: str = ""
    metered_quantity: Decimal | None = None
    metered_unit: str = ""
    quantity: Decimal | None = None
    unit: str = ""
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Invoice:
    tenant: str
    month: str
    currency: str
    status: str  # closed | draft
    input_hash: str
    rate_card_versions: tuple[str, ...]
    lines: tuple[Line, ...]
    subtotal: Decimal
    discounts: Decimal
    credits: Decimal
    total: Decimal

    @property
    def invoice_number(self) -> str:
        return f"{self.tenant}-{self.month.replace('-', '')}"


def _charge_lines(rows: Iterable[UsageRow], rates: Mapping[str, TenantRates], kind: str) -> list[Line]:
    groups: dict[tuple, list[UsageRow]] = defaultdict(list)
    for row in rows:
        groups[(row.usage_month, row.resource, row.tier, row.rate_card_version)].append(row)

    def order(key: tuple) -> tuple:
        usage_month, resource, tier, version = key
        return (
            usage_month,
            RESOURCE_ORDER.index(resource),
            tier_spec(tier).rank,
            rates[version].effective_from,
        )

    lines = []
    for key in sorted(groups, key=order):
        usage_month, resource, tier, version = key
        members = groups[key]
        metered = quantise(sum((r.quantity for r in members), Decimal(0)))
        if metered == 0:
            continue
        unit, _ = BILLING_UNITS[resource]
        quantity = billing_quantity(resource, metered)
        unit_price = rates[version].price(tier, resource)
        label = f"{resource.value} ({tier} tier)"
        description = label if kind == "usage" else f"Late usage of {usage_month}: {label}"
        lines.append(
            Line(
                kind=kind,
                description=description,
                amount=to_cents(quantity * unit_price),
                resource=resource.value,
                tier=tier,
                usage_month=usage_month,
                period_start=min(r.date for r in members),
                period_end=max(r.date for r in members),
                rate_card_version=version,
                metered_quantity=metered,
                metered_unit=resource.unit,
                quantity=quantity,
                unit=unit,
                unit_price=unit_price,
            )
        )
    return lines


def price_invoice(inputs: InvoiceInputs, status: str) -> Invoice:
    """The invoice for `inputs` under the rounding rule in this module's docstring."""
    if status not in ("closed", "draft"):
        raise InvoiceError(f"invoice status {status!r}; allowed: closed, draft")
    charges = _charge_lines(inputs.usage, inputs.rates, "usage") + _charge_lines(
        inputs.adjustments, inputs.rates, "adjustment"
    )
    by_version: dict[str, Decimal] = defaultdict(Decimal)
    for line in charges:
        by_version[line.rate_card_version] += line.amount
    discounts = []
    for version in sorted(by_version, key=lambda v: inputs.rates[v].effective_from):
        rates = inputs.rates[version]
        amount = -to_cents(by_version[version] * rates.discount_percent / 100)
        if amount != 0:
            discounts.append(
                Line(
                    kind="discount",
                    description=(
                        f"{rates.plan} plan: {canonical(rates.discount_percent)}% off charges "
                        f"priced with rate card {version}"
                    ),
                    amount=amount,
                    rate_card_version=version,
                )
            )
    subtotal = sum((line.amount for line in charges), Decimal("0.00"))
    discount_total = sum((line.amount for line in discounts), Decimal("0.00"))
    remaining = subtotal + discount_total
    credit_lines = []
    for credit in sorted(inputs.credits, key=lambda c: c.id):
        if credit.month != inputs.month:
            raise InvoiceError(f"credit {credit.id} is for {credit.month}, not {inputs.month}")
        applied = min(to_cents(credit.amount), max(remaining, Decimal("0.00")))
        note = (
            ""
            if applied == credit.amount
            else f" (capped at the amount due; {canonical(credit.amount)} granted)"
        )
        credit_lines.append(Line(kind="credit", description=f"{credit.description}{note}", amount=-applied))
        remaining -= applied
    credit_total = sum((line.amount for line in credit_lines), Decimal("0.00"))
    lines = tuple(charges + discounts + credit_lines)
    return Invoice(
        tenant=inputs.tenant,
        month=inputs.month,
        currency=inputs.currency,
        status=status,
        input_hash=inputs.input_hash,
        rate_card_versions=tuple(sorted(inputs.rates, key=lambda v: inputs.rates[v].effective_from)),
        lines=lines,
        subtotal=to_cents(subtotal),
        discounts=to_cents(discount_total),
        credits=to_cents(credit_total),
        total=to_cents(subtotal + discount_total + credit_total),
    )


def rows_for_days(
    usage_month: str, quantities: Mapping[tuple[str, Resource, str], Decimal], rates: Iterable[TenantRates]
) -> list[UsageRow]:
    """Rows from {(date, resource, tier): quantity}, each tagged with the card in force on its date."""
    rates = list(rates)
    rows = []
    for (day, resource, tier), quantity in quantities.items():
        if quantity == 0:
            continue
        try:
            version = rates_on(rates, date.fromisoformat(day)).version
        except RateCardError as exc:
            raise InvoiceError(f"cannot price {resource.value} used on {day}: {exc}") from exc
        rows.append(UsageRow(usage_month, day, resource, tier, quantity, version))
    return sorted(rows, key=row_order)
