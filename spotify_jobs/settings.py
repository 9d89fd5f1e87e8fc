"""The one place environment variables are read.

`load_settings()` is called once where the program starts (definitions, CLI); everything else receives the
`Settings` object. Seed variables keep their old names (NAMESPACE, PRIORITY, ...); the project's own start
with SPOTIFY_JOBS_.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spotify_jobs.tenancy.registry import DEFAULT_REGISTRY_PATH, validate_tenant_id
from spotify_jobs.tenancy.tiers import TIER_ORDER, Priority

DEV_PSEUDONYM_SECRET = "dev-only-pseudonymisation-secret"  # the embedded default; refused in production
PSEUDONYM_SECRET_VAR = "SPOTIFY_JOBS_PSEUDONYM_SECRET"
ENVIRONMENT_SHORT = {"development": "dev", "staging": "stg", "production": "prd"}


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot run with."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Everything the platform reads from the environment, validated at start-up."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    namespace: str = Field("spotify-ai-agent-dev", validation_alias=_env("NAMESPACE"))
    environment: Literal["development", "staging", "production"] = Field(
        "development", validation_alias=_env("ENVIRONMENT")
    )
    tenant_id: str | None = Field(None, validation_alias=_env("TENANT_ID"))
    priority: Priority = Field(Priority.NORMAL, validation_alias=_env("PRIORITY"))
    resource_tier: str = Field("medium", validation_alias=_env("RESOURCE_TIER"))
    dry_run: bool = Field(False, validation_alias=_env("DRY_RUN"))
    parallel_jobs: int = Field(4, ge=1, le=256, validation_alias=_env("PARALLEL_JOBS"))

    data_root: str = Field("data", validation_alias=_env("SPOTIFY_JOBS_DATA_ROOT"))
    backup_root: str = Field("data/backups", validation_alias=_env("SPOTIFY_JOBS_BACKUP_ROOT"))
    backup_kms_key_id: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_BACKUP_KMS_KEY_ID"))
    s3_endpoint_url: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_S3_ENDPOINT_URL"))
    executor: Literal["in_process", "multiprocess", "k8s"] = Field(
        "in_process", validation_alias=_env("SPOTIFY_JOBS_EXECUTOR")
    )
    image: str = Field("spotify-jobs:0.1.0", validation_alias=_env("SPOTIFY_JOBS_IMAGE"))
    gpu_image: str = Field("spotify-jobs-gpu:0.1.0", validation_alias=_env("SPOTIFY_JOBS_GPU_IMAGE"))
    service_account: str = Field("spotify-jobs-step", validation_alias=_env("SPOTIFY_JOBS_SERVICE_ACCOUNT"))
    pseudonym_secret: SecretStr = Field(
        SecretStr(DEV_PSEUDONYM_SECRET), validation_alias=_env(PSEUDONYM_SECRET_VAR)
    )
    tenant_registry: Path = Field(
        DEFAULT_REGISTRY_PATH, validation_alias=_env("SPOTIFY_JOBS_TENANT_REGISTRY")
    )
    pushgateway_url: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_PUSHGATEWAY_URL"))
    webserver_base_url: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_WEBSERVER_BASE_URL"))

    # Failure alerts: a channel is on when its credential or address is set.
    slack_token: SecretStr | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_SLACK_TOKEN"))
    slack_channel: str = Field("#spotify-jobs-alerts", validation_alias=_env("SPOTIFY_JOBS_SLACK_CHANNEL"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SPOTIFY_JOBS_SLACK_API_URL"))
    pagerduty_routing_key: SecretStr | None = Field(
        None, validation_alias=_env("SPOTIFY_JOBS_PAGERDUTY_ROUTING_KEY")
    )
    pagerduty_events_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", validation_alias=_env("SPOTIFY_JOBS_PAGERDUTY_EVENTS_URL")
    )
    smtp_host: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_SMTP_HOST"))
    smtp_port: int = Field(25, ge=1, le=65535, validation_alias=_env("SPOTIFY_JOBS_SMTP_PORT"))
    smtp_from: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_SMTP_FROM"))
    smtp_to: str = Field("", validation_alias=_env("SPOTIFY_JOBS_SMTP_TO"))  # comma-separated
    smtp_username: str | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("SPOTIFY_JOBS_SMTP_PASSWORD"))
    smtp_starttls: bool = Field(False, validation_alias=_env("SPOTIFY_JOBS_SMTP_STARTTLS"))

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str | None) -> str | None:
        return validate_tenant_id(value) if value else None

    @field_validator("resource_tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        if value not in TIER_ORDER:
            raise ValueError(f"allowed: {', '.join(TIER_ORDER)}")
        return value

    @field_validator("data_root", "backup_root")
    @classmethod
    def _root(cls, value: str) -> str:
        if "://" in value and not value.startswith("s3://"):
            raise ValueError("allowed: a local directory or s3://bucket/prefix")
        if value.startswith("s3://") and not value[len("s3://") :].split("/", 1)[0]:
            raise ValueError("an s3:// root needs a bucket name: s3://bucket/prefix")
        return value

    @field_validator("image", "gpu_image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        if "@sha256:" not in value and (":" not in value.rsplit("/", 1)[-1] or value.endswith(":latest")):
            raise ValueError(
                "allowed: an image pinned by an immutable tag or digest (not ':latest' or untagged)"
            )
        return value

    @model_validator(mode="after")
    def _production_secret(self) -> Settings:
        if (
            self.environment == "production"
            and self.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET
        ):
            raise ValueError("SPOTIFY_JOBS_PSEUDONYM_SECRET must be set to a real secret in production")
        return self

    @property
    def environment_short(self) -> str:
        return ENVIRONMENT_SHORT[self.environment]

    @property
    def data_root_is_s3(self) -> bool:
        return self.data_root.startswith("s3://")

    @property
    def pseudonym_secret_env_var(self) -> str | None:
        """The variable holding the secret when it came from the environment (resources then use EnvVar,
        so the value never shows in the UI); None when it was passed in or is the development default."""
        name = PSEUDONYM_SECRET_VAR
        from_env = os.environ.get(name) == self.pseudonym_secret.get_secret_value()
        return name if from_env else None


def _variable_name(location: str) -> str:
    """The environment variable behind an error location (a field name or one of its aliases)."""
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = alias.choices if isinstance(alias, AliasChoices) else []
        if location == field or location in names:
            return str(names[0]) if names else field.upper()
    return location


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (overrides win); raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["loc"]:
                name = _variable_name(str(error["loc"][0]))
                problems.append(f"{name}={error.get('input')!r}: {message}")
            else:
                problems.append(message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
