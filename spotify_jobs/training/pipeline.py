"""The training pipeline's steps as plain functions; the assets and `bench train` both call these.

dataset frame -> train (resumable, checkpointed) -> publish a registry version (candidate)
-> evaluate it on the hold-out -> recommend with it and promote it to `latest`.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import pandas as pd

from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.checkpoints import CheckpointStore, checkpoint_run_key
from spotify_jobs.training.config import MODEL_CODE_VERSION, MODEL_FAMILY, TrainingConfig
from spotify_jobs.training.dataset import Interactions, encode
from spotify_jobs.training.evaluation import Evaluation, RankingMetrics, evaluate, loss_curve_png
from spotify_jobs.training.progress import ProgressCallback, TrainingRun
from spotify_jobs.training.registry import ModelRegistry, ModelVersion, RegistryError

RANKERS = ("model", "popularity")
EVALUATION_COLUMNS: dict[str, str] = {
    "version": "string",
    "ranker": "string",  # model | popularity
    "k": "int64",
    "users": "int64",
    "test_pairs": "int64",
    "recall_at_k": "float64",
    "ndcg_at_k": "float64",
}


def code_version() -> str:
    """What produced a model: the model code's own version and the installed package's."""
    try:
        package = importlib.metadata.version("spotify_jobs")
    except importlib.metadata.PackageNotFoundError:
        package = "unknown"
    return f"{MODEL_CODE_VERSION}+spotify_jobs-{package}"


def train_model(
    data: Interactions,
    config: TrainingConfig,
    checkpoint_storage: TenantStorage | None,
    on_progress: ProgressCallback | None = None,
    device: str | None = None,
) -> TrainingRun:
    """Train on `data`, checkpointing to (and resuming from) `checkpoint_storage` when given."""
    from spotify_jobs.training import trainer  # imports torch

    checkpoints = None
    if checkpoint_storage is not None:
        checkpoints = CheckpointStore(checkpoint_storage, checkpoint_run_key(data.fingerprint, config))
    return trainer.train(data, config, checkpoints=checkpoints, on_progress=on_progress, device=device)


def model_version(data: Interactions, config: TrainingConfig, run: TrainingRun) -> ModelVersion:
    """The registry version of a finished training run, with everything its manifest must say."""
    manifest = {
        "model_family": MODEL_FAMILY,
        "code_version": code_version(),
        "config": config.to_dict(),
        "data_window": data.window.to_dict(),
        "dataset_fingerprint": data.fingerprint,
        "users": data.num_users,
        "items": data.num_items,
        "train_pairs": len(data.train_users),
        "training": {
            "epochs": run.epochs,
            "losses": run.losses,
            "samples_per_s": run.samples_per_s,
            "seconds": run.seconds,
            "device": run.device,
            "threads": run.threads,
            "resumed_from": list(run.resumed_from) if run.resumed_from else None,
        },
    }
    return ModelVersion(
        factors=run.factors,
        listener_ids=data.listener_ids,
        track_uris=data.track_uris,
        seen_users=data.train_users,
        seen_items=data.train_items,
        manifest=manifest,
    )


@dataclass(frozen=True)
class PublishedModel:
    version: str
    run: TrainingRun
    data: Interactions
    loss_curve_png: bytes


def train_and_publish(
    storage: TenantStorage,
    frame: pd.DataFrame,
    config: TrainingConfig,
    on_progress: ProgressCallback | None = None,
    device: str | None = None,
) -> PublishedModel:
    """Train on a dataset frame with checkpoints in `storage`, publish the result as the candidate version.

    The checkpoint is removed only once the version is stored, so a kill at any point loses at most the
    work since the last checkpoint.
    """
    data = encode(frame)
    run = train_model(data, config, storage, on_progress, device)
    curve = loss_curve_png(run.losses)
    version = ModelRegistry(storage).publish(model_version(data, config, run), curve)
    CheckpointStore(storage, checkpoint_run_key(data.fingerprint, config)).clear()
    return PublishedModel(version, run, data, curve)


def evaluate_candidate(storage: TenantStorage, frame: pd.DataFrame) -> tuple[str, Evaluation]:
    """Evaluate the registry's candidate on the hold-out of the dataset it was trained on; record it."""
    registry = ModelRegistry(storage)
    version = registry.candidate()
    if version is None:
        raise RegistryError("no candidate model version to evaluate: materialise recommendation_model first")
    data = encode(frame)
    trained_on = registry.manifest(version)["dataset_fingerprint"]
    if trained_on != data.fingerprint:
        raise RegistryError(
            f"candidate {version} was trained on dataset {trained_on}, the current training_dataset is "
            f"{data.fingerprint}: materialise recommendation_model again before evaluating"
        )
    evaluation = evaluate(registry.load(version).factors, data)
    registry.record_evaluation(version, evaluation)
    return version, evaluation


def evaluation_frame(version: str, evaluation: Evaluation) -> pd.DataFrame:
    """The `model_evaluation` asset: one row per ranker on the same hold-out."""
    rows = [
        {
            "version": version,
            "ranker": ranker,
            "k": evaluation.k,
            "users": evaluation.users,
            "test_pairs": evaluation.test_pairs,
            "recall_at_k": metrics.recall,
            "ndcg_at_k": metrics.ndcg,
        }
        for ranker, metrics in zip(RANKERS, (evaluation.model, evaluation.popularity), strict=True)
    ]
    return pd.DataFrame(rows).astype(EVALUATION_COLUMNS)


def evaluation_of(frame: pd.DataFrame) -> tuple[str, Evaluation]:
    """Read a `model_evaluation` frame back: (version, evaluation)."""
    missing = [c for c in EVALUATION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"model_evaluation frame lacks column(s) {', '.join(missing)}")
    by_ranker = frame.set_index("ranker")
    if sorted(by_ranker.index) != sorted(RANKERS) or frame["version"].nunique() != 1:
        raise ValueError(f"model_evaluation frame must hold one version's {' and '.join(RANKERS)} rows")
    model, popularity = (by_ranker.loc[r] for r in RANKERS)
    evaluation = Evaluation(
        k=int(model["k"]),
        users=int(model["users"]),
        test_pairs=int(model["test_pairs"]),
        model=RankingMetrics(float(model["recall_at_k"]), float(model["ndcg_at_k"])),
        popularity=RankingMetrics(float(popularity["recall_at_k"]), float(popularity["ndcg_at_k"])),
    )
    return str(frame["version"].iloc[0]), evaluation


def recommend_and_promote(storage: TenantStorage, version: str, k: int) -> tuple[pd.DataFrame, str | None]:
    """Top-`k` recommendations of `version` per listener, then promote it (refused unless it beat popularity).

    Returns the recommendations (with the version on every row) and the previously promoted version.
    """
    registry = ModelRegistry(storage)
    registry.require_promotable(version)
    recommendations = registry.load(version).recommend(k).assign(model_version=version)
    previous = registry.promote(version)
    return recommendations.astype({"model_version": "string"}), previous
