"""File stores for backups: the object stores of `spotify_jobs.storage` plus whole-file uploads that
verify the bytes they store, batch deletes, and (on S3) encryption, SHA-256 checksums and multipart.

An object appears in a store only once it is complete (rename on a local disk, PutObject or
CompleteMultipartUpload on S3), so an interrupted upload never leaves a partial object that a listing
would count as present.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import S3Transfer, TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spotify_jobs.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore, StorageError

MIB = 1024 * 1024
HASH_BLOCK = 4 * MIB
DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=8, use_threads=True
)


class ChecksumMismatch(StorageError):
    """Bytes read or written do not have the SHA-256 they were supposed to have."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class FileStore(ObjectStore, Protocol):
    """An object store that also uploads whole files and deletes in batches."""

    def put_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        """Store the file at `path` under `key`; with `sha256`, fail (storing nothing) unless the bytes
        stored have that hash."""
        ...

    def delete_many(self, keys: Iterable[str]) -> int: ...

    def size_of(self, key: str) -> int | None:
        """The size of the complete object at `key`, or None if there is none."""
        ...


class LocalFileStore(LocalObjectStore):
    """A directory; files are copied to a hidden temporary file, hashed on the way, then renamed."""

    def put_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            digest = hashlib.sha256()
            with open(path, "rb") as src, os.fdopen(fd, "wb") as out:
                while block := src.read(HASH_BLOCK):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if sha256 is not None and digest.hexdigest() != sha256:
                raise ChecksumMismatch(
                    f"cannot store {self.uri(key)}: {path} has sha256 {digest.hexdigest()}, expected {sha256}"
                )
            os.replace(tmp, dest)
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri(key)}: {exc.strerror or exc}") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)

    def size_of(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def delete_many(self, keys: Iterable[str]) -> int:
        count = 0
        for key in keys:
            self.delete(key)
            count += 1
        return count


class S3FileStore(S3ObjectStore):
    """An S3 bucket prefix with server-side encryption, SHA-256 checksums the server verifies (per part
    for multipart uploads, whole object otherwise), concurrent multipart uploads and adaptive retries."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        *,
        kms_key_id: str | None = None,
        transfer_config: TransferConfig = DEFAULT_TRANSFER,
        max_attempts: int = 8,
        client=None,
    ):
        client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                retries={"mode": "adaptive", "max_attempts": max_attempts},
                # Several files upload at once, each with up to max_concurrency parts in flight.
                max_pool_connections=max(10, 4 * transfer_config.max_concurrency),
            ),
        )
        super().__init__(bucket, prefix, endpoint_url=endpoint_url, client=client)
        self.transfer_config = transfer_config
        self.encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )
        self._transfer: S3Transfer | None = None
        self._transfer_lock = threading.Lock()

    @property
    def transfer(self) -> S3Transfer:
        # One transfer manager (one thread pool) for every upload of this store.
        with self._transfer_lock:
            if self._transfer is None:
                self._transfer = S3Transfer(client=self.client, config=self.transfer_config)
            return self._transfer

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ChecksumSHA256=_b64_sha256(hashlib.sha256(data).hexdigest()),
                **self.encryption,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from exc

    def put_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        extra = dict(self.encryption)
        if sha256 is not None and path.stat().st_size < self.transfer_config.multipart_threshold:
            # A single PutObject: S3 rejects the upload unless the whole object has exactly this hash.
            extra["ChecksumSHA256"] = _b64_sha256(sha256)
        else:
            # Multipart: botocore sends a SHA-256 for every part and S3 verifies each one.
            extra["ChecksumAlgorithm"] = "SHA256"
        try:
            self.transfer.upload_file(str(path), self.bucket, self._key(key), extra_args=extra)
        except (ClientError, BotoCoreError, S3UploadFailedError, OSError) as exc:
            raise self._fail("upload", key, exc) from exc

    def size_of(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("stat", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("stat", key, exc) from exc

    def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("delete", batch[0], exc) from exc
            if errors := response.get("Errors"):
                first = errors[0]
                raise StorageError(
                    f"cannot delete {len(errors)} objects under {self.root}, e.g. {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
        return len(keys)


def _b64_sha256(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def open_file_store(
    root: str,
    s3_endpoint_url: str | None = None,
    *,
    kms_key_id: str | None = None,
    transfer_config: TransferConfig = DEFAULT_TRANSFER,
    max_attempts: int = 8,
) -> FileStore:
    """The file store for a root: `s3://bucket/prefix` or a local directory."""
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(f"storage root {root!r} names no bucket")
        return S3FileStore(
            bucket,
            prefix,
            endpoint_url=s3_endpoint_url,
            kms_key_id=kms_key_id,
            transfer_config=transfer_config,
            max_attempts=max_attempts,
        )
    if "://" in root:
        raise StorageError(f"storage root {root!r}: use a local directory or s3://bucket/prefix")
    return LocalFileStore(root)


def join_root(root: str, *parts: str) -> str:
    """A root below `root` (local directory or s3:// URI); parts must already be validated names."""
    if root.startswith("s3://"):
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root).joinpath(*parts))
