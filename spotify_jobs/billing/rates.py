"""Rate cards: versioned YAML price lists with effective dates, plan discounts and per-tenant credits.

One file per version in `rate_cards/`. A card is in force from its `effective_from` (a UTC date) until
the day before the next card's, so a change on the 15th prices the 1st-14th with the old card and the
15th onwards with the new one. Prices are per billing unit (see `spotify_jobs.billing.invoice`) and per
tier; every card prices every tier and resource. Money is exact: write prices and amounts as quoted
strings ('0.045'); floats are refused, because YAML would round them before we see them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from spotify_jobs.billing.usage import RESOURCE_ORDER, Resource
from spotify_jobs.tenancy.registry import validate_tenant_id
from spotify_jobs.tenancy.tiers import TIER_ORDER

DEFAULT_RATE_CARDS_DIR = Path(__file__).with_name("rate_cards")
PRICE_PLACES = 6
MONTH_FORMAT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class RateCardError(ValueError):
    """A rate card or set of cards that cannot price an invoice; the message names the file and field."""


def _exact(value: object) -> object:
    if isinstance(value, float | bool):
        raise ValueError(
            f"{value!r} is not exact: write money and percentages as quoted strings, e.g. '0.045'"
        )
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact)]


def _places(value: Decimal) -> int:
    return max(0, -value.as_tuple().exponent)


def canonical(value: Decimal) -> str:
    """A Decimal as the shortest plain string ('0.04', '100'): equal amounts hash equally."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def validate_month(month: str) -> str:
    """`month` if it is YYYY-MM; ValueError otherwise."""
    if not isinstance(month, str) or not MONTH_FORMAT.match(month):
        raise ValueError(f"invalid month {month!r}: expected YYYY-MM, e.g. 2026-03")
    return month


