"""The platform resource every asset uses: tenant storage, the tenant registry and platform secrets."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from spotify_jobs.settings import Settings
from spotify_jobs.storage.object_store import ObjectStore, open_store
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import Tenant, TenantRegistry, load_registry


class PlatformResource(dg.ConfigurableResource):
    """Where tenant data and backups live, who the tenants are, and the pseudonymisation secret.

    The local default needs no credentials; on S3, boto3 finds credentials the usual way (IRSA in the
    cluster, the environment elsewhere).
    """

    data_root: str
    backup_root: str
    s3_endpoint_url: str | None = None
    backup_kms_key_id: str | None = None
    tenant_registry: str
    pseudonym_secret: str
    environment: str = "development"
    pushgateway_url: str | None = None

    _stores: dict[str, ObjectStore] = PrivateAttr(default_factory=dict)
    _registry: TenantRegistry | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            data_root=settings.data_root,
            backup_root=settings.backup_root,
            s3_endpoint_url=settings.s3_endpoint_url,
            backup_kms_key_id=settings.backup_kms_key_id,
            tenant_registry=str(settings.tenant_registry),
            pseudonym_secret=(
                dg.EnvVar(settings.pseudonym_secret_env_var)
                if settings.pseudonym_secret_env_var
                else settings.pseudonym_secret.get_secret_value()
            ),
            environment=settings.environment,
            pushgateway_url=settings.pushgateway_url,
        )

    def _store(self, root: str) -> ObjectStore:
        if root not in self._stores:
            self._stores[root] = open_store(root, self.s3_endpoint_url)
        return self._stores[root]

    @property
    def data_store(self) -> ObjectStore:
        return self._store(self.data_root)

    @property
    def backup_store(self) -> ObjectStore:
        return self._store(self.backup_root)

    def tenant_storage(self, tenant_id: str) -> TenantStorage:
        """Storage that can only reach `tenant_id`'s prefix of the data root."""
        return TenantStorage(self.data_store, tenant_id)

    @property
    def registry(self) -> TenantRegistry:
        if self._registry is None:
            self._registry = load_registry(self.tenant_registry)
        return self._registry

    def tenant(self, tenant_id: str) -> Tenant:
        return self.registry.get(tenant_id)
