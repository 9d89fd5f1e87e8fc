"""Tenant-scoped storage: every key a tenant reads or writes lies under `tenants/<tenant>/`."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from spotify_jobs.storage.object_store import ObjectInfo, ObjectStore, StorageError
from spotify_jobs.tenancy.registry import validate_tenant_id

TENANTS_PREFIX = "tenants"
_SAFE_PART = re.compile(r"^[A-Za-z0-9_=@+.-]+$")


class UnsafeKeyError(ValueError):
    """A key part that could escape the tenant's prefix or is not a plain name."""


def safe_part(part: str) -> str:
    """Return `part` if it is one plain path segment (no '/', no '..', no control or odd characters)."""
    if not isinstance(part, str) or not _SAFE_PART.match(part) or part in (".", ".."):
        raise UnsafeKeyError(f"unsafe storage key part {part!r}: use letters, digits and _=@+.- only")
    return part


def json_bytes(payload: object) -> bytes:
    """The platform's JSON encoding of stored documents: indented, keys sorted, so equal data is equal bytes."""
    return json.dumps(payload, indent=2, sort_keys=True, default=str).encode()


class TenantStorage:
    """One tenant's view of an object store; keys are built from validated parts only."""

    def __init__(self, store: ObjectStore, tenant_id: str):
        self.store = store
        self.tenant_id = validate_tenant_id(tenant_id)
        self.prefix = f"{TENANTS_PREFIX}/{self.tenant_id}"

    def key(self, *parts: str) -> str:
        """The store key of `parts` under this tenant's prefix; each part may itself hold '/'-joined parts."""
        segments = [seg for part in parts for seg in str(part).split("/")]
        return "/".join([self.prefix, *(safe_part(s) for s in segments)])

    def relative(self, key: str) -> str:
        """A store key of this tenant made relative to its prefix; StorageError for another tenant's key."""
        if not key.startswith(self.prefix + "/"):
            raise StorageError(f"key {key!r} is outside tenant {self.tenant_id!r}'s prefix")
        return key[len(self.prefix) + 1 :]

    def uri(self, *parts: str) -> str:
        return self.store.uri(self.key(*parts))

    def read_bytes(self, *parts: str) -> bytes:
        return self.store.read_bytes(self.key(*parts))

    def write_bytes(self, data: bytes, *parts: str) -> str:
        key = self.key(*parts)
        self.store.write_bytes(key, data)
        return self.store.uri(key)

    def create(self, data: bytes, *parts: str) -> str:
        """Write only if absent (ObjectExists otherwise): how concurrent writers claim a key."""
        key = self.key(*parts)
        self.store.create(key, data)
        return self.store.uri(key)

    def exists(self, *parts: str) -> bool:
        return self.store.exists(self.key(*parts))

    def list(self, *parts: str) -> Iterator[ObjectInfo]:
        """Objects under `parts` (all of the tenant's with no parts); keys come back relative to the tenant."""
        prefix = self.key(*parts) if parts else self.prefix
        for info in self.store.list(prefix):
            yield ObjectInfo(self.relative(info.key), info.size, info.modified)

    def delete(self, *parts: str) -> None:
        self.store.delete(self.key(*parts))

    def delete_prefix(self, *parts: str) -> int:
        """Delete every object under `parts`; returns how many."""
        infos = list(self.list(*parts))
        for info in infos:
            self.store.delete(f"{self.prefix}/{info.key}")
        return len(infos)

    def download(self, dest: Path, *parts: str) -> None:
        self.store.download(self.key(*parts), dest)

    def write_parquet(self, frame: pd.DataFrame, *parts: str) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, engine="pyarrow", compression="zstd")
        return self.write_bytes(buffer.getvalue(), *parts)

    def read_parquet(self, *parts: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(*parts)), engine="pyarrow")

    def write_json(self, payload: object, *parts: str) -> str:
        return self.write_bytes(json_bytes(payload), *parts)

    def read_json(self, *parts: str) -> object:
        return json.loads(self.read_bytes(*parts))
