"""resource-optimization: which tier each tenant's job type should run at, from what its steps used (no
Dagster). A tier fits when the steps' p95 CPU stays under 80 % of its cores and their p95 peak memory under
85 % of its memory (the seed's utilisation targets); the recommendation is the smallest tier that fits,
never below the job type's minimum. Failed steps count: a step killed for memory is evidence too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from spotify_jobs.observability.sla import StepFact, percentile
from spotify_jobs.observability.targets import CPU_UTILISATION_LIMIT, MEMORY_UTILISATION_LIMIT
from spotify_jobs.tenancy.registry import TenantRegistry, UnknownTenant
from spotify_jobs.tenancy.tiers import TIER_ORDER, TIERS, JobType, TierSpec, tier_spec

MIB = 1024 * 1024


@dataclass(frozen=True)
class TierRecommendation:
    tenant: str
    job_type: str
    steps: int
    current_tier: str
    p95_cpu_cores: float
    p95_peak_memory_mib: float
    recommended_tier: str
    action: str  # keep | downsize | upsize | exceeds-largest
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def smallest_fitting_tier(
    cpu_cores: float, memory_mib: float, minimum: str = TIER_ORDER[0]
) -> TierSpec | None:
    """The smallest tier (not below `minimum`) whose cores and memory keep this use under the targets."""
    floor = tier_spec(minimum).rank
    for spec in TIERS.values():
        if spec.rank < floor:
            continue
        if cpu_cores * 1000 <= CPU_UTILISATION_LIMIT * spec.cpu_millicores and (
            memory_mib <= MEMORY_UTILISATION_LIMIT * spec.memory_mib
        ):
            return spec
    return None


def _reserved_tier(steps: list[StepFact]) -> str | None:
    """The tier the steps ran at, from the cores and memory reserved for them (the most common)."""
    by_reservation = {(spec.cpu_millicores, spec.memory_mib): spec.name for spec in TIERS.values()}
    seen = Counter(
        by_reservation.get((round(s.reserved_cpu_cores * 1000), s.reserved_memory_bytes // MIB))
        for s in steps
        if s.reserved_cpu_cores and s.reserved_memory_bytes
    )
    seen.pop(None, None)
    return seen.most_common(1)[0][0] if seen else None


def recommend(steps: Iterable[StepFact], registry: TenantRegistry) -> list[TierRecommendation]:
    """One recommendation per (tenant, job type) with metered steps."""
    groups: dict[tuple[str, str], list[StepFact]] = defaultdict(list)
    for step in steps:
        if step.wall_seconds > 0:
            groups[(step.tenant, step.job_type)].append(step)
    out = []
    for (tenant, job_type), group in sorted(groups.items()):
        cores = percentile([s.cpu_seconds / s.wall_seconds for s in group], 95) or 0.0
        memory = (percentile([s.peak_memory_bytes for s in group], 95) or 0.0) / MIB
        try:
            minimum = JobType(job_type).spec.min_tier
        except ValueError:
            minimum = TIER_ORDER[0]
        try:
            registered = registry.get(tenant).tier
        except (UnknownTenant, ValueError):
            registered = None
        current = _reserved_tier(group) or registered or "unknown"
        fit = smallest_fitting_tier(cores, memory, minimum)
        usage = f"p95 {cores:.2f} cores, {memory:.0f} MiB over {len(group)} steps"
        if fit is None:
            recommended, action = TIER_ORDER[-1], "exceeds-largest"
            reason = f"{usage}: more than the largest tier allows within the targets; split the work"
        elif current not in TIERS or fit.rank == TIERS[current].rank:
            recommended, action = fit.name, "keep" if current == fit.name else "set"
            reason = f"{usage}: {fit.name} ({fit.cpu}/{fit.memory}) is the smallest tier within the targets"
        else:
            recommended = fit.name
            action = "downsize" if fit.rank < TIERS[current].rank else "upsize"
            reason = f"{usage}: {fit.name} ({fit.cpu}/{fit.memory}) fits within 80 % CPU / 85 % memory"
        out.append(
            TierRecommendation(
                tenant=tenant,
                job_type=job_type,
                steps=len(group),
                current_tier=current,
                p95_cpu_cores=round(cores, 3),
                p95_peak_memory_mib=round(memory, 1),
                recommended_tier=recommended,
                action=action,
                reason=reason,
            )
        )
    return out
