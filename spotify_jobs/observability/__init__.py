"""Observability: step metering, Prometheus metrics, structured logs, audit trail, SLA reports.

- `usage.py`     measures a block of work: wall, CPU, peak RSS, GPU seconds, records/bytes (no Dagster).
- `metrics.py`   Prometheus registries of steps, runs and the backlog; push / prune on a Pushgateway.
- `metering.py`  `step_meter(context, platform)`: one `with` line in an asset records its usage in the
                 instance (materialisation metadata `usage/...`) and in the Pushgateway.
- `logs.py`      redaction and the JSON-lines formatter; `loggers.py` the Dagster logger using them.
- `audit.py`     per-tenant, hash-chained, append-only audit trail under `tenants/<t>/audit/`.
- `sensors.py`   run-status sensors that audit every run and push run metrics; the backlog sensor.
- `sla.py`       `compute_sla(instance, since, until)`: SLA and utilisation per job type and tenant.
- `targets.py`   the seed's targets (99.5 % success, < 0.1 % errors, p95 per job type, 80 % / 85 %).
- `assets.py`    the daily `platform_sla_report` asset and its checks.

Alert rules and the Grafana dashboard live in deploy/monitoring/.
"""
