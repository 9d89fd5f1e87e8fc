"""Monthly reports over storage: closing, byte-identical re-runs, late usage as next-month adjustments, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from spotify_jobs.billing.checks import (
    compare_usage,
    negative_amounts,
    reconcile_lines,
    recorded_usage,
    reported_usage,
    stored_report,
)
from spotify_jobs.billing.ledger import LedgerError, ledger_key, read_ledger, report_key, write_ledger
from spotify_jobs.billing.rates import RateCardBook, RateCardError
from spotify_jobs.billing.render import REPORT_FILES
from spotify_jobs.billing.report import build_month_report, verify_closed_month
from spotify_jobs.billing.usage import Resource, write_usage
from spotify_jobs.cli.billing import billing
from spotify_jobs_tests.billing.cards import (
    TENANT,
    V1_PRICES,
    V2_PRICES,
    as_date,
    card,
    march_book,
    march_day_with,
    march_usage,
    record,
)

APRIL_2 = datetime(2026, 4, 2, tzinfo=UTC)
MAY_2 = datetime(2026, 5, 2, tzinfo=UTC)


@pytest.fixture
def storage(platform):
    storage = platform.tenant_storage(TENANT)
    for day, records in march_usage().items():
        write_usage(storage, as_date(day), records)
    return storage


def _report(storage, month, book=None, now=APRIL_2, close=True, store=True):
    return build_month_report(storage, book or march_book(), month, now=now, close=close, store=store)


def _stored(storage, month) -> dict[str, bytes]:
    return {name: storage.read_bytes(report_key(month, name)) for name in REPORT_FILES}


def test_closing_a_month_stores_the_hand_computed_invoice_and_its_ledger(storage):
    report = _report(storage, "2026-03")
    assert report.invoice.status == "closed" and report.invoice.total == Decimal("32.27")
    assert _stored(storage, "2026-03") == report.files
    entry = read_ledger(storage, "2026-03")
    assert entry.input_hash == report.invoice.input_hash and entry.total == "32.27"
    assert entry.rate_card_versions == ("v1", "v2")
    facts, rows, csv_rows = stored_report(storage, "2026-03")
    assert reconcile_lines(facts, rows, csv_rows) == []
    assert negative_amounts(facts, rows) == []
    assert compare_usage(reported_usage(rows), recorded_usage(storage, "2026-03")[0]) == []


def test_re_running_a_closed_month_is_byte_identical_even_if_usage_and_cards_change(storage):
    first = _report(storage, "2026-03")
    write_usage(storage, as_date("2026-03-31"), march_day_with("2026-03-31", Resource.CPU, "116000"))
    cheaper = RateCardBook([card("v1", "2026-01-01", V1_PRICES), card("v9", "2026-03-02", V2_PRICES)])
    again = _report(storage, "2026-03", book=cheaper, now=MAY_2)
    assert again.reproduced and again.matches_ledger
    assert again.files == first.files == _stored(storage, "2026-03")
    assert [(row.date, row.resource, row.quantity) for row in again.late_usage] == [
        ("2026-03-31", Resource.CPU, Decimal("36000"))
    ]
    assert all(facts["identical"] for facts in verify_closed_month(storage, "2026-03").values())


def test_late_usage_after_close_is_an_adjustment_of_the_next_month_priced_with_the_closed_card(storage):
    _report(storage, "2026-03")
    # 10 more core-hours on 31 March arrive after March closed (previously 80000 s that day).
    write_usage(storage, as_date("2026-03-31"), march_day_with("2026-03-31", Resource.CPU, "116000"))
    write_usage(storage, as_date("2026-04-10"), [record("2026-04-10", Resource.CPU, "72000")])
    # A card published later, effective 20 March, must not reprice closed March usage.
    book = RateCardBook(
        [
            card("v1", "2026-01-01", V1_PRICES, discount="10"),
            card("v2", "2026-03-16", V2_PRICES, discount="10"),
            card("v3", "2026-03-20", {**V2_PRICES, "cpu": "0.0300"}, discount="10"),
        ]
    )
    april = _report(storage, "2026-04", book=book, now=MAY_2)
    # By hand: adjustment 10 h x 0.04 (v2, March's card for the 31st) = 0.40; April 20 h x 0.03 (v3) = 0.60;
    # discounts 10% per card: -0.04 (v2), -0.06 (v3); total 0.90.
    assert [
        (line.kind, line.usage_month, line.rate_card_version, str(line.amount))
        for line in april.invoice.lines
    ] == [
        ("usage", "2026-04", "v3", "0.60"),
        ("adjustment", "2026-03", "v2", "0.40"),
        ("discount", "", "v2", "-0.04"),
        ("discount", "", "v3", "-0.06"),
    ]
    assert april.invoice.total == Decimal("0.90")
    assert april.invoice.lines[1].description == "Late usage of 2026-03: cpu (large tier)"
    # March stays as billed; the late usage is billed once: May carries no further adjustment.
    assert _report(storage, "2026-03", book=book, now=MAY_2).invoice.total == Decimal("32.27")
    may = _report(storage, "2026-05", book=book, now=datetime(2026, 6, 1, tzinfo=UTC))
    assert may.invoice.lines == () and may.invoice.total == Decimal("0.00")


def test_usage_lowered_after_close_is_refunded_by_a_negative_adjustment(storage):
    _report(storage, "2026-03")
    write_usage(
        storage, as_date("2026-03-31"), march_day_with("2026-03-31", Resource.CPU, "8000")
    )  # was 80000
    april = _report(storage, "2026-04", now=MAY_2)
    # -72000 s = -20 core-hours x 0.04 = -0.80; 10% of -0.80 = +0.08; total -0.72 (a refund)
    assert [(line.kind, str(line.amount)) for line in april.invoice.lines] == [
        ("adjustment", "-0.80"),
        ("discount", "0.08"),
    ]
    facts, rows, _ = stored_report(storage, "2026-04")
    assert negative_amounts(facts, rows) == ["total -0.72 < 0"]


def test_an_open_month_is_a_draft_and_does_not_close(storage):
    report = _report(storage, "2026-03", now=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert report.invoice.status == "draft"
    assert not storage.exists(ledger_key("2026-03"))
    assert verify_closed_month(storage, "2026-03") is None
    preview = _report(storage, "2026-03", close=False, store=False)
    assert preview.invoice.status == "draft" and preview.written == ()
    assert preview.invoice.input_hash == report.invoice.input_hash


def test_zero_usage_tenant_closes_at_zero_and_reports_missing_days(platform):
    storage = platform.tenant_storage("quiet-tenant")
    write_usage(storage, as_date("2026-03-01"), [])
    report = _report(storage, "2026-03")
    assert report.invoice.total == Decimal("0.00") and report.invoice.status == "closed"
    assert len(report.missing_usage_days) == 30 and "2026-03-01" not in report.missing_usage_days
    assert read_ledger(storage, "2026-03").total == "0.00"


def test_closed_months_are_immutable_and_tampering_is_detected(storage):
    _report(storage, "2026-03")
    entry = read_ledger(storage, "2026-03")
    with pytest.raises(LedgerError, match="already closed"):
        write_ledger(storage, entry)
    storage.write_bytes(b"tenant,month\n", report_key("2026-03", "invoice.csv"))
    assert verify_closed_month(storage, "2026-03")["invoice.csv"]["identical"] is False
    raw = storage.read_json(ledger_key("2026-03"))
    raw["inputs"]["usage"][0]["quantity"] = "1"
    storage.write_json(raw, ledger_key("2026-03"))
    with pytest.raises(LedgerError, match="was altered"):
        read_ledger(storage, "2026-03")


def test_editing_a_card_that_billed_a_closed_month_is_refused(storage):
    _report(storage, "2026-03")
    edited = RateCardBook(
        [
            card("v1", "2026-01-01", V1_PRICES, discount="10"),
            card("v2", "2026-03-16", {**V2_PRICES, "cpu": "0.01"}),
        ]
    )
    with pytest.raises(
        RateCardError, match="rate card v2 differs from the version that billed a closed month"
    ):
        _report(storage, "2026-04", book=edited, now=MAY_2)


def test_cli_report_writes_the_assets_files_and_one_json_line(platform, settings, tmp_path, monkeypatch):
    tenant = "startup-042"
    storage = platform.tenant_storage(tenant)
    write_usage(
        storage, as_date("2026-03-05"), [record("2026-03-05", Resource.CPU, "36000", "small", tenant)]
    )
    closed = build_month_report(storage, march_book(), "2026-03", now=APRIL_2, close=True, store=True)
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", settings.data_root)
    monkeypatch.setenv("SPOTIFY_JOBS_BACKUP_ROOT", settings.backup_root)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        billing, ["report", "--tenant", tenant, "--month", "2026-03", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["total"] == str(closed.invoice.total) and line["input_hash"] == closed.invoice.input_hash
    assert line["status"] == "closed"
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == closed.files


def test_cli_report_refuses_bad_input_with_a_clear_message(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", settings.data_root)
    runner = CliRunner()
    result = runner.invoke(
        billing, ["report", "--tenant", "nobody", "--month", "2026-03", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "unknown tenant 'nobody'" in result.output
    result = runner.invoke(
        billing, ["report", "--tenant", "startup-042", "--month", "March", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "expected YYYY-MM" in result.output


def test_usage_check_catches_a_draft_report_that_no_longer_matches_the_records(storage):
    _report(storage, "2026-03", now=datetime(2026, 3, 31, tzinfo=UTC))
    _, rows, _ = stored_report(storage, "2026-03")
    assert compare_usage(reported_usage(rows), recorded_usage(storage, "2026-03")[0]) == []
    write_usage(storage, as_date("2026-03-02"), march_day_with("2026-03-02", Resource.MEMORY, "1"))
    problems = compare_usage(reported_usage(rows), recorded_usage(storage, "2026-03")[0])
    assert problems == ["memory (large): report bills 3947040.000000000, records hold 1.000000000"]
