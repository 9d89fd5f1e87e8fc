"""An invoice as files: CSV and Parquet for machines, HTML for people; the same invoice gives the same bytes.

Both tables hold the lines in invoice order and then one `total` row whose amount is the sum of all the
lines above it. Every row repeats the tenant, month, currency and input hash so tables of many tenants
can be concatenated. Nothing in any file depends on when or where it was rendered.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from decimal import Decimal

import pyarrow as pa

from spotify_jobs.billing.invoice import BILLED_QUANTITY_PLACES, FORMAT, ROUNDING_RULE, Invoice, Line
from spotify_jobs.billing.rates import PRICE_PLACES
from spotify_jobs.billing.tables import parquet_bytes, read_table
from spotify_jobs.billing.usage import QUANTITY_PLACES as METERED_PLACES

CSV_NAME = "invoice.csv"
PARQUET_NAME = "invoice.parquet"
HTML_NAME = "invoice.html"
REPORT_FILES = (CSV_NAME, PARQUET_NAME, HTML_NAME)
SUMMARY_METADATA_KEY = b"spotify_jobs.billing.summary"
TOTAL_KIND = "total"

REPORT_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("month", pa.string()),
        ("line_no", pa.int32()),
        ("kind", pa.string()),
        ("description", pa.string()),
        ("resource", pa.string()),
        ("tier", pa.string()),
        ("usage_month", pa.string()),
        ("period_start", pa.string()),
        ("period_end", pa.string()),
        ("rate_card_version", pa.string()),
        ("metered_quantity", pa.decimal128(38, METERED_PLACES)),
        ("metered_unit", pa.string()),
        ("quantity", pa.decimal128(38, BILLED_QUANTITY_PLACES)),
        ("unit", pa.string()),
        ("unit_price", pa.decimal128(38, PRICE_PLACES)),
        ("amount", pa.decimal128(38, 2)),
        ("currency", pa.string()),
        ("input_hash", pa.string()),
    ]
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def summary(invoice: Invoice) -> dict[str, object]:
    """Report-level facts: what the Parquet footer, the HTML and the ledger state."""
    return {
        "format": FORMAT,
        "tenant": invoice.tenant,
        "month": invoice.month,
        "invoice_number": invoice.invoice_number,
        "status": invoice.status,
        "currency": invoice.currency,
        "subtotal": str(invoice.subtotal),
        "discounts": str(invoice.discounts),
        "credits": str(invoice.credits),
        "total": str(invoice.total),
        "input_hash": invoice.input_hash,
        "rate_card_versions": list(invoice.rate_card_versions),
        "rounding": ROUNDING_RULE,
    }


def _scaled(value: Decimal | None, places: int) -> Decimal | None:
    return None if value is None else value.quantize(Decimal(1).scaleb(-places))


def report_rows(invoice: Invoice) -> list[dict[str, object]]:
    """The table's rows: one per line, then the total."""
    total = Line(kind=TOTAL_KIND, description="Total due", amount=invoice.total)
    rows = []
    for number, line in enumerate((*invoice.lines, total), start=1):
        rows.append(
            {
                "tenant": invoice.tenant,
                "month": invoice.month,
                "line_no": number,
                "kind": line.kind,
                "description": line.description,
                "resource": line.resource,
                "tier": line.tier,
                "usage_month": line.usage_month,
                "period_start": line.period_start,
                "period_end": line.period_end,
                "rate_card_version": line.rate_card_version,
                "metered_quantity": _scaled(line.metered_quantity, METERED_PLACES),
                "metered_unit": line.metered_unit,
                "quantity": _scaled(line.quantity, BILLED_QUANTITY_PLACES),
                "unit": line.unit,
                "unit_price": _scaled(line.unit_price, PRICE_PLACES),
                "amount": _scaled(line.amount, 2),
                "currency": invoice.currency,
                "input_hash": invoice.input_hash,
            }
        )
    return rows


