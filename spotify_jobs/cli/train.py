"""`bench train`: train one tenant's model on its clean events with the asset's code; one JSON line out."""

from __future__ import annotations

import json
import tempfile

import click

from spotify_jobs.cli.common import fail_on_bad_input
from spotify_jobs.resources import PlatformResource
from spotify_jobs.settings import load_settings
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.config import DatasetConfig, TrainingConfig


@click.command("train")
@click.option("--tenant", required=True, help="Tenant whose clean listening events to train on.")
@click.option(
    "--data-root", default=None, help="Data root (directory or s3://bucket/prefix); default: settings."
)
@click.option("--epochs", type=int, default=None, help="Epochs (default: the asset's).")
@click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present."
)
@fail_on_bad_input
def bench_train(tenant: str, data_root: str | None, epochs: int | None, device: str | None) -> None:
    """Build the dataset, train (checkpointing to a scratch directory, as the asset does to storage),
    evaluate against popularity; the tenant's registry is left untouched."""
    from spotify_jobs.training.dataset import build_training_dataset, encode
    from spotify_jobs.training.evaluation import evaluate
    from spotify_jobs.training.pipeline import train_model

    settings = load_settings(**({"data_root": data_root} if data_root else {}))
    platform = PlatformResource.from_settings(settings)
    tenant = platform.tenant(tenant).id
    config = TrainingConfig(**({"epochs": epochs} if epochs is not None else {}))
    data = encode(build_training_dataset(platform.tenant_storage(tenant), DatasetConfig()))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        run = train_model(data, config, TenantStorage(LocalObjectStore(scratch), tenant), device=device)
    evaluation = evaluate(run.factors, data)
    result = {
        "tenant": tenant,
        "users": data.num_users,
        "items": data.num_items,
        "train_pairs": len(data.train_users),
        "dim": config.dim,
        "batch_size": config.batch_size,
        "epochs": run.epochs,
        "samples_per_s": round(run.samples_per_s, 1),
        "seconds": round(run.seconds, 3),
        "recall_at_10": evaluation.model.recall,
        "ndcg_at_10": evaluation.model.ndcg,
        "popularity_recall_at_10": evaluation.popularity.recall,
        "popularity_ndcg_at_10": evaluation.popularity.ndcg,
        "beats_baseline": evaluation.beats_baseline,
        "device": run.device,
        "threads": run.threads,
    }
    click.echo(json.dumps(result))
