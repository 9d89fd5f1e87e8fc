"""Protects the training assets: they materialise per tenant, promote only past the blocking check, and
only the training step asks for a GPU."""

from __future__ import annotations

import base64
import subprocess
import sys

import dagster as dg
import pytest

from spotify_jobs.k8s.tags import GPU_TAG, JOB_TYPE_TAG
from spotify_jobs.storage.io_manager import TenantParquetIOManager
from spotify_jobs.tenancy.partitions import tenant_daily_partitions
from spotify_jobs.training import assets as training_assets
from spotify_jobs.training.registry import ModelRegistry

from .tenant_data import FAST, TENANT

MODEL_CONFIG = {k: v for k, v in FAST.to_dict().items() if k != "init_std"} | {"checkpoint_every_batches": 4}
WEAK_CONFIG = MODEL_CONFIG | {"epochs": 1, "learning_rate": 1e-6}
# the ETL's asset, as the code location defines it (its dependency mapping is validated against it)
LISTENING_EVENTS = dg.AssetSpec("listening_events", partitions_def=tenant_daily_partitions)


def _materialize(platform, instance, model_config: dict) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [LISTENING_EVENTS, *training_assets.assets, *training_assets.asset_checks],
        selection=dg.AssetSelection.groups("training"),
        partition_key=TENANT,
        resources={"platform": platform, "io_manager": TenantParquetIOManager(platform=platform)},
        run_config={"ops": {"recommendation_model": {"config": model_config}}},
        instance=instance,
        raise_on_error=False,
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", [TENANT])
        yield instance


def _metadata(result: dg.ExecuteInJobResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in event.metadata.items()}


def _check_passed(result: dg.ExecuteInJobResult) -> bool:
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation.passed


def test_training_assets_materialise_evaluate_and_promote(platform, instance, tenant_events):
    result = _materialize(platform, instance, MODEL_CONFIG)
    assert result.success

    dataset = _metadata(result, "training_dataset")
    assert dataset["listeners"] == 150 and dataset["test_pairs"] > 0
    model = _metadata(result, "recommendation_model")
    assert model["device"] == "cpu" and model["epochs"] == FAST.epochs and model["samples_per_s"] > 0
    png = base64.b64decode(model["loss_curve"].split("base64,", 1)[1].rstrip(")"))
    assert png.startswith(b"\x89PNG")
    evaluation = _metadata(result, "model_evaluation")
    assert evaluation["recall_at_10"] > evaluation["popularity_recall_at_10"]
    assert _check_passed(result)

    registry = ModelRegistry(tenant_events)
    version = model["version"]
    assert registry.latest() == version == evaluation["version"]
    recommendations = tenant_events.read_parquet("assets/track_recommendations/latest.parquet")
    assert set(recommendations["model_version"]) == {version}
    assert recommendations["listener_id"].nunique() == 150
    assert recommendations.groupby("listener_id").size().eq(20).all()
    assert _metadata(result, "track_recommendations")["previous_version"] == "none"
    assert not list(tenant_events.list("models/recommendation/checkpoints"))


def test_a_model_that_loses_to_popularity_is_not_promoted(platform, instance, tenant_events):
    good = _materialize(platform, instance, MODEL_CONFIG)
    promoted = _metadata(good, "recommendation_model")["version"]

    weak = _materialize(platform, instance, WEAK_CONFIG)
    assert not weak.success
    assert not _check_passed(weak)
    assert not weak.asset_materializations_for_node("track_recommendations")
    registry = ModelRegistry(tenant_events)
    candidate = _metadata(weak, "recommendation_model")["version"]
    assert registry.candidate() == candidate != promoted
    assert registry.latest() == promoted
    assert not registry.evaluation(candidate).beats_baseline


def test_only_the_training_step_asks_for_a_gpu():
    by_name = {a.key.to_user_string(): a for a in training_assets.assets}
    assert set(by_name) == {
        "training_dataset",
        "recommendation_model",
        "model_evaluation",
        "track_recommendations",
    }
    for name, asset in by_name.items():
        tags = asset.node_def.tags
        assert tags[JOB_TYPE_TAG] == "ml-training"
        assert (tags.get(GPU_TAG) == "true") == (name == "recommendation_model")
        assert asset.group_names_by_key[asset.key] == "training"
        assert asset.descriptions_by_key[asset.key]
    policy = by_name["recommendation_model"].node_def.retry_policy
    assert policy.max_retries >= 2 and policy.backoff == dg.Backoff.EXPONENTIAL and policy.delay > 0
    [check] = training_assets.asset_checks
    assert next(iter(check.check_specs)).blocking


def test_the_definitions_do_not_pay_for_torch():
    code = (
        "import sys, spotify_jobs.training.assets; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
