"""Protects backups against interruption: 5xx errors, connections dropped mid-multipart and a killed process
leave no manifest and no partial object counted as present; a re-run completes, uploading only what is
missing, and restores byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from spotify_jobs.backup.core import run_backup
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.restore import restore_backup, verify_backup
from spotify_jobs.backup.retention import collect_garbage
from spotify_jobs.backup.store import MIB, LocalFileStore
from spotify_jobs.storage.object_store import StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs_tests.backup.helpers import s3_store, seed_tenant, tenant_files
from spotify_jobs_tests.fixtures.faults import RequestFaults

TENANT = "premium-client-001"
BIG = 11 * MIB  # three 5 MiB parts


def _missing_bytes(repo: TenantBackupRepository, files: dict[str, bytes]) -> int:
    """Bytes of distinct file contents that the store does not hold as complete objects."""
    present = repo.present_content()
    distinct = {hashlib.sha256(b).hexdigest(): len(b) for b in files.values()}
    return sum(size for sha, size in distinct.items() if present.get(sha) != size)


def _complete_and_restore(data_store, store, files, tmp_path, *, rehash: bool = True) -> None:
    """Re-run the backup: it must upload exactly what is missing, verify, and restore byte-identical."""
    repo = TenantBackupRepository(store, TENANT)
    missing = _missing_bytes(repo, files)
    result = run_backup(data_store, store, TENANT)
    assert result.bytes_uploaded == missing
    if rehash:
        assert verify_backup(store, TENANT, result.backup_id, rehash=True).ok
    target = LocalFileStore(tmp_path / f"restored-{result.backup_id}")
    assert restore_backup(store, TENANT, target, backup=result.backup_id).ok  # hashes every file twice
    assert tenant_files(target, TENANT) == files


def _no_multipart_left(s3_client, bucket: str) -> bool:
    return not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def _count_requests(data_store, s3_endpoint, s3_bucket) -> int:
    store = s3_store(s3_endpoint, s3_bucket, prefix="probe")
    faults = RequestFaults(store.client)
    run_backup(data_store, store, TENANT)
    return faults.sent


@pytest.fixture
def big_tenant(data_store):
    return seed_tenant(data_store, TENANT, big_bytes=BIG)


def test_crash_at_every_request_then_rerun(data_store, s3_endpoint, s3_bucket, tmp_path):
    """Every request from the n-th on fails (as if the process died there), for every n of a backup."""
    storage = TenantStorage(data_store, TENANT)
    for path, data in [
        ("a.json", b"{}"),
        ("b/c.bin", os.urandom(3000)),
        ("model.pt", os.urandom(5 * MIB + 4096)),
    ]:
        storage.write_bytes(data, path)  # the model has two parts
    files = tenant_files(data_store, TENANT)
    total = _count_requests(data_store, s3_endpoint, s3_bucket)
    assert total >= 13  # lease, 4 reads, 2 puts, 4 multipart calls, manifest, lease release
    for n in range(1, total + 1):
        store = s3_store(s3_endpoint, s3_bucket, prefix=f"crash-{n}", max_attempts=1)
        faults = RequestFaults(store.client)
        faults.fail_when(lambda _request, number, n=n: number >= n)
        repo = TenantBackupRepository(store, TENANT)
        try:
            finished = run_backup(data_store, store, TENANT)
        except StorageError:
            finished = None
        faults.fail_when(None)
        if finished is None:
            assert repo.backup_ids() == [], f"a manifest exists after a failure at request {n}"
        else:  # only the lease release came after the manifest
            assert repo.backup_ids() == [finished.backup_id]
        _complete_and_restore(data_store, store, files, tmp_path, rehash=False)


def test_transient_5xx_is_retried_within_one_backup(data_store, big_tenant, s3_backups, tmp_path):
    faults = RequestFaults(s3_backups.client)
    faults.fail_when(lambda request, _n: "partNumber=2" in request.url and faults.failed < 2)
    result = run_backup(data_store, s3_backups, TENANT)
    assert faults.failed == 2
    assert verify_backup(s3_backups, TENANT, result.backup_id, rehash=True).ok
    target = LocalFileStore(tmp_path / "restored")
    assert restore_backup(s3_backups, TENANT, target).ok
    assert tenant_files(target, TENANT) == big_tenant


def test_persistent_5xx_on_a_part_fails_clearly(
    data_store, big_tenant, s3_endpoint, s3_bucket, s3_client, tmp_path
):
    store = s3_store(s3_endpoint, s3_bucket, max_attempts=2)
    faults = RequestFaults(store.client)
    faults.fail_when(lambda request, _n: "partNumber=2" in request.url)
    with pytest.raises(StorageError, match=r"cannot upload .*InternalError"):
        run_backup(data_store, store, TENANT)
    faults.fail_when(None)
    repo = TenantBackupRepository(store, TENANT)
    assert repo.backup_ids() == []
    assert all(size != BIG for size in repo.present_content().values())
    assert _no_multipart_left(s3_client, s3_bucket)
    _complete_and_restore(data_store, store, big_tenant, tmp_path)


def test_connection_dropped_mid_multipart(
    data_store, big_tenant, fault_proxy, s3_bucket, s3_client, tmp_path
):
    store = s3_store(fault_proxy.url, s3_bucket, max_attempts=2)
    fault_proxy.drop(r"^PUT .*partNumber=2", after_body_bytes=MIB, times=100)
    with pytest.raises(StorageError, match="cannot upload"):
        run_backup(data_store, store, TENANT)
    assert fault_proxy.dropped >= 2  # botocore retried the dropped part before giving up
    repo = TenantBackupRepository(store, TENANT)
    assert repo.backup_ids() == []
    assert all(size != BIG for size in repo.present_content().values())
    assert _no_multipart_left(s3_client, s3_bucket)
    fault_proxy.clear()
    _complete_and_restore(data_store, store, big_tenant, tmp_path)


def test_single_dropped_connection_is_retried(data_store, big_tenant, fault_proxy, s3_bucket, tmp_path):
    store = s3_store(fault_proxy.url, s3_bucket)
    fault_proxy.drop(r"^PUT .*partNumber=3", after_body_bytes=100_000, times=1)
    result = run_backup(data_store, store, TENANT)
    assert fault_proxy.dropped == 1
    assert verify_backup(store, TENANT, result.backup_id, rehash=True).ok
    target = LocalFileStore(tmp_path / "restored")
    assert restore_backup(store, TENANT, target).ok
    assert tenant_files(target, TENANT) == big_tenant


KILLED_BACKUP = textwrap.dedent(
    """
    import os, signal, sys
    from spotify_jobs.backup.core import run_backup
    from spotify_jobs.storage.object_store import LocalObjectStore
    from spotify_jobs_tests.backup.helpers import s3_store

    data_root, endpoint, bucket, tenant = sys.argv[1:]
    store = s3_store(endpoint, bucket)

    def die_on_second_part(request, **kwargs):
        if "partNumber=2" in request.url:
            os.kill(os.getpid(), signal.SIGKILL)

    store.client.meta.events.register("before-send.s3", die_on_second_part)
    run_backup(LocalObjectStore(data_root), store, tenant)
    """
)


def test_killed_process_leaves_no_backup(data_store, big_tenant, s3_endpoint, s3_backups, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BACKUP, data_store.root, s3_endpoint, s3_backups.bucket, TENANT],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    repo = TenantBackupRepository(s3_backups, TENANT)
    assert repo.backup_ids() == []
    assert all(size != BIG for size in repo.present_content().values())
    [lease] = repo.leases()  # the dead process's lease blocks collection until it expires
    assert lease.kind == "backup"
    assert collect_garbage(repo).status == "deferred"
    _complete_and_restore(data_store, s3_backups, big_tenant, tmp_path)


def test_partial_local_write_is_not_counted_as_present(data_store, local_backups, tmp_path):
    files = seed_tenant(data_store, TENANT)
    first = run_backup(data_store, local_backups, TENANT)
    repo = TenantBackupRepository(local_backups, TENANT)
    manifest = repo.load_manifest(first.backup_id)
    victim = max(manifest.entries, key=lambda e: e.size)
    path = tmp_path / "backups" / repo.content_key(victim.sha256)
    # A writer killed mid-copy leaves only its hidden temporary file; the object itself is absent.
    path.rename(path.with_name(f".{path.name}.partial"))
    path.with_name(f".{path.name}.partial").write_bytes(b"half")
    repo.delete_manifests([first.backup_id])
    assert victim.sha256 not in repo.present_content()
    result = run_backup(data_store, local_backups, TENANT)
    assert result.bytes_uploaded == victim.size
    target = LocalFileStore(tmp_path / "restored")
    assert restore_backup(local_backups, TENANT, target).ok
    assert tenant_files(target, TENANT) == files


def test_corrupt_content_fails_restore_verification(data_store, local_backups, tmp_path):
    seed_tenant(data_store, TENANT)
    result = run_backup(data_store, local_backups, TENANT)
    repo = TenantBackupRepository(local_backups, TENANT)
    victim = max(repo.load_manifest(result.backup_id).entries, key=lambda e: e.size)
    path = tmp_path / "backups" / repo.content_key(victim.sha256)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size: only a hash can tell
    path.write_bytes(bytes(data))
    assert verify_backup(local_backups, TENANT, result.backup_id).ok  # sizes alone look fine
    assert verify_backup(local_backups, TENANT, result.backup_id, rehash=True).corrupt == [victim.path]
    restored = restore_backup(local_backups, TENANT, LocalFileStore(tmp_path / "restored"))
    assert not restored.ok
    assert [f["path"] for f in restored.failed] == [victim.path]
    assert not (tmp_path / "restored" / "tenants" / TENANT / victim.path).exists()
    assert json.loads(json.dumps(restored.as_dict()))["ok"] is False
