"""Which landing files are new since the last look (no Dagster): the landing sensor's bookkeeping.

Exports land at `tenants/<tenant>/landing/<YYYY-MM-DD>/<export-id>/<file>`. Per tenant the cursor keeps a
watermark (the newest modification time seen) and a digest of every file seen whose modification time is
within `lookback` seconds of it. A file is new when it is newer than `watermark - lookback` and its digest
(key and modification time) has not been seen. The look-back catches files that become visible after newer
ones (an upload that started earlier and finished later); a re-uploaded file (new modification time) is
new data and counts again. The cursor stays small: digests older than the look-back are dropped.

New files are grouped into one batch per (tenant, date): each batch is one ETL run of that partition,
whether the date is today's or a late file for a day already processed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from spotify_jobs.storage.object_store import ObjectInfo, StorageError

LANDING_DIR = "landing"
DEFAULT_LOOKBACK_SECONDS = 900.0
DEFAULT_LIST_WORKERS = 16
CURSOR_VERSION = 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def landing_date(key: str) -> str | None:
    """The date folder of a tenant-relative landing key `landing/<date>/<...>/<file>`, or None."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != LANDING_DIR or not _DATE.match(parts[1]):
        return None
    try:
        date.fromisoformat(parts[1])
    except ValueError:
        return None
    return parts[1]


def _digest(info: ObjectInfo) -> str:
    return hashlib.blake2b(f"{info.key}@{info.modified!r}".encode(), digest_size=8).hexdigest()


@dataclass
class TenantMark:
    """What the sensor has seen of one tenant's landing zone."""

    watermark: float = -math.inf
    recent: dict[str, float] = field(default_factory=dict)  # digest -> modification time


@dataclass(frozen=True)
class LandingBatch:
    """New files of one tenant for one landing date: one ETL run of that partition."""

    tenant: str
    date: str
    files: tuple[ObjectInfo, ...]  # sorted by key; keys relative to the tenant's prefix

    @property
    def keys(self) -> list[str]:
        return [info.key for info in self.files]

    @property
    def fingerprint(self) -> str:
        """Identifies these files and versions: part of the run key, so new data always means a new run."""
        versions = "\n".join(f"{info.key}@{info.modified!r}" for info in self.files)
        return hashlib.sha256(versions.encode()).hexdigest()[:16]


@dataclass
class LandingScan:
    """The outcome of one look at every tenant's landing zone."""

    batches: list[LandingBatch]
    misplaced: list[str]  # `<tenant>/<key>` of new files that are not under landing/<YYYY-MM-DD>/
    errors: dict[str, str]  # tenant -> why its landing zone could not be listed (retried next time)
    cursor: LandingCursor

    @property
    def new_files(self) -> int:
        return sum(len(batch.keys) for batch in self.batches) + len(self.misplaced)


class LandingCursor:
    """Per-tenant marks, serialised as the sensor's cursor."""

    def __init__(self, marks: dict[str, TenantMark] | None = None):
        self.marks = marks or {}

    @classmethod
    def from_json(cls, raw: str | None) -> LandingCursor:
        if not raw:
            return cls()
        payload = json.loads(raw)
        if payload.get("v") != CURSOR_VERSION:
            raise ValueError(f"landing cursor version {payload.get('v')!r}; expected {CURSOR_VERSION}")
        return cls(
            {tenant: TenantMark(mark["w"], dict(mark["r"])) for tenant, mark in payload["tenants"].items()}
        )

    def to_json(self) -> str:
        tenants = {
            tenant: {"w": mark.watermark, "r": mark.recent}
            for tenant, mark in sorted(self.marks.items())
            if math.isfinite(mark.watermark)
        }
        return json.dumps({"v": CURSOR_VERSION, "tenants": tenants}, separators=(",", ":"))


def new_files(
    mark: TenantMark, listing: Iterable[ObjectInfo], lookback: float = DEFAULT_LOOKBACK_SECONDS
) -> tuple[list[ObjectInfo], TenantMark]:
    """The files of `listing` not seen before, and the tenant's mark after seeing all of `listing`."""
    infos = list(listing)
    floor = mark.watermark - lookback
    fresh = [info for info in infos if info.modified > floor and _digest(info) not in mark.recent]
    watermark = max([mark.watermark, *(info.modified for info in infos)])
    keep_after = watermark - lookback
    recent = {digest: modified for digest, modified in mark.recent.items() if modified > keep_after}
    recent.update({_digest(info): info.modified for info in fresh if info.modified > keep_after})
    return fresh, TenantMark(watermark, recent)


def scan_landing(
    list_landing: Callable[[str], Iterable[ObjectInfo]],
    tenants: Iterable[str],
    cursor: LandingCursor,
    *,
    lookback: float = DEFAULT_LOOKBACK_SECONDS,
    workers: int = DEFAULT_LIST_WORKERS,
) -> LandingScan:
    """Look at every tenant's landing zone once; `list_landing(tenant)` yields tenant-relative keys.

    Listings run on a thread pool (on S3 each is a round trip). A tenant whose listing fails keeps its old
    mark, so its files are found on a later look.
    """
    tenants = list(tenants)

    def listing(tenant: str) -> list[ObjectInfo] | StorageError:
        try:
            return list(list_landing(tenant))
        except StorageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tenants)))) as pool:
        listings = list(pool.map(listing, tenants))

    marks = dict(cursor.marks)
    batches: list[LandingBatch] = []
    misplaced: list[str] = []
    errors: dict[str, str] = {}
    for tenant, result in zip(tenants, listings, strict=True):
        if isinstance(result, StorageError):
            errors[tenant] = str(result)
            continue
        fresh, marks[tenant] = new_files(marks.get(tenant, TenantMark()), result, lookback)
        by_date: dict[str, list[ObjectInfo]] = {}
        for info in fresh:
            day = landing_date(info.key)
            if day is None:
                misplaced.append(f"{tenant}/{info.key}")
            else:
                by_date.setdefault(day, []).append(info)
        batches.extend(
            LandingBatch(tenant, day, tuple(sorted(infos, key=lambda info: info.key)))
            for day, infos in sorted(by_date.items())
        )
    return LandingScan(batches, misplaced, errors, LandingCursor(marks))
