"""ETL throughput against DuckDB on the same generated exports; prints one JSON line. A benchmark, not a test.

    .venv/bin/python benchmarks/etl_throughput.py [--records 1000000] [--cache build/bench-etl] [--repeat 1]

Generates the records once (cached under --cache), then runs each side in its own process:
* `etl_full`: what `spotify-jobs bench etl` runs (`pipeline.run_directory`: one parser thread per usable
  CPU, the merge on the main thread), writing all three outputs (the 20-column listening_events included);
* `etl_stats`: the same command writing quarantined_events and daily_track_stats only, i.e. the output the
  DuckDB query produces (the rules and the duplicate check run in full; listening_events' extra fields are
  not decoded);
* `duckdb_1_thread` and `duckdb_all_threads`: DuckDB `read_json` + validation + dedup + GROUP BY daily
  aggregation to the same 7 columns, on one thread and on every usable CPU (DuckDB's default). The issue's
  goal compares `etl_full` with `duckdb_all_threads`: `goal` holds that comparison.
Seconds exclude interpreter start-up and imports on every side; the readable files go to DuckDB (it cannot
skip an unreadable file in a JSON-array read). The daily_track_stats of all three must be equal.

Memory, per side: `peak_rss_mb` is what the side reports itself (ru_maxrss of its one process), and
`peak_pss_mb` the largest sum of proportional set sizes of the side's process tree, sampled every 20 ms from
here in one more, untimed run of each side (shared pages counted once; the same measure for both sides).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TENANT = "bench"
DATE = "2026-11-01"
ETL_OUTPUTS = ("listening_events", "quarantined_events", "daily_track_stats")
GOAL_RATIO = 1.5  # issue 2: the ETL's throughput at least 1.5x DuckDB's, peak memory no higher
# What `spotify-jobs bench etl` runs, without the CLI root's imports of every other domain.
ETL_CHILD = """
import json, sys
from pathlib import Path
from spotify_jobs.etl.pipeline import run_directory
from spotify_jobs.settings import load_settings
landing, tenant, out, outputs = sys.argv[1:]
secret = load_settings().pseudonym_secret.get_secret_value()
line = run_directory(Path(landing), Path(out), tenant, secret, outputs=outputs.split(","))
print(json.dumps(line))
"""
ISO_TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?"

DUCKDB_STATS_SQL = """
WITH raw AS (
  SELECT * FROM read_json($files, format = 'array', filename = true,
    columns = {ts: 'JSON', username: 'JSON', ms_played: 'JSON', spotify_track_uri: 'JSON',
               spotify_episode_uri: 'JSON', audiobook_uri: 'JSON', skipped: 'JSON'})
), located AS (
  SELECT *, substr(filename, length($root) + 2) AS rel FROM raw
), typed AS (
  SELECT
    CASE WHEN json_type(username) = 'VARCHAR' AND username ->> '$' <> '' THEN username ->> '$'
         WHEN (username IS NULL OR json_type(username) = 'NULL' OR username ->> '$' = '')
              AND position('/' IN rel) > 0 THEN split_part(rel, '/', 1) END AS listener,
    CASE WHEN json_type(ts) = 'VARCHAR' AND regexp_full_match(ts ->> '$', $iso)
         THEN try_cast(ts ->> '$' AS TIMESTAMPTZ) END AS t,
    CASE WHEN json_type(ms_played) IN ('BIGINT', 'UBIGINT') THEN try_cast(ms_played AS BIGINT) END AS ms,
    spotify_track_uri IS NOT NULL AND json_type(spotify_track_uri) <> 'NULL' AS track_present,
    CASE WHEN json_type(spotify_track_uri) = 'VARCHAR'
              AND regexp_full_match(spotify_track_uri ->> '$', 'spotify:track:[0-9A-Za-z]{22}')
         THEN spotify_track_uri ->> '$' END AS track,
    CASE WHEN json_type(spotify_episode_uri) = 'VARCHAR' AND spotify_episode_uri ->> '$' <> ''
         THEN spotify_episode_uri ->> '$' END AS episode,
    CASE WHEN json_type(audiobook_uri) = 'VARCHAR' AND audiobook_uri ->> '$' <> ''
         THEN audiobook_uri ->> '$' END AS audiobook,
    coalesce(json_type(skipped) = 'BOOLEAN' AND skipped ->> '$' = 'true', false) AS skip
  FROM located
), clean AS (
  SELECT listener, t, coalesce(track, episode, audiobook) AS content, ms, track, skip FROM typed
  WHERE listener IS NOT NULL AND t IS NOT NULL AND ms >= 0 AND NOT (track_present AND track IS NULL)
    AND coalesce(track, episode, audiobook) IS NOT NULL
), plays AS (
  SELECT listener, t, content, ms, any_value(track) AS track, any_value(skip) AS skip
  FROM clean GROUP BY listener, t, content, ms
)
SELECT strftime(t, '%Y-%m-%d') AS event_date, track AS track_uri, count(*)::BIGINT AS plays,
       count(*) FILTER (WHERE ms >= 30000)::BIGINT AS streams, sum(ms)::BIGINT AS ms_played_total,
       count(DISTINCT listener)::BIGINT AS unique_listeners,
       sum(skip::INTEGER)::DOUBLE / count(*) AS skip_rate
