"""Where the ETL's input files come from, and reading plus parsing one of them.

Input files are `Streaming_History_Audio_*.json` anywhere under a landing date folder, in path order; other
files (video history, the PDF Spotify ships) are ignored and listed.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from spotify_jobs.etl.schema import landing_prefix

if TYPE_CHECKING:
    from spotify_jobs.storage.tenant_storage import TenantStorage

INPUT_FILE = re.compile(r"Streaming_History_Audio_[^/]*\.json")


class NoLandingData(ValueError):
    """The landing date folder holds no export files."""


class Readable(Protocol):
    def read(self) -> bytes: ...


@dataclass(frozen=True)
class StoredFile:
    """A landing file in tenant storage (local or S3)."""

    storage: TenantStorage
    key: str  # relative to the tenant prefix

    def read(self) -> bytes:
        return self.storage.read_bytes(self.key)


@dataclass(frozen=True)
class LocalFile:
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class InputFile:
    source_file: str  # path under the landing date folder: <export-id>/<name> or <name>
    reader: Readable
    size: int = 0  # bytes, as listed

    @property
    def export_id(self) -> str | None:
        """The export folder: the first path segment, when the file lies in a folder."""
        head, sep, _ = self.source_file.partition("/")
        return head if sep else None


def _select(paths: Iterable[tuple[str, Readable, int]]) -> tuple[list[InputFile], list[str]]:
    inputs, ignored = [], []
    for source_file, reader, size in sorted(paths, key=lambda item: item[0]):
        if INPUT_FILE.fullmatch(source_file.rsplit("/", 1)[-1]):
            inputs.append(InputFile(source_file, reader, size))
        else:
            ignored.append(source_file)
    return inputs, ignored


def landing_files(storage: TenantStorage, date: str) -> tuple[list[InputFile], list[str]]:
    """(input files, ignored paths) of a tenant's landing date folder."""
    prefix = landing_prefix(date)
    return _select(
        (info.key[len(prefix) + 1 :], StoredFile(storage, info.key), info.size)
        for info in storage.list(prefix)
    )


def directory_files(root: Path) -> tuple[list[InputFile], list[str]]:
    """(input files, ignored paths) of a local folder laid out like a landing date folder."""
    if not root.is_dir():
        raise NoLandingData(f"{root} is not a directory")
    return _select(
        (path.relative_to(root).as_posix(), LocalFile(path), path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
