"""The tenant registry: who the platform's tenants are and what each may use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spotify_jobs.tenancy.tiers import TIER_ORDER, Priority

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("tenants.yaml")
TENANT_ID_MAX_LENGTH = 40
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class InvalidTenantId(ValueError):
    """A tenant id that is not a DNS-1123 label of at most 40 characters."""


class TenantRegistryError(ValueError):
    """The registry file is unreadable, malformed, or inconsistent."""


class UnknownTenant(KeyError):
    """A valid tenant id that the registry does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


def validate_tenant_id(tenant_id: object) -> str:
    """Return `tenant_id` if it is a DNS-1123 label of at most 40 characters; raise InvalidTenantId otherwise.

    Tenant ids become namespace names, label values and storage prefixes, so this runs before any I/O.
    """
    if not isinstance(tenant_id, str) or not tenant_id:
        raise InvalidTenantId(f"tenant id must be a non-empty string, got {tenant_id!r}")
    if len(tenant_id) > TENANT_ID_MAX_LENGTH:
        raise InvalidTenantId(
            f"tenant id {tenant_id!r} is {len(tenant_id)} characters; at most {TENANT_ID_MAX_LENGTH} allowed"
        )
    if not _DNS_LABEL.match(tenant_id):
        raise InvalidTenantId(
            f"tenant id {tenant_id!r} is not a DNS-1123 label: use lower-case a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return tenant_id


class TenantQuota(BaseModel):
    """What a tenant's namespace may hold at once (becomes its ResourceQuota)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: str
    memory: str
    gpu: int = Field(0, ge=0)
    pods: int = Field(20, ge=1)
    jobs: int = Field(20, ge=1)


class BackupRetention(BaseModel):
    """How many daily, weekly and monthly backups of a tenant are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily: int = Field(7, ge=1)
    weekly: int = Field(4, ge=0)
    monthly: int = Field(12, ge=0)


class Tenant(BaseModel):
    """One business client of the platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    display_name: str
    tier: str
    priority: Priority = Priority.NORMAL
    max_concurrent_runs: int = Field(2, ge=1, le=100)
    quota: TenantQuota
    retention_days: int = Field(90, ge=1)
    backup_retention: BackupRetention = BackupRetention()

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return validate_tenant_id(value)

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in TIER_ORDER:
            raise ValueError(f"unknown tier {value!r}; allowed: {', '.join(TIER_ORDER)}")
        return value


class TenantRegistry(BaseModel):
    """All tenants, keyed by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: tuple[Tenant, ...]

    @field_validator("tenants")
    @classmethod
    def _unique_ids(cls, tenants: tuple[Tenant, ...]) -> tuple[Tenant, ...]:
        seen: set[str] = set()
        for tenant in tenants:
            if tenant.id in seen:
                raise ValueError(f"tenant id {tenant.id!r} appears twice")
            seen.add(tenant.id)
        return tenants

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tenants]

    def get(self, tenant_id: str) -> Tenant:
        """The tenant with this id; InvalidTenantId for a malformed id, UnknownTenant for an absent one."""
        validate_tenant_id(tenant_id)
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise UnknownTenant(f"unknown tenant {tenant_id!r}; registered: {', '.join(self.ids)}")


def load_registry(path: Path | str = DEFAULT_REGISTRY_PATH) -> TenantRegistry:
    """Read and validate the tenant registry YAML at `path`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TenantRegistryError(f"cannot read tenant registry {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TenantRegistryError(f"tenant registry {path} must be a mapping with a 'tenants' list")
    try:
        return TenantRegistry.model_validate(raw)
    except ValidationError as exc:
        raise TenantRegistryError(f"invalid tenant registry {path}: {exc}") from exc
