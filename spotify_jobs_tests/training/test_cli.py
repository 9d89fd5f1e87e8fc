"""Protects `bench train`: one JSON line with the figures scripts read, and clear errors for bad input."""

from __future__ import annotations

import json

from click.testing import CliRunner

from spotify_jobs.cli.bench import bench
from spotify_jobs.cli.train import bench_train

from .tenant_data import TENANT

KEYS = {
    "users",
    "items",
    "dim",
    "batch_size",
    "epochs",
    "samples_per_s",
    "recall_at_10",
    "ndcg_at_10",
    "popularity_recall_at_10",
    "device",
}


def test_bench_train_prints_one_json_line(tenant_events, settings):
    result = CliRunner().invoke(
        bench, ["train", "--tenant", TENANT, "--data-root", settings.data_root, "--epochs", "6"]
    )
    assert result.exit_code == 0, result.output
    [line] = result.output.strip().splitlines()
    figures = json.loads(line)
    assert set(figures) >= KEYS
    assert (figures["users"], figures["items"], figures["epochs"], figures["device"]) == (150, 240, 6, "cpu")
    assert figures["samples_per_s"] > 0
    assert figures["recall_at_10"] > figures["popularity_recall_at_10"]
    # a benchmark leaves the tenant's registry and checkpoints alone
    assert not list(tenant_events.list("models"))


def test_bench_train_names_bad_input(settings):
    runner = CliRunner()
    unknown = runner.invoke(bench_train, ["--tenant", "nobody-here", "--data-root", settings.data_root])
    assert unknown.exit_code == 2 and "nobody-here" in unknown.output
    empty = runner.invoke(bench_train, ["--tenant", TENANT, "--data-root", settings.data_root])
    assert empty.exit_code == 2 and "no listening events" in empty.output
    bad = runner.invoke(bench_train, ["--tenant", TENANT, "--data-root", settings.data_root, "--epochs", "0"])
    assert bad.exit_code == 2 and "epochs must be a positive number" in bad.output