def render_csv(invoice: Invoice) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_SCHEMA.names)
    for row in report_rows(invoice):
        writer.writerow(["" if row[name] is None else str(row[name]) for name in REPORT_SCHEMA.names])
    return buffer.getvalue().encode()


def render_parquet(invoice: Invoice) -> bytes:
    rows = report_rows(invoice)
    table = pa.Table.from_pylist(rows, schema=REPORT_SCHEMA)
    metadata = {
        SUMMARY_METADATA_KEY: json.dumps(summary(invoice), sort_keys=True, separators=(",", ":")).encode()
    }
    return parquet_bytes(table.replace_schema_metadata(metadata))


def _money(value: Decimal | None, currency: str) -> str:
    return "" if value is None else f"{value:,.2f} {currency}"


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), ",f")


_STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}td.n{text-align:right}"
    ".draft{color:#b00;font-weight:bold}.sum td{font-weight:bold}.meta{color:#555;font-size:90%}"
)


def render_html(invoice: Invoice) -> bytes:
    esc = html.escape
    cur = invoice.currency
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Invoice {esc(invoice.invoice_number)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Invoice {esc(invoice.invoice_number)}</h1>",
        f"<p>Tenant <b>{esc(invoice.tenant)}</b>, usage month <b>{esc(invoice.month)}</b> (UTC).</p>",
    ]
    if invoice.status != "closed":
        body.append('<p class="draft">DRAFT: this month is not closed; amounts may still change.</p>')
    body.append(
        "<table><thead><tr><th>#</th><th>Description</th><th>Period</th><th>Rate card</th>"
        "<th>Quantity</th><th>Unit</th><th>Unit price</th><th>Amount</th></tr></thead><tbody>"
    )
    for number, line in enumerate(invoice.lines, start=1):
        period = f"{line.period_start} to {line.period_end}" if line.period_start else ""
        body.append(
            f"<tr><td>{number}</td><td>{esc(line.description)}</td><td>{esc(period)}</td>"
            f'<td>{esc(line.rate_card_version)}</td><td class="n">{_number(line.quantity)}</td>'
            f'<td>{esc(line.unit)}</td><td class="n">{_number(line.unit_price)}</td>'
            f'<td class="n">{_money(line.amount, cur)}</td></tr>'
        )
    if not invoice.lines:
        body.append('<tr><td colspan="8">No usage this month.</td></tr>')
    body.append("</tbody><tbody>")
    for label, value in (
        ("Subtotal", invoice.subtotal),
        ("Discounts", invoice.discounts),
        ("Credits", invoice.credits),
        ("Total due", invoice.total),
    ):
        body.append(
            f'<tr class="sum"><td colspan="7">{label}</td><td class="n">{_money(value, cur)}</td></tr>'
        )
    body.append("</tbody></table>")
    body.append(
        f'<p class="meta">Rate card versions: {esc(", ".join(invoice.rate_card_versions))}. '
        f"Input hash: <code>{esc(invoice.input_hash)}</code>. Rounding: {esc(ROUNDING_RULE)}.</p>"
    )
    body.append("</body></html>\n")
    return "\n".join(body).encode()


def render_report(invoice: Invoice) -> dict[str, bytes]:
    """{file name: bytes} of the three report files."""
    return {
        CSV_NAME: render_csv(invoice),
        PARQUET_NAME: render_parquet(invoice),
        HTML_NAME: render_html(invoice),
    }


def read_report(parquet: bytes) -> tuple[dict[str, object], list[dict[str, object]]]:
    """(summary, rows) of a stored Parquet report."""
    table = read_table(parquet)
    metadata = table.schema.metadata or {}
    if SUMMARY_METADATA_KEY not in metadata:
        raise ValueError("not a billing report: the Parquet footer has no billing summary")
    return json.loads(metadata[SUMMARY_METADATA_KEY]), table.to_pylist()