def month_days(month: str) -> list[date]:
    """Every UTC day of a YYYY-MM month."""
    first = date.fromisoformat(validate_month(month) + "-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return [first + timedelta(days=n) for n in range((following - first).days)]


class Credit(BaseModel):
    """A fixed amount taken off one month's invoice of one tenant (after discounts, never below zero)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    month: str
    amount: ExactDecimal = Field(gt=0)
    description: str

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        return validate_month(value)

    @field_validator("amount")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        if _places(value) > 2:
            raise ValueError(f"credit {value} has more than 2 decimal places")
        return value

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "month": self.month,
            "amount": canonical(self.amount),
            "description": self.description,
        }


class Plan(BaseModel):
    """A commercial plan: a percentage off every charge priced with the card that defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discount_percent: ExactDecimal = Field(ge=0, le=100)
    description: str = ""


class TenantTerms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: str | None = None
    credits: tuple[Credit, ...] = ()


class RateCard(BaseModel):
    """One version of the price list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    effective_from: date
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    prices: dict[str, dict[Resource, ExactDecimal]]
    plans: dict[str, Plan]
    default_plan: str
    tenants: dict[str, TenantTerms] = {}

    @field_validator("prices")
    @classmethod
    def _every_tier_and_resource(cls, prices: dict[str, dict[Resource, Decimal]]) -> dict:
        unknown = sorted(set(prices) - set(TIER_ORDER))
        if unknown:
            raise ValueError(f"unknown tiers {unknown}; allowed: {', '.join(TIER_ORDER)}")
        for tier in TIER_ORDER:
            if tier not in prices:
                raise ValueError(f"tier {tier!r} has no prices; every card prices every tier")
            missing = [r.value for r in RESOURCE_ORDER if r not in prices[tier]]
            if missing:
                raise ValueError(f"tier {tier!r} has no price for {missing}")
            for resource, price in prices[tier].items():
                if not price.is_finite() or price < 0:
                    raise ValueError(f"{tier}.{resource.value} price {price} must be a number >= 0")
                if _places(price) > PRICE_PLACES:
                    raise ValueError(
                        f"{tier}.{resource.value} price {price} has more than {PRICE_PLACES} places"
                    )
        return prices

    @field_validator("tenants")
    @classmethod
    def _tenant_ids(cls, tenants: dict[str, TenantTerms]) -> dict[str, TenantTerms]:
        for tenant_id, terms in tenants.items():
            validate_tenant_id(tenant_id)
            ids = [c.id for c in terms.credits]
            if len(ids) != len(set(ids)):
                raise ValueError(f"tenant {tenant_id!r} lists a credit id twice: {ids}")
        return tenants

    @model_validator(mode="after")
    def _plans_exist(self) -> RateCard:
        named = {self.default_plan} | {t.plan for t in self.tenants.values() if t.plan}
        missing = sorted(named - set(self.plans))
        if missing:
            raise ValueError(f"plans {missing} are used but not defined under 'plans'")
        return self

    def rates_for(self, tenant_id: str) -> TenantRates:
        """What this card charges `tenant_id`: prices, plan and discount (credits are per month)."""
        plan_name = self.tenants.get(tenant_id, TenantTerms()).plan or self.default_plan
        return TenantRates(
            version=self.version,
            effective_from=self.effective_from,
            currency=self.currency,
            prices={tier: dict(self.prices[tier]) for tier in TIER_ORDER},
            plan=plan_name,
            discount_percent=self.plans[plan_name].discount_percent,
        )


@dataclass(frozen=True)
class TenantRates:
    """One card as it applies to one tenant: the part an invoice depends on, frozen into the ledger."""

    version: str
    effective_from: date
    currency: str
    prices: Mapping[str, Mapping[Resource, Decimal]]
    plan: str
    discount_percent: Decimal

    def price(self, tier: str, resource: Resource) -> Decimal:
        try:
            return self.prices[tier][resource]
        except KeyError:
            raise RateCardError(
                f"rate card {self.version} has no price for {tier}.{resource.value}"
            ) from None

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "effective_from": self.effective_from.isoformat(),
            "currency": self.currency,
            "prices": {
                tier: {
                    r.value: canonical(self.prices[tier][r]) for r in RESOURCE_ORDER if r in self.prices[tier]
                }
                for tier in TIER_ORDER
                if tier in self.prices
            },
            "plan": self.plan,
            "discount_percent": canonical(self.discount_percent),
        }

    @classmethod
    def from_json(cls, raw: Mapping) -> TenantRates:
        return cls(
            version=raw["version"],
            effective_from=date.fromisoformat(raw["effective_from"]),
            currency=raw["currency"],
            prices={
                tier: {Resource(r): Decimal(p) for r, p in by_resource.items()}
                for tier, by_resource in raw["prices"].items()
            },
            plan=raw["plan"],
            discount_percent=Decimal(raw["discount_percent"]),
        )


def rates_on(rates: Iterable[TenantRates], day: date) -> TenantRates:
    """The card in force on `day` among `rates`: the latest whose effective_from is not after it."""
    in_force = [r for r in rates if r.effective_from <= day]
    if not in_force:
        raise RateCardError(f"no rate card in force on {day.isoformat()}")
    return max(in_force, key=lambda r: r.effective_from)


class RateCardBook:
    """Every version of the rate card, ordered by effective date; one currency throughout."""

    def __init__(self, cards: Sequence[RateCard]):
        if not cards:
            raise RateCardError("no rate cards: at least one version is needed")
        self.cards = sorted(cards, key=lambda c: c.effective_from)
        for attribute in ("version", "effective_from"):
            values = [getattr(c, attribute) for c in self.cards]
            duplicated = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicated:
                raise RateCardError(f"two rate cards share {attribute} {', '.join(duplicated)}")
        currencies = sorted({c.currency for c in self.cards})
        if len(currencies) != 1:
            raise RateCardError(f"rate cards mix currencies {currencies}; one book has one currency")
        self.currency = currencies[0]

    def card_on(self, day: date) -> RateCard:
        in_force = [c for c in self.cards if c.effective_from <= day]
        if not in_force:
            raise RateCardError(
                f"no rate card in force on {day.isoformat()}: the earliest takes effect "
                f"{self.cards[0].effective_from.isoformat()}"
            )
        return in_force[-1]

    def cards_during(self, month: str) -> list[RateCard]:
        """The cards in force on at least one day of the month, oldest first."""
        seen: dict[str, RateCard] = {}
        for day in month_days(month):
            card = self.card_on(day)
            seen.setdefault(card.version, card)
        return list(seen.values())

    def credits_for(self, tenant_id: str, month: str) -> tuple[Credit, ...]:
        """The tenant's credits for `month` from the cards in force during it, by id."""
        found: dict[str, Credit] = {}
        for card in self.cards_during(month):
            for credit in card.tenants.get(tenant_id, TenantTerms()).credits:
                if credit.month != month:
                    continue
                if credit.id in found and found[credit.id] != credit:
                    raise RateCardError(
                        f"credit {credit.id!r} of {tenant_id} differs between rate card versions"
                    )
                found[credit.id] = credit
        return tuple(found[k] for k in sorted(found))


def load_rate_cards(directory: Path | str = DEFAULT_RATE_CARDS_DIR) -> RateCardBook:
    """Every `*.yaml` card in `directory`, validated."""
    directory = Path(directory)
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise RateCardError(f"no rate cards (*.yaml) in {directory}")
    cards = []
    for path in paths:
        try:
            raw = yaml.safe_load(path.read_text())
            cards.append(RateCard.model_validate(raw))
        except (OSError, yaml.YAMLError) as exc:
            raise RateCardError(f"cannot read rate card {path}: {exc}") from exc
        except (ValidationError, InvalidOperation) as exc:
            raise RateCardError(f"invalid rate card {path}: {exc}") from exc
    return RateCardBook(cards)
