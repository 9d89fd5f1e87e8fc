"""`generate-data` and `bench etl`: one JSON line each, outputs on disk, clear errors for bad input."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from spotify_jobs.cli.bench import bench
from spotify_jobs.cli.etl import generate_data

from .conftest import DATE


def _json_line(output: str) -> dict:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return json.loads(lines[0])


def test_generate_then_bench(tmp_path):
    runner = CliRunner()
    data_root = tmp_path / "data"
    generated = runner.invoke(
        generate_data,
        ["--tenant", "startup-042", "--date", DATE, "--records", "1500", "--seed", "3", "--variant", "legacy",
         "--data-root", str(data_root)],
    )  # fmt: skip
    assert generated.exit_code == 0, generated.output
    report = _json_line(generated.output)
    assert report["records"] == 1500 and report["variant"] == "legacy"
    landing = data_root / "tenants" / "startup-042" / "landing" / DATE
    assert report["landing"] == str(landing.resolve())

    out = tmp_path / "out"
    benched = runner.invoke(
        bench,
        ["etl", "--input", str(landing), "--out", str(out), "--tenant", "startup-042"],
    )
    assert benched.exit_code == 0, benched.output
    line = _json_line(benched.output)
    assert line["records_in"] == report["records_in"]
    assert line["clean"] == report["clean"] and line["duplicates"] == report["duplicates"]
    assert line["conserved"] is True
    assert line["seconds"] > 0 and line["peak_rss_mb"] > 0 and line["records_per_s"] > 0
    stats = pq.read_table(out / "daily_track_stats.parquet")
    assert stats.num_rows == line["rows"]["daily_track_stats"] > 0
    assert {p.name for p in out.iterdir()} == {
        "listening_events.parquet",
        "quarantined_events.parquet",
        "daily_track_stats.parquet",
    }

    again = runner.invoke(generate_data, ["--tenant", "startup-042", "--date", DATE, "--records", "10",
                                          "--data-root", str(data_root)])  # fmt: skip
    assert again.exit_code == 2 and "already holds files" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "../etc", "--date", DATE, "--records", "10"], "not a DNS-1123 label"),
        (["--tenant", "Bad_Tenant", "--date", DATE, "--records", "10"], "not a DNS-1123 label"),
        (["--tenant", "t1", "--date", "2026-02-30", "--records", "10"], "not a date"),
        (["--tenant", "t1", "--date", DATE, "--records", "0"], "records"),
        (["--tenant", "t1", "--date", DATE, "--records", "10", "--variant", "old"], "variant"),
    ],
)
def test_generate_data_bad_input(tmp_path, args, message):
    result = CliRunner().invoke(generate_data, [*args, "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output
    assert not any(tmp_path.rglob("*.json"))


def test_bench_etl_bad_input(tmp_path):
    (tmp_path / "in").mkdir()
    runner = CliRunner()
    hostile = runner.invoke(bench, ["etl", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                                    "--tenant", "../x"])  # fmt: skip
    assert hostile.exit_code == 2 and "tenant id" in hostile.output
    empty = runner.invoke(bench, ["etl", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                                  "--tenant", "t1"])  # fmt: skip
    assert empty.exit_code == 2 and "no Streaming_History_Audio_*.json files" in empty.output
    unknown = runner.invoke(bench, ["etl", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                                    "--tenant", "t1", "--outputs", "daily_stats"])  # fmt: skip
    assert unknown.exit_code == 2 and "unknown ETL outputs" in unknown.output
