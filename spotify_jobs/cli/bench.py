"""`spotify-jobs bench`: run a workload's own code outside Dagster and print one JSON line of figures.

The CLI root attaches each domain's subcommand (`bench etl` from cli/etl.py, `bench train` from cli/train.py).
"""

from __future__ import annotations

import click


@click.group("bench")
def bench() -> None:
    """Benchmark a workload with the same code its assets run, without Dagster."""