FROM plays WHERE track IS NOT NULL GROUP BY ALL ORDER BY event_date, track_uri
"""


def duckdb_daily_track_stats(root: Path, files: list[str], out: Path, threads: int) -> int:
    """The DuckDB baseline: daily_track_stats of `files` (paths under `root`) into `out`; returns its rows."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    params = {"files": [str(root / f) for f in files], "root": str(root), "iso": ISO_TS}
    con.execute(f"COPY ({DUCKDB_STATS_SQL}) TO '{out}' (FORMAT parquet)", params)
    return con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]


def _duckdb_child(root: str, files_json: str, out: str, threads: int) -> None:
    import duckdb  # noqa: F401 - imported before the clock starts, like the ETL's modules

    files = json.loads(Path(files_json).read_text())
    started = time.perf_counter()
    rows = duckdb_daily_track_stats(Path(root), files, Path(out), threads)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": round(seconds, 3), "rows": rows, "peak_rss_mb": round(peak / 2**20, 1)}))


def _generate(cache: Path, records: int, seed: int) -> tuple[Path, dict]:
    from spotify_jobs.etl.generator import GenerationConfig, generate_exports
    from spotify_jobs.storage.object_store import LocalObjectStore
    from spotify_jobs.storage.tenant_storage import TenantStorage

    root = cache / f"records-{records}-seed-{seed}"
    report_path = root / "report.json"
    landing = root / "tenants" / TENANT / "landing" / DATE
    if not report_path.exists():
        storage = TenantStorage(LocalObjectStore(root), TENANT)
        report = generate_exports(storage, DATE, GenerationConfig(records=records, seed=seed), replace=True)
        report_path.write_text(json.dumps(report.as_dict()))
    return landing, json.loads(report_path.read_text())


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*"):
            with contextlib.suppress(OSError):  # gone meanwhile
                pids += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # gone meanwhile
        pass
    return 0


