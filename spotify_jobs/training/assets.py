"""Dagster wiring of the per-tenant recommendation model: dataset, training, evaluation, recommendations.

Only `recommendation_model` asks for a GPU; the other steps run on CPU pods. Promotion of a model version to
`latest` happens in `track_recommendations`, downstream of the blocking `model_beats_popularity` check.
"""

import base64

import dagster as dg
import pandas as pd

from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import TENANT_DIMENSION, tenant_of, tenant_partitions
from spotify_jobs.tenancy.tiers import JobType
from spotify_jobs.training.config import MODEL_CODE_VERSION, DatasetConfig, TrainingConfig
from spotify_jobs.training.dataset import LISTENING_EVENTS, build_training_dataset, window_of
from spotify_jobs.training.pipeline import (
    evaluate_candidate,
    evaluation_frame,
    evaluation_of,
    recommend_and_promote,
    train_and_publish,
)
from spotify_jobs.training.progress import TrainingProgress
from spotify_jobs.training.registry import ModelRegistry

GROUP = "training"
OWNERS = ["team:ml-platform"]
TRAINING_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
_DATASET = DatasetConfig()
_TRAINING = TrainingConfig()


class TrainingDatasetConfig(dg.Config):
    window_days: int = _DATASET.window_days
    holdout_days: int = _DATASET.holdout_days


class RecommendationModelConfig(dg.Config):
    dim: int = _TRAINING.dim
    epochs: int = _TRAINING.epochs
    batch_size: int = _TRAINING.batch_size
    negatives: int = _TRAINING.negatives
    learning_rate: float = _TRAINING.learning_rate
    l2: float = _TRAINING.l2
    seed: int = _TRAINING.seed
    checkpoint_every_batches: int = _TRAINING.checkpoint_every_batches


class TrackRecommendationsConfig(dg.Config):
    per_listener: int = 20


@dg.asset(
    partitions_def=tenant_partitions,
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    op_tags=step_tags(JobType.ML_TRAINING),
    deps=[
        dg.AssetDep(
            LISTENING_EVENTS,
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                partition_dimension_name=TENANT_DIMENSION
            ),
        )
    ],
)
def training_dataset(
    context: dg.AssetExecutionContext, platform: PlatformResource, config: TrainingDatasetConfig
) -> dg.Output[pd.DataFrame]:
    """Implicit feedback per (listener, track) from the tenant's clean music plays, split in time: the
    newest `holdout_days` are the test set (only tracks new to a known listener), the rest train."""
    storage = platform.tenant_storage(tenant_of(context.partition_key))
    with step_meter(context, platform) as meter:
        frame = build_training_dataset(storage, DatasetConfig(config.window_days, config.holdout_days))
        meter.add_records(len(frame))
        meter.add_bytes(frame.memory_usage(deep=True).sum())
    train = frame[frame["split"] == "train"]
    return dg.Output(
        frame,
        metadata={
            "train_pairs": len(train),
            "test_pairs": int((frame["split"] == "test").sum()),
            "listeners": train["listener_id"].nunique(),
            "tracks": train["track_uri"].nunique(),
            **{f"window_{k}": v for k, v in window_of(frame).to_dict().items()},
        },
    )


