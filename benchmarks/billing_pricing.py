"""Billing at platform scale: usage records of many tenants priced into reports; prints one JSON line.

    .venv/bin/python benchmarks/billing_pricing.py [--tenants 1000] [--days 30] [--month 2026-07]
        [--work build/bench-billing] [--in-memory-only]

Generates usage records (seeded, so every run prices the same usage: CPU and memory at one or two tiers,
GPU on some days, records, bytes backed up and storage per tenant and day) for the first `--days` days of
`--month` (July 2026 crosses the shipped rate-card change on the 15th), then times:

* `price_render_s`: the pure path, per tenant: invoice inputs (rate card in force per day, input hash),
  pricing and rendering CSV + Parquet + HTML, all in memory;
* `end_to_end_s`: what the `billing_report` asset does, per tenant: read the month's usage record files
  from a local tenant store, price, render, write the three files and close the month in the ledger.

Each time comes with its process CPU time (`*_cpu_s`): on a shared machine wall time includes waiting for
a core. Writing the usage files first (`write_usage_s`) is set-up, not part of either time. Both paths must agree
on every tenant's total (`consistent`). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain
from pathlib import Path

import pyarrow

from spotify_jobs.billing.invoice import price_invoice
from spotify_jobs.billing.rates import load_rate_cards, month_days
from spotify_jobs.billing.render import render_report
from spotify_jobs.billing.report import assemble_inputs, build_month_report, month_end, usage_quantities
from spotify_jobs.billing.usage import Resource, UsageRecord, quantise, write_usage
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.tiers import TIER_ORDER, TIERS

REPO = Path(__file__).resolve().parent.parent


def generate(tenants: int, days: list, seed: int) -> dict[str, dict[str, list[UsageRecord]]]:
    """{tenant: {date: records}} of plausible daily usage."""
    rng = random.Random(seed)
    usage: dict[str, dict[str, list[UsageRecord]]] = {}
    for n in range(tenants):
        tenant = f"bench-{n:05d}"
        tiers = rng.sample(TIER_ORDER, rng.choice((1, 2)))
        gpu_tier = "xlarge" if "xlarge" in tiers else None
        by_day = {}
        for day in days:
            date = day.isoformat()
            records = []
            for tier in tiers:
                seconds = rng.randint(60, 6 * 3600)
                spec = TIERS[tier]
                records.append(
                    _record(date, tenant, Resource.CPU, tier, spec.cpu_millicores * seconds / 1000)
                )
                records.append(_record(date, tenant, Resource.MEMORY, tier, spec.memory_mib * seconds / 1024))
                records.append(_record(date, tenant, Resource.RECORDS, tier, rng.randint(0, 5_000_000)))
            if gpu_tier and rng.random() < 0.3:
                records.append(_record(date, tenant, Resource.GPU, gpu_tier, rng.randint(600, 4 * 3600)))
            if rng.random() < 0.5:
                records.append(_record(date, tenant, Resource.BACKUP, tiers[0], rng.randint(1, 50) * 1024**3))
            records.append(_record(date, tenant, Resource.STORAGE, tiers[0], rng.randint(1, 10**6) / 1000))
            by_day[date] = [r for r in records if r.quantity > 0]
        usage[tenant] = by_day
    return usage


def _record(date: str, tenant: str, resource: Resource, tier: str, quantity) -> UsageRecord:
    return UsageRecord(date, tenant, resource, tier, "data-etl", quantise(Decimal(str(quantity))), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--month", default="2026-07")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench-billing")
    parser.add_argument("--in-memory-only", action="store_true", help="skip the storage end-to-end pass")
    args = parser.parse_args(argv)

    days = month_days(args.month)[: args.days]
    book = load_rate_cards()
    usage = generate(args.tenants, days, args.seed)
    record_count = sum(len(records) for by_day in usage.values() for records in by_day.values())

    started, cpu_started = time.perf_counter(), time.process_time()
    totals, lines, report_bytes = {}, 0, 0
    for tenant, by_day in usage.items():
        inputs = assemble_inputs(
            tenant, args.month, usage_quantities(chain.from_iterable(by_day.values())), [], book
        )
        invoice = price_invoice(inputs, "closed")
        files = render_report(invoice)
        totals[tenant] = invoice.total
        lines += len(invoice.lines)
        report_bytes += sum(len(data) for data in files.values())
    price_render_s = time.perf_counter() - started
    price_render_cpu_s = time.process_time() - cpu_started

    result = {
        "benchmark": "billing_pricing",
        "tenants": args.tenants,
        "days": len(days),
        "month": args.month,
        "usage_records": record_count,
        "invoice_lines": lines,
        "report_bytes": report_bytes,
        "revenue": str(sum(totals.values(), Decimal("0.00"))),
        "currency": book.currency,
        "price_render_s": round(price_render_s, 3),
        "price_render_ms_per_tenant": round(1000 * price_render_s / args.tenants, 3),
        "price_render_cpu_s": round(price_render_cpu_s, 3),
    }

    if not args.in_memory_only:
        shutil.rmtree(args.work, ignore_errors=True)
        store = LocalObjectStore(args.work)
        started = time.perf_counter()
        for tenant, by_day in usage.items():
            storage = TenantStorage(store, tenant)
            for day in days:
                write_usage(storage, day, by_day[day.isoformat()])
        result["write_usage_s"] = round(time.perf_counter() - started, 3)
        now = max(datetime.now(UTC), month_end(args.month))
        started, cpu_started = time.perf_counter(), time.process_time()
        consistent = True
        for tenant in usage:
            report = build_month_report(
                TenantStorage(store, tenant), book, args.month, now=now, close=True, store=True
            )
            consistent &= report.invoice.total == totals[tenant] and report.invoice.status == "closed"
        result["end_to_end_s"] = round(time.perf_counter() - started, 3)
        result["end_to_end_cpu_s"] = round(time.process_time() - cpu_started, 3)
        result["end_to_end_ms_per_tenant"] = round(1000 * result["end_to_end_s"] / args.tenants, 3)
        result["consistent"] = consistent
        shutil.rmtree(args.work, ignore_errors=True)

    result.update(
        python=platform.python_version(), pyarrow=pyarrow.__version__, cpus=len(os.sched_getaffinity(0))
    )
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
