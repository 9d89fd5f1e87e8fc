"""Rate cards and usage built in code for the billing tests (every tier gets the same prices)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from spotify_jobs.billing.rates import RateCard, RateCardBook
from spotify_jobs.billing.usage import Resource, UsageRecord
from spotify_jobs.tenancy.tiers import TIER_ORDER

TENANT = "acme-music"


def card(
    version: str,
    effective_from: str,
    prices: dict[str, str],
    *,
    discount: str = "0",
    credits: tuple[dict, ...] = (),
    currency: str = "EUR",
) -> RateCard:
    """A card pricing every tier with `prices`; TENANT is on plan 'growth' with `discount` percent off."""
    return RateCard.model_validate(
        {
            "version": version,
            "effective_from": effective_from,
            "currency": currency,
            "prices": {tier: dict(prices) for tier in TIER_ORDER},
            "plans": {"standard": {"discount_percent": "0"}, "growth": {"discount_percent": discount}},
            "default_plan": "standard",
            "tenants": {TENANT: {"plan": "growth", "credits": list(credits)}},
        }
    )


V1_PRICES = {
    "cpu": "0.0450",
    "memory": "0.0050",
    "gpu": "2.50",
    "records": "0.25",
    "backup": "0.02",
    "storage": "0.0010",
}
V2_PRICES = {
    "cpu": "0.0400",
    "memory": "0.0045",
    "gpu": "2.25",
    "records": "0.20",
    "backup": "0.02",
    "storage": "0.0010",
}
WELCOME = {"id": "welcome", "month": "2026-03", "amount": "20.00", "description": "Welcome credit"}


def march_book() -> RateCardBook:
    """v1 from 2026-01-01, v2 from 2026-03-16 (a mid-March change); 10% growth discount; a March credit."""
    return RateCardBook(
        [
            card("v1", "2026-01-01", V1_PRICES, discount="10", credits=(WELCOME,)),
            card("v2", "2026-03-16", V2_PRICES, discount="10", credits=(WELCOME,)),
        ]
    )


def record(
    day: str, resource: Resource, quantity: str, tier: str = "large", tenant: str = TENANT
) -> UsageRecord:
    return UsageRecord(day, tenant, resource, tier, "data-etl", Decimal(quantity), 1)


def march_usage() -> dict[str, list[UsageRecord]]:
    """Usage by day; the invoice it gives is worked out by hand in test_invoice.py."""
    usage: dict[str, list[UsageRecord]] = {}

    def add(day: str, resource: Resource, quantity: str) -> None:
        usage.setdefault(day, []).append(record(day, resource, quantity))

    add("2026-03-01", Resource.CPU, "500000")
    add("2026-03-15", Resource.CPU, "486760")
    add("2026-03-16", Resource.CPU, "1000000")
    add("2026-03-31", Resource.CPU, "80000")
    add("2026-03-02", Resource.MEMORY, "3947040")
    add("2026-03-20", Resource.GPU, "37800")
    add("2026-03-10", Resource.RECORDS, "12345000")
    for day in range(1, 32):
        add(f"2026-03-{day:02d}", Resource.STORAGE, "50")
    return usage


def march_day_with(day: str, resource: Resource, quantity: str) -> list[UsageRecord]:
    """The day's March usage with `resource` re-metered as `quantity` (as a late re-run of metering writes it)."""
    others = [r for r in march_usage().get(day, []) if r.resource != resource]
    return [*others, record(day, resource, quantity)]


def as_date(day: str) -> date:
    return date.fromisoformat(day)
