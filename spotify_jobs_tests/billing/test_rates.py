"""Rate cards: the shipped cards load, bad cards are refused naming the problem, the card in force is chosen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import yaml

from spotify_jobs.billing.rates import (
    DEFAULT_RATE_CARDS_DIR,
    RateCardBook,
    RateCardError,
    load_rate_cards,
    month_days,
)
from spotify_jobs.billing.usage import RESOURCE_ORDER
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import TIER_ORDER
from spotify_jobs_tests.billing.cards import TENANT, V1_PRICES, V2_PRICES, WELCOME, card


def test_shipped_rate_cards_price_every_tier_and_registered_tenant():
    book = load_rate_cards()
    assert book.currency == "EUR"
    for rate_card in book.cards:
        for tier in TIER_ORDER:
            assert set(rate_card.prices[tier]) == set(RESOURCE_ORDER)
        for tenant in load_registry().ids:
            assert rate_card.rates_for(tenant).plan in rate_card.plans


def test_card_in_force_changes_on_its_effective_date():
    book = RateCardBook([card("v2", "2026-03-16", V2_PRICES), card("v1", "2026-01-01", V1_PRICES)])
    assert book.card_on(date(2026, 3, 15)).version == "v1"
    assert book.card_on(date(2026, 3, 16)).version == "v2"
    assert [c.version for c in book.cards_during("2026-03")] == ["v1", "v2"]
    assert [c.version for c in book.cards_during("2026-04")] == ["v2"]
    with pytest.raises(RateCardError, match="earliest takes effect 2026-01-01"):
        book.card_on(date(2025, 12, 31))


def test_credits_of_a_month_are_taken_once_across_versions():
    book = RateCardBook(
        [
            card("v1", "2026-01-01", V1_PRICES, credits=(WELCOME,)),
            card("v2", "2026-03-16", V2_PRICES, credits=(WELCOME,)),
        ]
    )
    assert [c.id for c in book.credits_for(TENANT, "2026-03")] == ["welcome"]
    assert book.credits_for(TENANT, "2026-04") == ()
    assert book.credits_for("someone-else", "2026-03") == ()
    changed = {**WELCOME, "amount": "25.00"}
    book = RateCardBook(
        [
            card("v1", "2026-01-01", V1_PRICES, credits=(WELCOME,)),
            card("v2", "2026-03-16", V2_PRICES, credits=(changed,)),
        ]
    )
    with pytest.raises(RateCardError, match="differs between rate card versions"):
        book.credits_for(TENANT, "2026-03")


def _write(directory, name: str, raw: dict) -> None:
    (directory / name).write_text(yaml.safe_dump(raw))


def _raw() -> dict:
    """The shipped first card as YAML data (prices still quoted strings)."""
    return yaml.safe_load((DEFAULT_RATE_CARDS_DIR / "2026-01.yaml").read_text())


def test_a_valid_card_written_as_yaml_loads(tmp_path):
    _write(tmp_path, "a.yaml", _raw())
    assert load_rate_cards(tmp_path).cards[0].prices["small"][RESOURCE_ORDER[0]] == Decimal("0.048")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["prices"]["small"].update(cpu=0.048), "not exact"),
        (lambda r: r["prices"].pop("micro"), "tier 'micro' has no prices"),
        (lambda r: r["prices"]["small"].pop("gpu"), "no price for \\['gpu'\\]"),
        (lambda r: r["prices"]["small"].update(cpu="-1"), "must be a number >= 0"),
        (lambda r: r["prices"]["small"].update(cpu="0.0000001"), "more than 6 places"),
        (lambda r: r["prices"].update(huge=r["prices"]["small"]), "unknown tiers \\['huge'\\]"),
        (lambda r: r.update(default_plan="gold"), "plans \\['gold'\\] are used but not defined"),
        (lambda r: r.update(currency="euro"), "currency"),
        (lambda r: r["tenants"].update({"Bad_Tenant": {"plan": "standard"}}), "DNS-1123"),
        (lambda r: r["plans"]["growth"].update(discount_percent="150"), "less than or equal to 100"),
        (lambda r: r.update(surprise=1), "surprise"),
    ],
)
def test_invalid_cards_are_refused_naming_file_and_field(tmp_path, mutate, message):
    raw = _raw()
    mutate(raw)
    _write(tmp_path, "bad.yaml", raw)
    with pytest.raises(RateCardError, match=message) as error:
        load_rate_cards(tmp_path)
    assert "bad.yaml" in str(error.value)


def test_a_book_must_be_consistent(tmp_path):
    with pytest.raises(RateCardError, match="share version v1"):
        RateCardBook([card("v1", "2026-01-01", V1_PRICES), card("v1", "2026-02-01", V1_PRICES)])
    with pytest.raises(RateCardError, match="share effective_from 2026-01-01"):
        RateCardBook([card("v1", "2026-01-01", V1_PRICES), card("v2", "2026-01-01", V1_PRICES)])
    with pytest.raises(RateCardError, match="mix currencies"):
        RateCardBook(
            [card("v1", "2026-01-01", V1_PRICES), card("v2", "2026-02-01", V1_PRICES, currency="USD")]
        )
    with pytest.raises(RateCardError, match="no rate cards"):
        load_rate_cards(tmp_path)


def test_month_days_covers_the_calendar_month():
    assert len(month_days("2026-02")) == 28 and len(month_days("2028-02")) == 29
    assert month_days("2026-12")[-1] == date(2026, 12, 31)
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        month_days("2026-13")
