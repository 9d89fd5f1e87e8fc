"""The closed-month ledger: per tenant and month, what was billed, kept in the tenant's own storage.

`tenants/<t>/billing/ledger/month=<YYYY-MM>.json` is written once, when the month closes, after the
report files; it holds the exact invoice inputs (usage, adjustments, the rate cards as they applied,
credits), their hash, the total and the SHA-256 of each report file. A closed month is re-rendered from
it, never recomputed from usage that may have changed since.
"""

from __future__ import annotations

from dataclasses import dataclass

from spotify_jobs.billing.invoice import FORMAT, InvoiceInputs
from spotify_jobs.billing.rates import validate_month
from spotify_jobs.storage.object_store import ObjectExists
from spotify_jobs.storage.tenant_storage import TenantStorage, json_bytes

LEDGER_PREFIX = "billing/ledger"
REPORTS_PREFIX = "billing/reports"


class LedgerError(RuntimeError):
    """A ledger entry that cannot be trusted or would be overwritten."""


def ledger_key(month: str) -> str:
    return f"{LEDGER_PREFIX}/month={validate_month(month)}.json"


def report_key(month: str, name: str) -> str:
    return f"{REPORTS_PREFIX}/month={validate_month(month)}/{name}"


@dataclass(frozen=True)
class LedgerEntry:
    tenant: str
    month: str
    closed_at: str  # ISO-8601 UTC; audit only, never rendered into a report
    input_hash: str
    currency: str
    total: str
    rate_card_versions: tuple[str, ...]
    files: dict[str, str]  # file name -> sha256:<hex>
    inputs: InvoiceInputs

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "tenant": self.tenant,
            "month": self.month,
            "status": "closed",
            "closed_at": self.closed_at,
            "input_hash": self.input_hash,
            "currency": self.currency,
            "total": self.total,
            "rate_card_versions": list(self.rate_card_versions),
            "files": dict(sorted(self.files.items())),
            "inputs": self.inputs.to_json(),
        }


def read_ledger(storage: TenantStorage, month: str) -> LedgerEntry | None:
    """The month's entry, or None while the month is open; LedgerError if it was altered."""
    key = ledger_key(month)
    if not storage.exists(key):
        return None
    raw = storage.read_json(key)
    try:
        entry = LedgerEntry(
            tenant=raw["tenant"],
            month=raw["month"],
            closed_at=raw["closed_at"],
            input_hash=raw["input_hash"],
            currency=raw["currency"],
            total=raw["total"],
            rate_card_versions=tuple(raw["rate_card_versions"]),
            files=dict(raw["files"]),
            inputs=InvoiceInputs.from_json(raw["inputs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"unreadable ledger entry {storage.uri(key)}: {exc}") from exc
    if (entry.tenant, entry.month) != (storage.tenant_id, month) or entry.inputs.month != month:
        raise LedgerError(
            f"{storage.uri(key)} is for {entry.tenant} {entry.month}, not {storage.tenant_id} {month}"
        )
    if entry.inputs.input_hash != entry.input_hash:
        raise LedgerError(
            f"{storage.uri(key)} was altered: its inputs hash to {entry.inputs.input_hash}, "
            f"the entry records {entry.input_hash}"
        )
    return entry


def write_ledger(storage: TenantStorage, entry: LedgerEntry) -> str:
    """Record a closed month; refuses to overwrite (closed months are immutable)."""
    key = ledger_key(entry.month)
    try:
        return storage.create(json_bytes(entry.to_json()), key)
    except ObjectExists:
        raise LedgerError(
            f"{entry.tenant} {entry.month} is already closed ({storage.uri(key)}); it cannot change"
        ) from None


def closed_months(storage: TenantStorage) -> list[str]:
    """Months with a ledger entry, oldest first."""
    months = []
    for info in storage.list(LEDGER_PREFIX):
        name = info.key.rsplit("/", 1)[-1]
        if name.startswith("month=") and name.endswith(".json"):
            months.append(validate_month(name[len("month=") : -len(".json")]))
    return sorted(months)
