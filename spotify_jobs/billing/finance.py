"""The platform's finance view of one month: revenue per tenant tier and the top tenants, from the reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from spotify_jobs.billing.ledger import report_key
from spotify_jobs.billing.rates import validate_month
from spotify_jobs.billing.render import PARQUET_NAME, read_report
from spotify_jobs.storage.object_store import ObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.tiers import TIER_ORDER

TOP_TENANTS = 10
UNREGISTERED_TIER = "unregistered"
FINANCE_PREFIX = "finance/billing"


class FinanceSummaryError(ValueError):
    """Reports that cannot be added up (e.g. in different currencies)."""


@dataclass(frozen=True)
class TenantTotal:
    tenant: str
    tier: str  # the tenant's tier in the registry
    status: str
    currency: str
    total: Decimal


@dataclass(frozen=True)
class FinanceSummary:
    month: str
    currency: str
    tenants: tuple[TenantTotal, ...]
    missing: tuple[str, ...]  # tenants with no report for the month

    @property
    def revenue(self) -> Decimal:
        return sum((t.total for t in self.tenants), Decimal("0.00"))

    def by_tier(self) -> list[tuple[str, int, Decimal]]:
        """(tier, tenants, revenue) per tier in tier order, tiers without tenants left out."""
        order = [*TIER_ORDER, UNREGISTERED_TIER]
        rows = []
        for tier in order:
            members = [t for t in self.tenants if t.tier == tier]
            if members:
                rows.append((tier, len(members), sum((t.total for t in members), Decimal("0.00"))))
        return rows

    def top(self, count: int = TOP_TENANTS) -> list[TenantTotal]:
        return sorted(self.tenants, key=lambda t: (-t.total, t.tenant))[:count]


def read_tenant_total(storage: TenantStorage, month: str, tier: str) -> TenantTotal | None:
    """The month's total from the tenant's stored Parquet report; None when there is no report."""
    key = report_key(month, PARQUET_NAME)
    if not storage.exists(key):
        return None
    facts, _ = read_report(storage.read_bytes(key))
    return TenantTotal(storage.tenant_id, tier, facts["status"], facts["currency"], Decimal(facts["total"]))


def summarise(month: str, storages: Sequence[TenantStorage], tiers: Mapping[str, str]) -> FinanceSummary:
    """Add up every tenant's report of `month`; `tiers` maps tenant -> registry tier."""
    month = validate_month(month)
    totals, missing = [], []
    for storage in sorted(storages, key=lambda s: s.tenant_id):
        total = read_tenant_total(storage, month, tiers.get(storage.tenant_id, UNREGISTERED_TIER))
        if total is None:
            missing.append(storage.tenant_id)
        else:
            totals.append(total)
    currencies = sorted({t.currency for t in totals})
    if len(currencies) > 1:
        raise FinanceSummaryError(
            f"{month}: reports are in several currencies {currencies}; cannot add them up"
        )
    return FinanceSummary(month, currencies[0] if currencies else "", tuple(totals), tuple(missing))


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def summary_files(summary: FinanceSummary) -> dict[str, bytes]:
    """{file name: CSV bytes}: revenue per tier, and every tenant's total (largest first)."""
    return {
        "revenue_by_tier.csv": _csv(
            ["month", "tier", "tenants", "revenue", "currency"],
            [(summary.month, tier, n, revenue, summary.currency) for tier, n, revenue in summary.by_tier()],
        ),
        "tenant_totals.csv": _csv(
            ["month", "rank", "tenant", "tier", "status", "total", "currency"],
            [
                (summary.month, rank, t.tenant, t.tier, t.status, t.total, t.currency)
                for rank, t in enumerate(summary.top(len(summary.tenants)), start=1)
            ],
        ),
    }


def write_summary(store: ObjectStore, summary: FinanceSummary) -> list[str]:
    """Store the summary's files under `finance/billing/month=<YYYY-MM>/` of the data store; their URIs."""
    uris = []
    for name, data in summary_files(summary).items():
        key = f"{FINANCE_PREFIX}/month={summary.month}/{name}"
        store.write_bytes(key, data)
        uris.append(store.uri(key))
    return uris
