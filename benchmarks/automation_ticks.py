"""One schedule tick and one landing-sensor tick over 1,000 tenants; prints one JSON line. A benchmark,
not a test.

    .venv/bin/python benchmarks/automation_ticks.py [--tenants 1000] [--files 10] [--store local|s3]

Registers `--tenants` tenants (a generated registry) and onboards them all as `tenants` partitions of a
SQLite instance in a temp directory, then times, through Dagster's own `evaluate_tick` with the run
requests checked against the partitions as the daemon does:
* `schedule_tick_s`: the ETL's daily schedule: one run request per tenant, placement tags from the registry;
* `landing_tick_s`: the landing sensor after `--files` new export files landed for every tenant (one
  landing date each): listing every landing zone, the cursor, one ETL run request per tenant;
* `landing_idle_tick_s`: the next tick, with nothing new.
Goals (the issue's): schedule tick under 1 s, landing tick under 2 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import yaml

from spotify_jobs.automation.schedules import build_schedule
from spotify_jobs.automation.sensors import build_landing_sensor
from spotify_jobs.jobs import TenantJobFactory
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs.tenancy.tiers import JobType

GOAL_SCHEDULE_S = 1.0
GOAL_LANDING_S = 2.0
LANDING_DATE = "2026-11-01"
TIERS = ("micro", "small", "medium", "large")
PRIORITIES = ("critical", "high", "normal", "low", "batch")


def write_registry(path: Path, tenants: int) -> list[str]:
    ids = [f"tenant-{n:04d}" for n in range(tenants)]
    entries = [
        {
            "id": tenant,
            "display_name": f"Benchmark tenant {n}",
            "tier": TIERS[n % len(TIERS)],
            "priority": PRIORITIES[n % len(PRIORITIES)],
            "max_concurrent_runs": 2,
            "quota": {"cpu": "16", "memory": "32Gi", "gpu": 0, "pods": 8, "jobs": 8},
        }
        for n, tenant in enumerate(ids)
    ]
    path.write_text(yaml.safe_dump({"tenants": entries}))
    return ids


def land_exports(platform: PlatformResource, tenants: list[str], files: int) -> int:
    payload = b"[]"
    for tenant in tenants:
        storage = platform.tenant_storage(tenant)
        for n in range(files):
            storage.write_bytes(
                payload, "landing", LANDING_DATE, f"export-{n:03d}", "Streaming_History_Audio_0.json"
            )
    return len(tenants) * files


def timed(evaluate) -> tuple[float, object]:
    started = time.perf_counter()
    result = evaluate()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10, help="new export files per tenant")
    parser.add_argument("--store", choices=("local", "s3"), default="local")
    args = parser.parse_args()

    from spotify_jobs.definitions import TENANT_JOBS  # the real ETL job and its assets

    etl = TENANT_JOBS[JobType.DATA_ETL]
    if args.store == "s3":
        sys.path.insert(0, str(Path(__file__).parent))
        from backup_common import moto_server, new_bucket, s3_client

    with (
        tempfile.TemporaryDirectory(prefix="bench-automation-") as work,
        moto_server() if args.store == "s3" else nullcontext() as endpoint,
    ):
        root = Path(work)
        data_root = f"s3://{new_bucket(s3_client(endpoint))}/data" if endpoint else str(root / "data")
        tenants = write_registry(root / "tenants.yaml", args.tenants)
        settings = load_settings(
            data_root=data_root,
            backup_root=str(root / "backups"),
            s3_endpoint_url=endpoint,
            tenant_registry=root / "tenants.yaml",
        )
        factory = TenantJobFactory(settings, load_registry(settings.tenant_registry))
        platform = PlatformResource.from_settings(settings)
        schedule = build_schedule(factory, etl)
        sensor = build_landing_sensor(factory, etl)
        defs = dg.Definitions(
            assets=list(etl.assets),
            jobs=[factory.job(etl)],
            schedules=[schedule],
            sensors=[sensor],
            resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
        )
        repository = defs.get_repository_def()
        (root / "dagster_home").mkdir()
        with dg.DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
            instance.add_dynamic_partitions(tenant_partitions.name, tenants)

            schedule_context = dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
                repository_def=repository,
            )
            schedule_s, schedule_result = timed(lambda: schedule.evaluate_tick(schedule_context))

            landed = land_exports(platform, tenants, args.files)

            def landing_tick(cursor):
                context = dg.build_sensor_context(
                    instance=instance,
                    instance_ref=instance.get_ref(),
                    cursor=cursor,
                    resources={"platform": platform},
                    definitions=defs,
                )
                return sensor.evaluate_tick(context)

            landing_s, landing_result = timed(lambda: landing_tick(None))
            idle_s, idle_result = timed(lambda: landing_tick(landing_result.cursor))

    print(
        json.dumps(
            {
                "benchmark": "automation_ticks",
                "store": args.store,
                "tenants": args.tenants,
                "schedule_tick_s": round(schedule_s, 3),
                "schedule_run_requests": len(schedule_result.run_requests),
                "landing_files": landed,
                "landing_tick_s": round(landing_s, 3),
                "landing_run_requests": len(landing_result.run_requests),
                "landing_cursor_bytes": len(landing_result.cursor),
                "landing_idle_tick_s": round(idle_s, 3),
                "landing_idle_run_requests": len(idle_result.run_requests),
                "goal_schedule_s": GOAL_SCHEDULE_S,
                "goal_landing_s": GOAL_LANDING_S,
                "goals_met": schedule_s < GOAL_SCHEDULE_S and landing_s < GOAL_LANDING_S,
            }
        )
    )


if __name__ == "__main__":
    main()
