"""Which tenants the onboarding sensor adds as `tenants` partitions (no Dagster).

The registry is the source of truth for who may be onboarded; removal is never automatic. A tenant is
added when it first appears in the registry (or, on the sensor's first look, whenever it is registered
and has no partition). A tenant that `offboard-tenant` removed while its entry is still in the registry is
therefore not added back; deleting the entry finishes the offboarding, and registering the id again later
onboards it afresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class OnboardingChange:
    to_add: list[str]  # registered, no partition yet: add now
    unregistered: list[str]  # partitions whose tenant left the registry: waiting for offboard-tenant
    registered: list[str]  # every registered id (the next cursor)

    def cursor(self) -> str:
        return json.dumps(sorted(self.registered), separators=(",", ":"))


def previously_registered(cursor: str | None) -> set[str] | None:
    """The registered ids the sensor saw last time; None before its first look."""
    return set(json.loads(cursor)) if cursor else None


def onboarding_change(
    registry_ids: Iterable[str], partition_ids: Iterable[str], seen: set[str] | None
) -> OnboardingChange:
    registered = list(registry_ids)
    have = set(partition_ids)
    registered_set = set(registered)
    to_add = [tenant for tenant in registered if tenant not in have and (seen is None or tenant not in seen)]
    unregistered = sorted(have - registered_set)
    return OnboardingChange(to_add=to_add, unregistered=unregistered, registered=registered)
