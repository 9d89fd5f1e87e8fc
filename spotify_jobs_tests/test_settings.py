"""Protects start-up: every setting has its documented default and a bad value names variable, value and rule."""

from __future__ import annotations

import pytest

from spotify_jobs.settings import DEV_PSEUDONYM_SECRET, Settings, SettingsError, load_settings
from spotify_jobs.tenancy.tiers import Priority

SEED_VARIABLES = (
    "NAMESPACE",
    "ENVIRONMENT",
    "TENANT_ID",
    "PRIORITY",
    "RESOURCE_TIER",
    "DRY_RUN",
    "PARALLEL_JOBS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in SEED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("SPOTIFY_JOBS_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_seed():
    settings = load_settings()
    assert settings.namespace == "spotify-ai-agent-dev"
    assert settings.environment == "development"
    assert settings.tenant_id is None
    assert settings.priority is Priority.NORMAL
    assert settings.resource_tier == "medium"
    assert settings.dry_run is False
    assert settings.parallel_jobs == 4
    assert settings.executor == "in_process"
    assert settings.data_root == "data"
    assert settings.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET


def test_seed_variables_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("NAMESPACE", "spotify-ai-agent-prod")
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("TENANT_ID", "enterprise-001")
    monkeypatch.setenv("PRIORITY", "critical")
    monkeypatch.setenv("RESOURCE_TIER", "xlarge")
    monkeypatch.setenv("DRY_RUN", "true")
    monkeypatch.setenv("PARALLEL_JOBS", "16")
    monkeypatch.setenv("SPOTIFY_JOBS_DATA_ROOT", "s3://tenant-data/prod")
    monkeypatch.setenv("SPOTIFY_JOBS_EXECUTOR", "k8s")
    settings = load_settings()
    assert (settings.namespace, settings.environment, settings.tenant_id) == (
        "spotify-ai-agent-prod",
        "staging",
        "enterprise-001",
    )
    assert settings.priority is Priority.CRITICAL
    assert (settings.resource_tier, settings.dry_run, settings.parallel_jobs) == ("xlarge", True, 16)
    assert settings.data_root_is_s3 and settings.executor == "k8s"
    assert settings.environment_short == "stg"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PRIORITY", "urgent", "critical"),
        ("RESOURCE_TIER", "huge", "micro, small, medium, large, xlarge, enterprise"),
        ("PARALLEL_JOBS", "0", "greater than or equal to 1"),
        ("PARALLEL_JOBS", "many", "integer"),
        ("ENVIRONMENT", "prod", "development"),
        ("DRY_RUN", "perhaps", "boolean"),
        ("TENANT_ID", "../etc", "DNS-1123"),
        ("TENANT_ID", "A_B", "DNS-1123"),
        ("SPOTIFY_JOBS_DATA_ROOT", "ftp://host/x", "s3://bucket/prefix"),
        ("SPOTIFY_JOBS_DATA_ROOT", "s3:///prefix", "bucket"),
        ("SPOTIFY_JOBS_EXECUTOR", "celery", "k8s"),
        ("SPOTIFY_JOBS_IMAGE", "spotify-jobs:latest", "immutable tag"),
        ("SPOTIFY_JOBS_IMAGE", "registry.example/spotify-jobs", "immutable tag"),
    ],
)
def test_bad_value_names_the_variable_the_value_and_what_is_allowed(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{variable}={value!r}" in message
    assert expected in message


def test_production_refuses_the_development_pseudonymisation_secret(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="SPOTIFY_JOBS_PSEUDONYM_SECRET must be set"):
        load_settings()
    monkeypatch.setenv("SPOTIFY_JOBS_PSEUDONYM_SECRET", "a-real-secret-from-the-vault")
    assert load_settings().pseudonym_secret_env_var == "SPOTIFY_JOBS_PSEUDONYM_SECRET"


def test_settings_are_immutable():
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.namespace = "other"
