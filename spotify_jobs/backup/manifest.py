"""Backup ids and manifests: what one backup holds (path, size, sha256, mtime per file)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

MANIFEST_FORMAT = 1
LATEST = "latest"
_RUN_ID = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{8})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


class ManifestError(ValueError):
    """A manifest that cannot be trusted: unreadable, for another tenant or backup, or tampered with."""


def new_run_id(now: datetime) -> str:
    """A backup (or lease) id: the UTC start time to the microsecond, so ids sort by time, plus 8 random
    hex digits."""
    return f"{now.astimezone(UTC).strftime(_ID_TIME_FORMAT)}-{secrets.token_hex(4)}"


def validate_backup_id(backup_id: object) -> str:
    """Return `backup_id` if it has the form `20261127T031500.000000Z-1a2b3c4d`; ValueError otherwise."""
    if not isinstance(backup_id, str) or not _RUN_ID.match(backup_id):
        raise ValueError(
            f"invalid backup id {backup_id!r}: expected {LATEST!r} or the form 20261127T031500.000000Z-1a2b3c4d"
        )
    return backup_id


def backup_time(backup_id: str) -> datetime:
    """When the backup with this id started (UTC)."""
    stamp = _RUN_ID.match(validate_backup_id(backup_id)).group(1)
    return datetime.strptime(stamp, _ID_TIME_FORMAT).replace(tzinfo=UTC)


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(_SHA256.match(value))


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a backup; `path` is relative to the tenant's data prefix."""

    path: str
    size: int
    sha256: str
    mtime: float


@dataclass(frozen=True)
class BackupManifest:
    tenant: str
    backup_id: str
    created_at: str
    source: str
    entries: tuple[ManifestEntry, ...]
    bytes_uploaded: int = 0
    bytes_deduplicated: int = 0
    seconds: float = 0.0
    format: int = field(default=MANIFEST_FORMAT)

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def summary(self) -> dict[str, object]:
        """The figures a person wants about one backup (no file list)."""
        return {
            "tenant": self.tenant,
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "files": self.files,
            "bytes": self.total_bytes,
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_deduplicated": self.bytes_deduplicated,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> bytes:
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "entries"}
        body["entries"] = [
            {"path": e.path, "size": e.size, "sha256": e.sha256, "mtime": e.mtime} for e in self.entries
        ]
        body["entries_sha256"] = _entries_digest(body["entries"])
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, tenant: str, backup_id: str) -> BackupManifest:
        """Parse and check a stored manifest: format, tenant, id, entry digest and every entry."""
        where = f"manifest of backup {backup_id} of tenant {tenant}"
        try:
            body = json.loads(data)
            entries = body.pop("entries")
            digest = body.pop("entries_sha256")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{where} is unreadable: {exc}") from exc
        if body.get("format") != MANIFEST_FORMAT:
            raise ManifestError(
                f"{where} has format {body.get('format')!r}; this version reads {MANIFEST_FORMAT}"
            )
        if body.get("tenant") != tenant or body.get("backup_id") != backup_id:
            raise ManifestError(
                f"{where} claims tenant {body.get('tenant')!r}, backup {body.get('backup_id')!r}"
            )
        if not isinstance(entries, list) or _entries_digest(entries) != digest:
            raise ManifestError(f"{where} does not match its entries_sha256: it was altered or truncated")
        try:
            parsed = tuple(ManifestEntry(**e) for e in entries)
            manifest = cls(**body, entries=parsed)
        except TypeError as exc:
            raise ManifestError(f"{where} has unexpected fields: {exc}") from exc
        for entry in parsed:
            if not is_sha256(entry.sha256) or not isinstance(entry.size, int) or entry.size < 0:
                raise ManifestError(f"{where} has an invalid entry for {entry.path!r}")
        return manifest


def _entries_digest(entries: list[dict]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
