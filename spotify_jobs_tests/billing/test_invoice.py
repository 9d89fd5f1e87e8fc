"""Pricing and rendering: hand-computed invoices to the cent, the rounding rule, deterministic files."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from itertools import chain

import pyarrow.parquet as pq
import pytest

from spotify_jobs.billing.invoice import InvoiceError, InvoiceInputs, UsageRow, price_invoice
from spotify_jobs.billing.rates import RateCardBook
from spotify_jobs.billing.render import REPORT_SCHEMA, read_report, render_csv, render_html, render_parquet
from spotify_jobs.billing.report import assemble_inputs, usage_quantities
from spotify_jobs.billing.usage import Resource
from spotify_jobs_tests.billing.cards import TENANT, V1_PRICES, card, march_book, march_usage


def _quantities(usage) -> dict:
    return usage_quantities(chain.from_iterable(usage.values()))


def _march_invoice(status: str = "closed"):
    inputs = assemble_inputs(TENANT, "2026-03", _quantities(march_usage()), [], march_book())
    return inputs, price_invoice(inputs, status)


def _amounts(invoice) -> list[tuple[str, str, str, str]]:
    return [(line.kind, line.resource, line.rate_card_version, str(line.amount)) for line in invoice.lines]


def test_march_invoice_with_mid_month_rate_change_discount_and_credit_matches_hand_computation():
    # Worked by hand (v1 until 15 March, v2 from the 16th; half-even to the cent per line):
    #   cpu v1  986760 s = 274.1 h x 0.045 = 12.3345 -> 12.33   cpu v2 1080000 s = 300 h x 0.04 = 12.00
    #   memory v1 3947040 GiB-s = 1096.4 GiB-h x 0.005 = 5.482 -> 5.48
    #   gpu v2 37800 s = 10.5 h x 2.25 = 23.625 -> 23.62 (half-even; half-up would say 23.63)
    #   records v1 12.345 M x 0.25 = 3.08625 -> 3.09
    #   storage v1 15 days x 50 = 750 GiB-days x 0.001 = 0.75   v2 16 x 50 = 800 -> 0.80
    #   subtotal 58.07; discount v1 10% of 21.65 = 2.165 -> 2.16; v2 10% of 36.42 = 3.642 -> 3.64
    #   credit 20.00; total 58.07 - 5.80 - 20.00 = 32.27
    _, invoice = _march_invoice()
    assert _amounts(invoice) == [
        ("usage", "cpu", "v1", "12.33"),
        ("usage", "cpu", "v2", "12.00"),
        ("usage", "memory", "v1", "5.48"),
        ("usage", "gpu", "v2", "23.62"),
        ("usage", "records", "v1", "3.09"),
        ("usage", "storage", "v1", "0.75"),
        ("usage", "storage", "v2", "0.80"),
        ("discount", "", "v1", "-2.16"),
        ("discount", "", "v2", "-3.64"),
        ("credit", "", "", "-20.00"),
    ]
    assert (invoice.subtotal, invoice.discounts, invoice.credits, invoice.total) == (
        Decimal("58.07"),
        Decimal("-5.80"),
        Decimal("-20.00"),
        Decimal("32.27"),
    )
    cpu_v1 = invoice.lines[0]
    assert (cpu_v1.period_start, cpu_v1.period_end) == ("2026-03-01", "2026-03-15")
    assert (cpu_v1.quantity, cpu_v1.unit, cpu_v1.unit_price) == (
        Decimal("274.1"),
        "core-hour",
        Decimal("0.045"),
    )
    assert invoice.lines[1].period_start == "2026-03-16"
    assert invoice.rate_card_versions == ("v1", "v2")
    assert invoice.currency == "EUR"


def test_zero_usage_tenant_gets_an_empty_invoice_of_zero():
    inputs = assemble_inputs("quiet-tenant", "2026-03", {}, [], march_book())
    invoice = price_invoice(inputs, "closed")
    assert invoice.lines == ()
    assert (invoice.subtotal, invoice.discounts, invoice.credits, invoice.total) == (Decimal("0.00"),) * 4
    rows = list(csv.DictReader(io.StringIO(render_csv(invoice).decode())))
    assert [(r["kind"], r["amount"]) for r in rows] == [("total", "0.00")]


def test_credit_larger_than_the_bill_is_capped_at_the_amount_due():
    book = RateCardBook([card("v1", "2026-01-01", V1_PRICES, credits=({**_credit("big", "50.00")},))])
    inputs = assemble_inputs(
        TENANT, "2026-03", {("2026-03-03", Resource.CPU, "large"): Decimal(36000)}, [], book
    )
    invoice = price_invoice(inputs, "closed")
    # 10 core-hours x 0.045 = 0.45; the 50.00 credit is capped at 0.45
    assert _amounts(invoice) == [("usage", "cpu", "v1", "0.45"), ("credit", "", "", "-0.45")]
    assert invoice.total == Decimal("0.00")
    assert "capped" in invoice.lines[-1].description


def _credit(credit_id: str, amount: str) -> dict:
    return {"id": credit_id, "month": "2026-03", "amount": amount, "description": credit_id}


@pytest.mark.parametrize(
    ("core_seconds", "price", "expected"),
    [
        ("3600", "0.125", "0.12"),  # 0.125 -> even neighbour 0.12
        ("3600", "0.135", "0.14"),  # 0.135 -> even neighbour 0.14
        ("1800", "0.0250", "0.01"),  # 0.5 h x 0.025 = 0.0125 -> 0.01
        ("1", "1000", "0.28"),  # 1 s = 0.000278 h (6 places) x 1000 = 0.278 -> 0.28
        ("0", "1", None),  # nothing used, no line
    ],
)
def test_each_line_rounds_half_even_to_the_cent(core_seconds, price, expected):
    book = RateCardBook([card("v1", "2026-01-01", {**V1_PRICES, "cpu": price})])
    inputs = assemble_inputs(
        TENANT, "2026-03", {("2026-03-03", Resource.CPU, "small"): Decimal(core_seconds)}, [], book
    )
    invoice = price_invoice(inputs, "draft")
    assert [str(line.amount) for line in invoice.lines] == ([expected] if expected else [])


def test_input_hash_ignores_row_order_and_changes_with_any_input():
    inputs, _ = _march_invoice()
    shuffled = InvoiceInputs(
        inputs.tenant, inputs.month, tuple(reversed(inputs.usage)), (), dict(inputs.rates), inputs.credits
    )
    assert shuffled.input_hash == inputs.input_hash
    first = inputs.usage[0]
    changed_row = UsageRow(
        first.usage_month, first.date, first.resource, first.tier, first.quantity + 1, first.rate_card_version
    )
    changed = InvoiceInputs(
        inputs.tenant, inputs.month, (changed_row, *inputs.usage[1:]), (), dict(inputs.rates), inputs.credits
    )
    assert changed.input_hash != inputs.input_hash
    assert InvoiceInputs.from_json(inputs.to_json()).input_hash == inputs.input_hash


def test_inputs_that_cannot_be_priced_are_refused_with_the_reason():
    inputs, _ = _march_invoice()
    bad = UsageRow("2026-03", "2026-03-01", Resource.CPU, "large", Decimal("-1"), "v1")
    with pytest.raises(InvoiceError, match="negative"):
        InvoiceInputs(TENANT, "2026-03", (bad,), (), dict(inputs.rates), ())
    future = UsageRow("2026-03", "2026-03-01", Resource.CPU, "large", Decimal("1"), "v1")
    with pytest.raises(InvoiceError, match="not for a month before"):
        InvoiceInputs(TENANT, "2026-03", (), (future,), dict(inputs.rates), ())
    with pytest.raises(InvoiceError, match="missing"):
        InvoiceInputs(TENANT, "2026-03", (future,), (), {"v2": inputs.rates["v2"]}, ())
    with pytest.raises(InvoiceError, match="no rate card in force on 2025-12-31"):
        assemble_inputs(
            TENANT, "2026-03", {("2025-12-31", Resource.CPU, "large"): Decimal(1)}, [], march_book()
        )


def test_report_files_are_identical_when_rendered_again():
    _, invoice = _march_invoice()
    _, again = _march_invoice()
    assert render_csv(invoice) == render_csv(again)
    assert render_parquet(invoice) == render_parquet(again)
    assert render_html(invoice) == render_html(again)


def test_parquet_report_has_the_fixed_schema_the_lines_and_the_summary():
    _, invoice = _march_invoice()
    data = render_parquet(invoice)
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.remove_metadata() == REPORT_SCHEMA
    facts, rows = read_report(data)
    assert facts["total"] == "32.27" and facts["input_hash"] == invoice.input_hash
    assert facts["rate_card_versions"] == ["v1", "v2"]
    assert rows[-1]["kind"] == "total" and rows[-1]["amount"] == Decimal("32.27")
    assert sum(r["amount"] for r in rows[:-1]) == Decimal("32.27")
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata.metadata
    assert set(metadata) == {b"ARROW:schema", b"spotify_jobs.billing.summary"}


def test_csv_report_lines_are_exact_decimal_text():
    _, invoice = _march_invoice()
    rows = list(csv.DictReader(io.StringIO(render_csv(invoice).decode())))
    assert rows[0]["metered_quantity"] == "986760.000000000"
    assert rows[0]["quantity"] == "274.100000"
    assert rows[0]["unit_price"] == "0.045000"
    assert rows[0]["amount"] == "12.33"
    assert [r["line_no"] for r in rows] == [str(n) for n in range(1, 12)]
    assert rows[-1]["kind"] == "total" and rows[-1]["amount"] == "32.27"


def test_html_invoice_shows_draft_status_and_escapes_text():
    inputs = assemble_inputs(TENANT, "2026-03", _quantities(march_usage()), [], march_book())
    page = render_html(price_invoice(inputs, "draft")).decode()
    assert "DRAFT" in page and "32.27 EUR" in page and inputs.input_hash in page
    hostile = {**_credit("x", "1.00"), "description": "<script>alert(1)</script>"}
    book = RateCardBook([card("v1", "2026-01-01", V1_PRICES, credits=(hostile,))])
    page = render_html(price_invoice(assemble_inputs(TENANT, "2026-03", {}, [], book), "closed")).decode()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "DRAFT" not in page