@dg.asset(
    partitions_def=tenant_partitions,
    group_name=GROUP,
    kinds={"torch"},
    owners=OWNERS,
    op_tags=step_tags(JobType.ML_TRAINING, gpu=True),
    retry_policy=TRAINING_RETRY_POLICY,
    code_version=MODEL_CODE_VERSION,
)
def recommendation_model(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    config: RecommendationModelConfig,
    training_dataset: pd.DataFrame,
) -> dg.MaterializeResult:
    """Matrix factorisation (BPR loss, sparse embeddings) trained on the tenant's training_dataset, on the
    GPU when the pod has one. Checkpoints go to tenant storage, so a preempted or retried step resumes where
    it stopped. The result is stored as a new immutable registry version, the candidate for promotion."""
    storage = platform.tenant_storage(tenant_of(context.partition_key))

    def log(progress: TrainingProgress) -> None:
        (context.log.debug if progress.event == "checkpoint" else context.log.info)(progress.describe())

    training = TrainingConfig(**config.model_dump())
    with step_meter(context, platform) as meter:
        published = train_and_publish(storage, training_dataset, training, on_progress=log)
        meter.add_records(published.run.samples)
    run, registry = published.run, ModelRegistry(storage)
    curve = base64.b64encode(published.loss_curve_png).decode()
    return dg.MaterializeResult(
        metadata={
            "version": published.version,
            "listeners": published.data.num_users,
            "tracks": published.data.num_items,
            "dim": training.dim,
            "epochs": run.epochs,
            "final_loss": run.losses[-1],
            "samples_per_s": run.samples_per_s,
            "device": run.device,
            "threads": run.threads,
            "resumed_from": str(run.resumed_from) if run.resumed_from else "none",
            "loss_curve": dg.MetadataValue.md(f"![loss curve](data:image/png;base64,{curve})"),
            "loss_curve_path": dg.MetadataValue.path(registry.uri(published.version, "loss_curve.png")),
            "manifest": dg.MetadataValue.path(registry.uri(published.version)),
        }
    )


@dg.asset(
    partitions_def=tenant_partitions,
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    op_tags=step_tags(JobType.ML_TRAINING),
    deps=[recommendation_model],
)
def model_evaluation(
    context: dg.AssetExecutionContext, platform: PlatformResource, training_dataset: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """Recall@10 and NDCG@10 of the candidate model version on the hold-out, next to the popularity
    baseline's on the same listeners; recorded with the version in the registry."""
    storage = platform.tenant_storage(tenant_of(context.partition_key))
    with step_meter(context, platform) as meter:
        version, evaluation = evaluate_candidate(storage, training_dataset)
        meter.add_records(evaluation.users)
    return dg.Output(
        evaluation_frame(version, evaluation),
        metadata={
            "version": version,
            "users": evaluation.users,
            "recall_at_10": evaluation.model.recall,
            "ndcg_at_10": evaluation.model.ndcg,
            "popularity_recall_at_10": evaluation.popularity.recall,
            "popularity_ndcg_at_10": evaluation.popularity.ndcg,
            "beats_baseline": evaluation.beats_baseline,
        },
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    partitions_def=tenant_partitions,
    op_tags=step_tags(JobType.ML_TRAINING),
)
def model_beats_popularity(model_evaluation: pd.DataFrame) -> dg.AssetCheckResult:
    """The model must beat popularity on recall@10 and NDCG@10; otherwise it is not promoted."""
    version, evaluation = evaluation_of(model_evaluation)
    return dg.AssetCheckResult(
        passed=evaluation.beats_baseline,
        metadata={
            "version": version,
            "recall_at_10": evaluation.model.recall,
            "popularity_recall_at_10": evaluation.popularity.recall,
            "ndcg_at_10": evaluation.model.ndcg,
            "popularity_ndcg_at_10": evaluation.popularity.ndcg,
        },
    )


@dg.asset(
    partitions_def=tenant_partitions,
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    op_tags=step_tags(JobType.ML_TRAINING),
)
def track_recommendations(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    config: TrackRecommendationsConfig,
    model_evaluation: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Top tracks per listener from the evaluated model version, which this step then promotes to the
    registry's `latest` (the registry refuses a version that did not beat the baseline)."""
    storage = platform.tenant_storage(tenant_of(context.partition_key))
    version, _evaluation = evaluation_of(model_evaluation)
    with step_meter(context, platform) as meter:
        recommendations, previous = recommend_and_promote(storage, version, config.per_listener)
        listeners = recommendations["listener_id"].nunique()
        meter.add_records(listeners)
        meter.add_bytes(recommendations.memory_usage(deep=True).sum())
    return dg.Output(
        recommendations,
        metadata={
            "model_version": version,
            "previous_version": previous or "none",
            "listeners": listeners,
            "rows": len(recommendations),
            "preview": dg.MetadataValue.md(recommendations.head(10).to_markdown(index=False)),
        },
    )


assets = [training_dataset, recommendation_model, model_evaluation, track_recommendations]
asset_checks = [model_beats_popularity]
