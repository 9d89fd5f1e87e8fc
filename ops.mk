# Operator verbs of the old manage-jobs.sh, on the `spotify-jobs` CLI and Dagster's run queue.
# Included by the Makefile, which defines BIN, INSTALLED, DAGSTER_HOME (exported), the rule for
# $(DAGSTER_HOME)/dagster.yaml, and the seed variables (DRY_RUN, PARALLEL_JOBS, NAMESPACE and ENVIRONMENT are
# exported, so the CLI's settings read them). Examples:
#   make create-etl-job TENANT_ID=startup-042 DATE=2026-11-01
#   make create-ml-job TENANT_ID=enterprise-001 PRIORITY=critical RESOURCE_TIER=enterprise DRY_RUN=true
#   make list-jobs FILTER=queued TENANT_ID=startup-042
#   make monitor-job JOB_NAME=<run id or its first 8 characters>

JOB_NAME ?=
FILTER ?=
DATE ?=
BACKUP_FILE ?=
HOURS ?= 24
DAYS ?= 30

# Only the variables that are set become flags: unset ones leave the tenant's registry defaults.
TENANT_FLAG = $(if $(TENANT_ID),--tenant $(TENANT_ID))
RUN_FLAGS = $(TENANT_FLAG) $(if $(PRIORITY),--priority $(PRIORITY)) $(if $(RESOURCE_TIER),--tier $(RESOURCE_TIER)) $(if $(DATE),--date $(DATE))
RUN_ID_FLAG = --run $(or $(JOB_NAME),$(error JOB_NAME is required: the run id, as list-jobs shows it))
CLI = $(BIN)/spotify-jobs
INSTANCE = $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml

CREATE_VERBS := create-etl-job create-ml-job create-security-job create-billing-job create-backup-job create-tenant-jobs
OPS_VERBS := $(CREATE_VERBS) check-cluster monitor-job list-jobs cancel-job health-check security-scan-all \
	compliance-check backup-job-configs restore-job-configs performance-test performance-report \
	resource-optimization offboard-tenant ops-help

.PHONY: $(OPS_VERBS)

ops-help:
	@echo "make create-{etl,ml,security,billing,backup}-job TENANT_ID= [PRIORITY=] [RESOURCE_TIER=] [DATE=] [DRY_RUN=true]"
	@echo "make create-tenant-jobs TENANT_ID=      - every job type for one tenant"
	@echo "make list-jobs [FILTER=running|queued|failed|succeeded|canceled] [TENANT_ID=]"
	@echo "make monitor-job JOB_NAME=<run id>      - status, step timeline, last log lines; follows until done"
	@echo "make cancel-job JOB_NAME=<run id>       - make health-check / check-cluster"
	@echo "make security-scan-all / compliance-check [TENANT_ID=]"
	@echo "make backup-job-configs / restore-job-configs BACKUP_FILE=<archive> [DRY_RUN=true]"
	@echo "make performance-test / performance-report [HOURS=24] / resource-optimization [DAYS=30]"
	@echo "make offboard-tenant TENANT_ID=         - final backup first, then the tenant's partition goes"

$(CREATE_VERBS): $(INSTANCE)
	$(CLI) $@ $(RUN_FLAGS)

list-jobs: $(INSTANCE)
	$(CLI) list-jobs $(if $(FILTER),--filter $(FILTER)) $(TENANT_FLAG)

monitor-job: $(INSTANCE)
	$(CLI) monitor-job $(RUN_ID_FLAG)

cancel-job: $(INSTANCE)
	$(CLI) cancel-job $(RUN_ID_FLAG)

check-cluster: $(INSTALLED)
	$(CLI) check-cluster

health-check: $(INSTANCE)
	$(CLI) health-check

security-scan-all: $(INSTALLED)
	$(CLI) security-scan --all

compliance-check: $(INSTALLED)
	$(CLI) compliance-check $(TENANT_FLAG)

backup-job-configs: $(INSTALLED)
	$(CLI) backup-configs

restore-job-configs: $(INSTALLED)
	$(CLI) restore-configs --file $(or $(BACKUP_FILE),$(error BACKUP_FILE is required: the archive backup-job-configs wrote)) $(if $(filter true,$(DRY_RUN)),--dry-run)

performance-test: $(INSTALLED)
	$(CLI) performance-test

performance-report: $(INSTANCE)
	$(CLI) sla-report --hours $(HOURS)

resource-optimization: $(INSTANCE)
	$(CLI) resource-optimization --days $(DAYS)

offboard-tenant: $(INSTANCE)
	$(CLI) offboard-tenant $(TENANT_FLAG)
