"""When a tenant's model is due for retraining: enough new clean data since its last model (no Dagster).

The ledger counts, per tenant, the distinct dates of clean listening events materialised and their rows
since that tenant's model was last trained (or last asked to be). A tenant is due when either count
reaches the policy's threshold. The ledger is the ETL -> training sensor's cursor, together with how far
it has read each asset's materialisations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CURSOR_VERSION = 1


@dataclass(frozen=True)
class RetrainPolicy:
    """Retrain after this many new days of clean data, or this many new clean rows, whichever comes first."""

    min_new_partitions: int = 7
    min_new_rows: int = 1_000_000

    def __post_init__(self):
        if self.min_new_partitions < 1 or self.min_new_rows < 1:
            raise ValueError("retrain thresholds must be at least 1")


@dataclass
class CleanDataTally:
    """New clean data of one tenant since its last model."""

    dates: set[str] = field(default_factory=set)
    rows: int = 0
    last_event: int = 0  # storage id of the newest clean materialisation counted

    @property
    def latest_date(self) -> str | None:
        return max(self.dates) if self.dates else None

    def is_due(self, policy: RetrainPolicy) -> bool:
        return len(self.dates) >= policy.min_new_partitions or self.rows >= policy.min_new_rows


class RetrainLedger:
    def __init__(self, after: dict[str, int] | None = None, tallies: dict[str, CleanDataTally] | None = None):
        self.after = after or {}  # asset key -> storage id read up to
        self.tallies = tallies or {}

    @classmethod
    def from_json(cls, raw: str | None) -> RetrainLedger:
        if not raw:
            return cls()
        payload = json.loads(raw)
        if payload.get("v") != CURSOR_VERSION:
            raise ValueError(f"retrain cursor version {payload.get('v')!r}; expected {CURSOR_VERSION}")
        return cls(
            dict(payload["after"]),
            {
                tenant: CleanDataTally(set(t["dates"]), t["rows"], t["last"])
                for tenant, t in payload["tallies"].items()
            },
        )

    def to_json(self) -> str:
        tallies = {
            tenant: {"dates": sorted(t.dates), "rows": t.rows, "last": t.last_event}
            for tenant, t in sorted(self.tallies.items())
        }
        return json.dumps(
            {"v": CURSOR_VERSION, "after": self.after, "tallies": tallies}, separators=(",", ":")
        )

    def add_clean(self, tenant: str, day: str, rows: int, storage_id: int) -> None:
        tally = self.tallies.setdefault(tenant, CleanDataTally())
        tally.dates.add(day)
        tally.rows += max(rows, 0)
        tally.last_event = max(tally.last_event, storage_id)

    def model_trained(self, tenant: str) -> None:
        self.tallies.pop(tenant, None)

    def due(self, policy: RetrainPolicy) -> list[tuple[str, CleanDataTally]]:
        return [(tenant, tally) for tenant, tally in sorted(self.tallies.items()) if tally.is_due(policy)]
