"""Resource tiers, priorities and job types: the platform's fixed vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class TierSpec:
    """CPU and memory a step pod gets; requests equal limits (Guaranteed QoS)."""

    name: str
    cpu: str
    memory: str
    cpu_millicores: int
    memory_mib: int

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self.name)


TIERS: dict[str, TierSpec] = {
    spec.name: spec
    for spec in (
        TierSpec("micro", "100m", "128Mi", 100, 128),
        TierSpec("small", "250m", "512Mi", 250, 512),
        TierSpec("medium", "500m", "1Gi", 500, 1024),
        TierSpec("large", "2000m", "4Gi", 2000, 4096),
        TierSpec("xlarge", "8000m", "16Gi", 8000, 16384),
        TierSpec("enterprise", "16000m", "32Gi", 16000, 32768),
    )
}
TIER_ORDER: tuple[str, ...] = tuple(TIERS)


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    BATCH = "batch"

    @property
    def run_priority(self) -> int:
        """Value of the `dagster/priority` run tag: the run queue dequeues higher values first."""
        return _RUN_PRIORITY[self]

    @property
    def priority_class(self) -> str:
        """Name of the Kubernetes PriorityClass step pods of this priority use."""
        return f"spotify-jobs-{self.value}"

    @property
    def class_value(self) -> int:
        """Value of that PriorityClass (deploy/k8s/base renders it)."""
        return 1000 + 100 * self.run_priority


_RUN_PRIORITY = {
    Priority.CRITICAL: 4,
    Priority.HIGH: 3,
    Priority.NORMAL: 2,
    Priority.LOW: 1,
    Priority.BATCH: 0,
}


class JobType(StrEnum):
    DATA_ETL = "data-etl"
    ML_TRAINING = "ml-training"
    TENANT_BACKUP = "tenant-backup"
    SECURITY_SCAN = "security-scan"
    BILLING_REPORT = "billing-report"

    @property
    def spec(self) -> JobTypeSpec:
        return JOB_TYPES[self]


@dataclass(frozen=True)
class JobTypeSpec:
    """What a kind of work needs: the seed's typical tier, the minimum tier, and whether it uses a GPU."""

    job_type: JobType
    job_name: str
    seed_tier: str
    min_tier: str
    needs_gpu: bool = False


JOB_TYPES: dict[JobType, JobTypeSpec] = {
    spec.job_type: spec
    for spec in (
        JobTypeSpec(JobType.DATA_ETL, "data_etl_job", seed_tier="large", min_tier="micro"),
        JobTypeSpec(JobType.ML_TRAINING, "ml_training_job", "xlarge", "xlarge", needs_gpu=True),
        JobTypeSpec(JobType.TENANT_BACKUP, "tenant_backup_job", seed_tier="large", min_tier="micro"),
        JobTypeSpec(JobType.SECURITY_SCAN, "security_scan_job", seed_tier="medium", min_tier="micro"),
        JobTypeSpec(JobType.BILLING_REPORT, "billing_report_job", seed_tier="medium", min_tier="micro"),
    )
}


def tier_spec(name: str) -> TierSpec:
    """The tier called `name`, or a ValueError that lists the allowed tiers."""
    try:
        return TIERS[name]
    except KeyError:
        raise ValueError(f"unknown resource tier {name!r}; allowed: {', '.join(TIER_ORDER)}") from None


def priority_of(name: str) -> Priority:
    """The priority called `name`, or a ValueError that lists the allowed priorities."""
    try:
        return Priority(name)
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        raise ValueError(f"unknown priority {name!r}; allowed: {allowed}") from None


def job_type_of(name: str) -> JobType:
    """The job type called `name` (`data-etl` or `data_etl`), or a ValueError listing the allowed ones."""
    try:
        return JobType(name.replace("_", "-"))
    except ValueError:
        allowed = ", ".join(j.value for j in JobType)
        raise ValueError(f"unknown job type {name!r}; allowed: {allowed}") from None
