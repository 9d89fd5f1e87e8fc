"""Protects retention (exactly the right backups kept) and garbage collection that never races a backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spotify_jobs.backup.core import BackupConflict, back_up_and_prune, run_backup
from spotify_jobs.backup.manifest import backup_time, new_run_id
from spotify_jobs.backup.repository import TenantBackupRepository
from spotify_jobs.backup.restore import verify_backup
from spotify_jobs.backup.retention import collect_garbage, select_retained
from spotify_jobs.backup.store import LocalFileStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.registry import BackupRetention, Tenant, TenantQuota

TENANT = "startup-042"


def at(day: str, hour: int = 3) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def ids_on(days: list[str], hour: int = 3) -> dict[str, str]:
    return {day: new_run_id(at(day, hour)) for day in days}


def test_keeps_newest_per_day_week_and_month():
    # 2026-01-01 .. 2026-02-20, one backup a day; 2026-02-20 is a Friday (ISO week 8).
    days = [(datetime(2026, 1, 1) + timedelta(days=n)).date().isoformat() for n in range(51)]
    ids = ids_on(days)
    earlier_same_day = new_run_id(at("2026-02-20", 1))
    kept = select_retained([*ids.values(), earlier_same_day], BackupRetention(daily=3, weekly=2, monthly=2))
    expected_days = ["2026-02-20", "2026-02-19", "2026-02-18", "2026-02-15", "2026-01-31"]
    assert kept == {ids[d] for d in expected_days}


def test_ids_sort_by_start_time_even_within_one_second():
    start = at("2026-11-01")
    ids = [new_run_id(start + timedelta(microseconds=n)) for n in (0, 1, 999, 1000, 999_999, 1_000_000)]
    assert sorted(ids) == ids
    assert [backup_time(i) for i in ids] == [
        start + timedelta(microseconds=n) for n in (0, 1, 999, 1000, 999_999, 1_000_000)
    ]


def test_counts_days_that_have_backups_not_calendar_days():
    ids = ids_on(["2025-06-30", "2025-12-31", "2026-01-05", "2026-03-01"])
    kept = select_retained(ids.values(), BackupRetention(daily=2, weekly=0, monthly=0))
    assert kept == {ids["2026-03-01"], ids["2026-01-05"]}
    kept = select_retained(ids.values(), BackupRetention(daily=1, weekly=0, monthly=3))
    assert kept == {ids["2026-03-01"], ids["2026-01-05"], ids["2025-12-31"]}


@pytest.mark.parametrize(
    ("daily", "weekly", "monthly", "kept_days"),
    [
        (1, 0, 0, ["2026-03-02"]),
        (
            7,
            0,
            0,
            [
                "2026-03-02",
                "2026-03-01",
                "2026-02-28",
                "2026-02-27",
                "2026-02-26",
                "2026-02-25",
                "2026-02-24",
            ],
        ),
        (1, 3, 0, ["2026-03-02", "2026-03-01", "2026-02-22"]),
        (1, 0, 3, ["2026-03-02", "2026-02-28", "2026-01-31"]),
    ],
)
def test_policy_table(daily, weekly, monthly, kept_days):
    days = [(datetime(2026, 1, 20) + timedelta(days=n)).date().isoformat() for n in range(42)]  # to 03-02
    ids = ids_on(days)
    kept = select_retained(ids.values(), BackupRetention(daily=daily, weekly=weekly, monthly=monthly))
    assert kept == {ids[d] for d in kept_days}


def _tenant(retention: BackupRetention) -> Tenant:
    return Tenant(
        id=TENANT,
        display_name="t",
        tier="small",
        quota=TenantQuota(cpu="1", memory="1Gi"),
        backup_retention=retention,
    )


def test_retention_deletes_manifests_and_collection_only_unreferenced_content(data_store, local_backups):
    storage = TenantStorage(data_store, TENANT)
    storage.write_bytes(b"kept by every backup", "stable.bin")
    made = {}
    for day in ["2026-01-10", "2026-02-10", "2026-03-08", "2026-03-09", "2026-03-10"]:
        storage.write_bytes(f"only in {day}".encode(), "daily.bin")
        made[day] = back_up_and_prune(
            data_store, local_backups, _tenant(BackupRetention(daily=2, weekly=0, monthly=2)), now=at(day)
        )
    last = made["2026-03-10"]
    assert last.retention.kept == sorted(
        [made[d].backup.backup_id for d in ["2026-02-10", "2026-03-09", "2026-03-10"]]
    )
    repo = TenantBackupRepository(local_backups, TENANT)
    assert repo.backup_ids() == last.retention.kept
    # 2026-01-10 went when 2026-03-08 was made (monthly 2 = March and February); 03-08 went on 03-10.
    assert made["2026-03-08"].retention.deleted == [made["2026-01-10"].backup.backup_id]
    assert made["2026-03-08"].collection.deleted_objects == 1
    assert last.retention.deleted == [made["2026-03-08"].backup.backup_id]
    assert (last.collection.status, last.collection.deleted_objects) == ("done", 1)
    assert last.collection.deleted_bytes == len(b"only in 2026-03-08")
    assert len(repo.present_content()) == 4  # stable + the three kept days' daily.bin
    for backup_id in repo.backup_ids():
        assert verify_backup(local_backups, TENANT, backup_id, rehash=True).ok


class HookedStore(LocalFileStore):
    """A local store that runs `on_put` / `on_delete` once, in the middle of a backup or a collection."""

    on_put = None
    on_delete = None

    def put_file(self, key, path, sha256=None):
        if self.on_put is not None:
            hook, self.on_put = self.on_put, None
            hook()
        super().put_file(key, path, sha256)

    def delete_many(self, keys):
        keys = list(keys)
        if self.on_delete is not None and any("/content/" in k for k in keys):
            hook, self.on_delete = self.on_delete, None
            hook()
        return super().delete_many(keys)


def test_collection_during_a_backup_defers_and_keeps_reused_content(data_store, tmp_path):
    store = HookedStore(tmp_path / "hooked")
    storage = TenantStorage(data_store, TENANT)
    storage.write_bytes(b"old content the next backup reuses", "old.bin")
    first = run_backup(data_store, store, TENANT)
    repo = TenantBackupRepository(store, TENANT)
    repo.delete_manifests([first.backup_id])  # retention dropped it: old.bin's content is now unreferenced
    storage.write_bytes(b"new", "new.bin")
    outcome = {}
    store.on_put = lambda: outcome.setdefault("gc", collect_garbage(repo))
    second = run_backup(data_store, store, TENANT)
    assert outcome["gc"].status == "deferred"
    assert outcome["gc"].blocked_by == [f"backup {second.backup_id}"]
    assert verify_backup(store, TENANT, second.backup_id, rehash=True).ok
    assert collect_garbage(repo).status == "done"  # nothing unreferenced now
    assert verify_backup(store, TENANT, second.backup_id, rehash=True).ok


def test_backup_started_during_a_collection_is_refused(data_store, tmp_path):
    store = HookedStore(tmp_path / "hooked")
    storage = TenantStorage(data_store, TENANT)
    storage.write_bytes(b"garbage soon", "a.bin")
    first = run_backup(data_store, store, TENANT)
    repo = TenantBackupRepository(store, TENANT)
    repo.delete_manifests([first.backup_id])
    outcome = {}

    def start_backup():
        with pytest.raises(BackupConflict, match="garbage collection") as refused:
            run_backup(data_store, store, TENANT)
        outcome["refused"] = refused.value

    store.on_delete = start_backup
    assert collect_garbage(repo).deleted_objects == 1
    assert "refused" in outcome and repo.backup_ids() == []
    again = run_backup(data_store, store, TENANT)
    assert again.bytes_uploaded == len(b"garbage soon")
    assert verify_backup(store, TENANT, again.backup_id, rehash=True).ok


def test_expired_lease_of_a_killed_run_stops_blocking(data_store, local_backups):
    TenantStorage(data_store, TENANT).write_bytes(b"x", "x.bin")
    repo = TenantBackupRepository(local_backups, TENANT)
    now = datetime.now(UTC)
    repo.acquire("backup", new_run_id(now - timedelta(hours=13)), now - timedelta(hours=13))
    repo.acquire("gc", new_run_id(now - timedelta(hours=1)), now - timedelta(hours=1))
    assert run_backup(data_store, local_backups, TENANT).files == 1  # the expired gc lease does not block
    live = repo.acquire("backup", new_run_id(now), now)
    assert collect_garbage(repo, now=now).status == "deferred"
    repo.release(live)
    result = collect_garbage(repo, now=now)
    assert (result.status, result.expired_leases_dropped) == ("done", 2)
    assert repo.leases() == []
