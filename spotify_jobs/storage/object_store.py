"""Object stores behind one interface: a local directory (embedded default) or an S3 bucket prefix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class StorageError(RuntimeError):
    """A storage operation failed; the message names the store, the key and the cause."""


class ObjectExists(StorageError):
    """`create` found the key already there."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float


class ObjectStore(Protocol):
    """Flat keys ('a/b/c.parquet') relative to the store's root."""

    root: str

    def uri(self, key: str) -> str: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def create(self, key: str, data: bytes) -> None:
        """Write `key` only if it does not exist yet (atomically); ObjectExists if it does."""

    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def download(self, key: str, dest: Path) -> None: ...


class LocalObjectStore:
    """Keys are files under a directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path):
        self._base = Path(root).resolve()
        self.root = str(self._base)

    def _path(self, key: str) -> Path:
        return self._base / key

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc.strerror or exc}") from exc

    def _publish(self, key: str, data: bytes, *, exclusive: bool) -> None:
        """Write to a temp file beside the target, then rename (replace) or hard-link (exclusive) it in:
        readers see the whole object or nothing."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            if exclusive:
                os.link(tmp, path)  # fails when the name exists
            else:
                os.replace(tmp, path)
        except FileExistsError as exc:
            raise ObjectExists(f"{self.uri(key)} already exists") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._publish(key, data, exclusive=False)

    def create(self, key: str, data: bytes) -> None:
        self._publish(key, data, exclusive=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                stat = path.stat()
                yield ObjectInfo(path.relative_to(self._base).as_posix(), stat.st_size, stat.st_mtime)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), dest)


class S3ObjectStore:
    """Keys are objects under `s3://bucket/prefix/`."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "adaptive", "max_attempts": 8}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"cannot {action} {self.uri(key)}: {exc}")

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("read", key, exc) from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from exc

    def create(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise ObjectExists(f"{self.uri(key)} already exists") from exc
            raise self._fail("write", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("write", key, exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail("stat", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("stat", key, exc) from exc
        return True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        full = self._key(prefix).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][strip:], obj["Size"], obj["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("delete", key, exc) from exc

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from exc


def open_store(root: str, s3_endpoint_url: str | None = None) -> ObjectStore:
    """The store for a root: `s3://bucket/prefix` or a local directory."""
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(f"storage root {root!r} names no bucket")
        return S3ObjectStore(bucket, prefix, endpoint_url=s3_endpoint_url)
    return LocalObjectStore(root)
