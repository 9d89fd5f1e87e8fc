"""What the billing report's asset checks verify, on the files as stored (read back, not as computed).

Each function returns a list of problems; an empty list passes.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal

from spotify_jobs.billing.ledger import read_ledger, report_key
from spotify_jobs.billing.render import CSV_NAME, PARQUET_NAME, TOTAL_KIND, read_report
from spotify_jobs.billing.report import month_usage
from spotify_jobs.storage.tenant_storage import TenantStorage

Row = Mapping[str, object]


class ReportMissing(LookupError):
    """The month's report files are not in storage."""


def stored_report(
    storage: TenantStorage, month: str
) -> tuple[dict[str, object], list[Row], list[dict[str, str]]]:
    """(summary, Parquet rows, CSV rows) of the stored report."""
    keys = [report_key(month, name) for name in (PARQUET_NAME, CSV_NAME)]
    missing = [storage.uri(k) for k in keys if not storage.exists(k)]
    if missing:
        raise ReportMissing(
            f"no billing report for {storage.tenant_id} {month}: missing {', '.join(missing)}"
        )
    facts, rows = read_report(storage.read_bytes(keys[0]))
    csv_rows = list(csv.DictReader(io.StringIO(storage.read_bytes(keys[1]).decode())))
    return facts, rows, csv_rows


def reconcile_lines(
    facts: Mapping[str, object], rows: Sequence[Row], csv_rows: Sequence[Mapping[str, str]]
) -> list[str]:
    """Lines add up to the total row and the summary; subtotal + discounts + credits = total; CSV = Parquet."""
    problems = []
    totals = [r for r in rows if r["kind"] == TOTAL_KIND]
    lines = [r for r in rows if r["kind"] != TOTAL_KIND]
    if len(totals) != 1 or rows[-1]["kind"] != TOTAL_KIND:
        return [f"expected exactly one total row, last; found {len(totals)}"]
    line_sum = sum((r["amount"] for r in lines), Decimal("0.00"))
    total = totals[0]["amount"]
    if line_sum != total:
        problems.append(f"lines sum to {line_sum}, the total row says {total}")
    if Decimal(str(facts["total"])) != total:
        problems.append(f"summary total {facts['total']} differs from the total row {total}")
    parts = sum((Decimal(str(facts[k])) for k in ("subtotal", "discounts", "credits")), Decimal(0))
    if parts != total:
        problems.append(f"subtotal + discounts + credits = {parts}, total = {total}")
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for r in lines:
        by_kind[str(r["kind"])] += r["amount"]
    charges = by_kind["usage"] + by_kind["adjustment"]
    if charges != Decimal(str(facts["subtotal"])):
        problems.append(f"charge lines sum to {charges}, subtotal says {facts['subtotal']}")
    csv_amounts = [Decimal(r["amount"]) for r in csv_rows]
    if csv_amounts != [r["amount"] for r in rows]:
        problems.append("the CSV's amounts differ from the Parquet's")
    return problems


def usage_totals(entries: Sequence[tuple[str, str, Decimal]]) -> dict[tuple[str, str], Decimal]:
    """{(resource, tier): quantity} of (resource, tier, quantity) entries."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for resource, tier, quantity in entries:
        totals[(resource, tier)] += quantity
    return {k: v for k, v in totals.items() if v != 0}


def reported_usage(rows: Sequence[Row]) -> dict[tuple[str, str], Decimal]:
    """Metered usage the report's usage lines bill, by (resource, tier)."""
    return usage_totals(
        [(str(r["resource"]), str(r["tier"]), r["metered_quantity"]) for r in rows if r["kind"] == "usage"]
    )


def recorded_usage(storage: TenantStorage, month: str) -> tuple[dict[tuple[str, str], Decimal], str]:
    """(usage by (resource, tier), where from): the closed month's billed records, else the stored records."""
    entry = read_ledger(storage, month)
    if entry is not None:
        entries = [(row.resource.value, row.tier, row.quantity) for row in entry.inputs.usage]
        return usage_totals(entries), "ledger"
    quantities, _, _ = month_usage(storage, month)
    return usage_totals([(r.value, tier, q) for (_, r, tier), q in quantities.items()]), "usage records"


def compare_usage(reported: Mapping, recorded: Mapping) -> list[str]:
    return [
        f"{resource} ({tier}): report bills {reported.get((resource, tier), 0)}, "
        f"records hold {recorded.get((resource, tier), 0)}"
        for resource, tier in sorted(set(reported) | set(recorded))
        if reported.get((resource, tier), Decimal(0)) != recorded.get((resource, tier), Decimal(0))
    ]


def negative_amounts(facts: Mapping[str, object], rows: Sequence[Row]) -> list[str]:
    """Usage lines, unit prices and the total are never negative; credits never positive.

    Adjustment lines may be negative (a refund of usage billed too high) and discounts are negative by
    nature; the total may not go below zero.
    """
    problems = []
    for r in rows:
        where = f"line {r['line_no']} ({r['kind']}: {r['description']})"
        if r["kind"] == "usage":
            for column in ("metered_quantity", "quantity", "amount"):
                if r[column] is not None and r[column] < 0:
                    problems.append(f"{where}: {column} {r[column]} < 0")
        if r["unit_price"] is not None and r["unit_price"] < 0:
            problems.append(f"{where}: unit price {r['unit_price']} < 0")
        if r["kind"] == "credit" and r["amount"] > 0:
            problems.append(f"{where}: a credit adds {r['amount']}")
    if Decimal(str(facts["total"])) < 0:
        problems.append(f"total {facts['total']} < 0")
    return problems
