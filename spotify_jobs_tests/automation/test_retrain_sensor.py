"""Protects the ETL -> training sensor: a tenant's model is retrained once enough new clean data has been
materialised since its last model (days or rows), once per threshold, and only where training can run."""

from __future__ import annotations

import dagster as dg
import pytest

from spotify_jobs.automation import RetrainPolicy
from spotify_jobs.automation.retraining import RetrainLedger
from spotify_jobs.automation.sensors import RETRAIN_SENSOR
from spotify_jobs.k8s.tags import GPU_TAG, TENANT_TAG
from spotify_jobs_tests.automation.location import build_test_definitions


def clean_data(instance, tenant: str, day: str, rows: int = 100) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="listening_events", partition=f"{day}|{tenant}", metadata={"dagster/row_count": rows}
        )
    )


def model_trained(instance, tenant: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="tenant_model", partition=tenant))


def tick(defs, instance, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs
    )
    return defs.get_sensor_def(RETRAIN_SENSOR).evaluate_tick(context)


def test_retrains_after_seven_new_days_of_clean_data(test_defs, instance, onboard):
    onboard("enterprise-001", "premium-client-001")
    for day in range(1, 7):
        clean_data(instance, "enterprise-001", f"2026-11-0{day}")
    clean_data(instance, "enterprise-001", "2026-11-06")  # a re-run of a day is not a new day
    clean_data(instance, "premium-client-001", "2026-11-01")

    first = tick(test_defs, instance)
    assert not first.run_requests
    ledger = RetrainLedger.from_json(first.cursor)
    assert len(ledger.tallies["enterprise-001"].dates) == 6

    clean_data(instance, "enterprise-001", "2026-11-07")
    second = tick(test_defs, instance, first.cursor)
    [request] = second.run_requests
    assert request.job_name == "ml_training_job"
    assert request.partition_key == "enterprise-001"
    assert request.tags[TENANT_TAG] == "enterprise-001"
    assert request.tags[GPU_TAG] == "true"
    assert request.tags["spotify-jobs/trigger"] == "retrain"
    assert request.run_key.startswith("enterprise-001|")

    third = tick(test_defs, instance, second.cursor)
    assert not third.run_requests, "asked once; counting starts afresh"
    assert "premium-client-001" in RetrainLedger.from_json(third.cursor).tallies


def test_a_new_model_resets_the_count(test_defs, instance, onboard):
    onboard("enterprise-001")
    for day in range(1, 7):
        clean_data(instance, "enterprise-001", f"2026-11-0{day}")
    model_trained(instance, "enterprise-001")  # the weekly schedule trained it meanwhile
    clean_data(instance, "enterprise-001", "2026-11-07")

    result = tick(test_defs, instance)

    assert not result.run_requests
    assert RetrainLedger.from_json(result.cursor).tallies["enterprise-001"].dates == {"2026-11-07"}


def test_retrains_after_enough_new_rows(factory, platform, instance, onboard):
    defs = build_test_definitions(factory, platform, retrain_policy=RetrainPolicy(min_new_rows=1000))
    onboard("premium-client-001")
    clean_data(instance, "premium-client-001", "2026-11-01", rows=600)
    assert not tick(defs, instance).run_requests
    clean_data(instance, "premium-client-001", "2026-11-02", rows=600)

    result = tick(defs, instance)

    assert [r.partition_key for r in result.run_requests] == ["premium-client-001"]


def test_tenants_that_cannot_train_are_not_asked_to(factory, platform, instance, onboard, capsys):
    defs = build_test_definitions(factory, platform, retrain_policy=RetrainPolicy(min_new_partitions=1))
    onboard("startup-042")
    clean_data(instance, "startup-042", "2026-11-01")

    result = tick(defs, instance)

    assert not result.run_requests
    assert "startup-042 has new data but cannot be trained" in capsys.readouterr().err
    assert "startup-042" not in RetrainLedger.from_json(result.cursor).tallies


def test_the_policy_refuses_thresholds_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        RetrainPolicy(min_new_partitions=0)