def _child(args: list[str], sample_memory: bool = False) -> dict:
    """Run one side; its JSON line with its wall time, and with `sample_memory` the peak PSS of its process tree
    (reading smaps costs this process about a third of a core, so timed runs go without)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=out, stderr=err, text=True)
        peak_kib = 0
        while proc.poll() is None:
            if sample_memory:
                peak_kib = max(peak_kib, sum(_pss_kib(pid) for pid in _tree(proc.pid)))
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args[:3])} failed ({proc.returncode}): {err.read()[-2000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 3)
    result["peak_pss_mb"] = round(peak_kib / 1024, 1) if peak_kib else None
    return result


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "all_seconds": [r["seconds"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "bench-etl")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each side; the fastest counts.")
    args = parser.parse_args()

    landing, report = _generate(args.cache.resolve(), args.records, args.seed)
    out = args.cache.resolve() / "out"
    unreadable = set(report["unreadable_files"])
    readable = sorted(
        p.relative_to(landing).as_posix()
        for p in landing.rglob("Streaming_History_Audio_*.json")
        if p.relative_to(landing).as_posix() not in unreadable
    )
    files_json = out / "duckdb-files.json"
    files_json.parent.mkdir(parents=True, exist_ok=True)
    files_json.write_text(json.dumps(readable))

    etl = ["-c", ETL_CHILD, str(landing), TENANT]
    load_before = round(os.getloadavg()[0], 2)
    cpus = len(os.sched_getaffinity(0))
    duckdb_sides = {"duckdb_1_thread": 1, "duckdb_all_threads": cpus}
    commands = {
        **{
            side: [
                __file__,
                "--duckdb-child",
                str(landing),
                str(files_json),
                str(out / f"{side}.parquet"),
                str(n),
            ]
            for side, n in duckdb_sides.items()
        },
        "etl_full": [*etl, str(out / "full"), ",".join(ETL_OUTPUTS)],
        "etl_stats": [*etl, str(out / "stats"), "quarantined_events,daily_track_stats"],
    }
    runs: dict[str, list[dict]] = {side: [] for side in commands}
    for _ in range(args.repeat):  # interleaved, so that load from elsewhere hits every side alike
        for side, command in commands.items():
            runs[side].append(_child(command))
    peak_pss = {
        side: _child(command, sample_memory=True)["peak_pss_mb"] for side, command in commands.items()
    }

    import pyarrow.parquet as pq

    duck_stats = pq.read_table(out / "duckdb_1_thread.parquet")
    equal = all(
        pq.read_table(path).equals(duck_stats, check_metadata=False)
        for path in (out / "duckdb_all_threads.parquet", out / "full" / "daily_track_stats.parquet",
                     out / "stats" / "daily_track_stats.parquet")
    )  # fmt: skip
    best = {side: _best(side_runs) for side, side_runs in runs.items()}
    records_in = best["etl_full"]["records_in"]

    def figures(side: str) -> dict:
        run = best[side]
        return {
            "seconds": run["seconds"],
            "all_seconds": run["all_seconds"],
            "records_per_s": round(records_in / run["seconds"]),
            # The largest of all runs (not only the fastest one's).
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[side]),
            "peak_pss_mb": peak_pss[side],
            **({"threads": run["threads"]} if "threads" in run else {}),
        }

    result: dict[str, object] = {
        "records_in": records_in,
        "files": best["etl_full"]["files"],
        "bytes": sum(p.stat().st_size for p in landing.rglob("*.json")),
        "cpus": cpus,
        "load_avg_1m": [load_before, round(os.getloadavg()[0], 2)],  # before and after the runs
        **{side: figures(side) for side in runs},
    }
    for ours in ("etl_full", "etl_stats"):
        for duck in duckdb_sides:
            a, b = result[ours], result[duck]
            result[f"throughput_{ours}_vs_{duck}"] = round(best[duck]["seconds"] / best[ours]["seconds"], 2)
            result[f"rss_{ours}_vs_{duck}"] = round(a["peak_rss_mb"] / b["peak_rss_mb"], 2)
            if a["peak_pss_mb"] and b["peak_pss_mb"]:
                result[f"pss_{ours}_vs_{duck}"] = round(a["peak_pss_mb"] / b["peak_pss_mb"], 2)
    result["daily_track_stats_equal"] = equal
    result["daily_track_stats_rows"] = duck_stats.num_rows
    ours, duck = result["etl_full"], result["duckdb_all_threads"]
    result["goal"] = {
        "throughput_ratio": result["throughput_etl_full_vs_duckdb_all_threads"],
        "throughput_ratio_wanted": GOAL_RATIO,
        "pss_mb": [ours["peak_pss_mb"], duck["peak_pss_mb"]],
        "rss_mb": [ours["peak_rss_mb"], duck["peak_rss_mb"]],
        "met": bool(
            result["throughput_etl_full_vs_duckdb_all_threads"] >= GOAL_RATIO
            and (ours["peak_pss_mb"] or 0) <= (duck["peak_pss_mb"] or 0)
            and ours["peak_rss_mb"] <= duck["peak_rss_mb"]
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--duckdb-child":
        _duckdb_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
