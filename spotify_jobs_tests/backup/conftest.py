"""Stores for the backup tests: a local data root, and a local or S3 backup store."""

from __future__ import annotations

import pytest

from spotify_jobs.backup.store import LocalFileStore
from spotify_jobs.storage.object_store import LocalObjectStore
from spotify_jobs_tests.backup.helpers import s3_store


@pytest.fixture
def data_store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "data")


@pytest.fixture
def local_backups(tmp_path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "backups")


@pytest.fixture
def s3_backups(s3_endpoint, s3_bucket, s3_client):
    """A backup store on a fresh moto bucket, emptied afterwards (moto keeps objects in memory)."""
    yield s3_store(s3_endpoint, s3_bucket)
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3_client.delete_objects(Bucket=s3_bucket, Delete={"Objects": keys})


@pytest.fixture(params=["local", "s3"])
def backups(request):
    """The backup store of either kind."""
    return request.getfixturevalue(f"{request.param}_backups")
