"""The seed's service-level targets; the SLA report and deploy/monitoring/alert-rules.yaml use these numbers."""

from __future__ import annotations

from spotify_jobs.tenancy.tiers import JobType

SUCCESS_RATE_TARGET = 0.995  # runs that end in success, of runs that ended in success or failure
ERROR_RATE_LIMIT = 0.001  # failed step executions (retried ones included) of all step executions
CPU_UTILISATION_LIMIT = 0.80  # CPU seconds over reserved cores x wall time
MEMORY_UTILISATION_LIMIT = 0.85  # peak resident memory over reserved memory

P95_DURATION_SLA_SECONDS: dict[JobType, int] = {
    JobType.DATA_ETL: 3 * 3600,
    JobType.ML_TRAINING: 8 * 3600,
    JobType.TENANT_BACKUP: 6 * 3600,
    JobType.SECURITY_SCAN: 2 * 3600,
    JobType.BILLING_REPORT: 90 * 60,
}
