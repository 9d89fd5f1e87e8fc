"""Names and labels of tenant objects in the cluster.

Each tenant's step pods run in its own namespace `sj-<env>-<tenant>` (env: dev, stg or prd), at most
7 + 40 = 47 characters, so it always fits a DNS-1123 label. The platform's own services (webserver,
daemon, user code) live in the NAMESPACE setting.
"""

from __future__ import annotations

from spotify_jobs.k8s.tags import JOB_TYPE_TAG, PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.settings import ENVIRONMENT_SHORT
from spotify_jobs.tenancy.registry import validate_tenant_id
from spotify_jobs.tenancy.tiers import JobType, Priority

STEP_SERVICE_ACCOUNT = "spotify-jobs-step"
# The instance config map and Postgres secret the production run launcher names (deploy/helm).
RUN_LAUNCHER_CONFIG = {
    "instance_config_map": "dagster-instance",
    "postgres_password_secret": "dagster-postgresql-secret",
    "dagster_home": "/opt/dagster/dagster_home",
    "service_account_name": "dagster",
}
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


def tenant_namespace(environment: str, tenant_id: str) -> str:
    """The namespace of one tenant's step pods in one environment."""
    return f"sj-{ENVIRONMENT_SHORT[environment]}-{validate_tenant_id(tenant_id)}"


def tenant_queue_name(tenant_id: str) -> str:
    """The Kueue LocalQueue of a tenant (in its namespace)."""
    return f"{validate_tenant_id(tenant_id)}-queue"


def workload_labels(tenant_id: str, job_type: JobType, priority: Priority, tier: str) -> dict[str, str]:
    """Labels on every step Job and pod: who it is for, what it is, how urgent and how big."""
    return {
        TENANT_TAG: validate_tenant_id(tenant_id),
        JOB_TYPE_TAG: job_type.value,
        PRIORITY_TAG: priority.value,
        TIER_TAG: tier,
        KUEUE_QUEUE_LABEL: tenant_queue_name(tenant_id),
        KUEUE_PRIORITY_LABEL: priority.priority_class,
    }
