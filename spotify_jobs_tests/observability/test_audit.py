"""The per-tenant audit trail is append-only under concurrency and its chain check catches edits and removals."""

import json
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from spotify_jobs.observability.audit import (
    GENESIS_HASH,
    RECORDS_PREFIX,
    AuditError,
    AuditTrail,
    config_hash,
)
from spotify_jobs.observability.runs import ACTOR_TAG
from spotify_jobs.observability.step_audit import audit_step
from spotify_jobs.resources import PlatformResource
from spotify_jobs.storage.object_store import S3ObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.tenancy.partitions import tenant_partitions

TENANT = "enterprise-001"


@pytest.fixture(params=["local", "s3"])
def trail(request, platform):
    if request.param == "local":
        return AuditTrail(platform.tenant_storage(TENANT))
    s3_client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("s3_bucket")
    return AuditTrail(TenantStorage(S3ObjectStore(bucket, "data", client=s3_client), TENANT))


def _fill(trail: AuditTrail, count: int = 3) -> list:
    actions = ["started", "backed-up", "cancelled", "restored", "offboarded"]
    return [
        trail.append(
            actor=f"schedule:nightly-{i}",
            action=actions[i % len(actions)],
            subject="tenant_backup_manifest",
            run_id=f"run-{i}",
            config_hash=config_hash({"ops": {"i": i}}),
        )
        for i in range(count)
    ]


def _record_key(seq: int) -> str:
    return f"{RECORDS_PREFIX}/{seq:012d}.json"


def test_records_chain_and_verify(trail):
    written = _fill(trail)
    assert [r.seq for r in written] == [0, 1, 2]
    assert written[0].prev_hash == GENESIS_HASH
    assert written[1].prev_hash == written[0].hash and written[2].prev_hash == written[1].hash
    assert list(trail.records()) == written
    report = trail.verify_chain(expected_head=written[-1].hash)
    assert report.ok, report.problems
    assert (report.records, report.head_seq, report.head_hash) == (3, 2, written[-1].hash)
    assert trail.storage.key(_record_key(0)).startswith(f"tenants/{TENANT}/audit/")


def test_an_edited_record_is_detected(trail):
    _fill(trail)
    raw = json.loads(trail.storage.read_bytes(_record_key(1)))
    raw["actor"] = "someone-else"  # the hash field is left as it was
    trail.storage.write_bytes(json.dumps(raw).encode(), _record_key(1))
    report = trail.verify_chain()
    assert not report.ok
    assert report.problems == ["record 1 was modified: its content does not match its hash"]


def test_an_edited_record_with_a_recomputed_hash_breaks_the_link(trail):
    records = _fill(trail)
    forged = type(records[1])(**{**records[1].body(), "action": "restored"})
    forged = type(forged)(**{**forged.body(), "hash": forged.computed_hash()})
    trail.storage.write_bytes(json.dumps(forged.__dict__).encode(), _record_key(1))
    report = trail.verify_chain()
    assert report.problems == ["record 2 does not follow record 1: chain broken"]


def test_a_removed_record_is_detected(trail):
    _fill(trail, 4)
    trail.storage.delete(_record_key(1))
    problems = trail.verify_chain().problems
    assert "records 1..1 are missing" in problems
    assert "record 2 does not follow record 0: chain broken" in problems


def test_truncation_is_caught_by_the_head_hint_and_the_expected_head(trail):
    records = _fill(trail)
    trail.storage.delete(_record_key(2))
    assert trail.verify_chain().problems == ["trail ends at record 1 but the head says 2: truncated"]
    trail.storage.delete("audit/head.json")  # a careful attacker removes the hint as well
    assert trail.verify_chain().ok
    report = trail.verify_chain(expected_head=records[2].hash)
    assert report.problems == [f"head is {records[1].hash}, expected {records[2].hash}"]


def test_concurrent_appends_never_fork_or_lose_a_record(trail):
    def append(i: int):
        return trail.append(
            actor=f"worker-{i}", action="started", subject="security_scan_report", run_id=f"r{i}"
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(append, range(12)))
    assert sorted(r.seq for r in written) == list(range(12))
    assert {r.run_id for r in trail.records()} == {f"r{i}" for i in range(12)}
    assert trail.verify_chain().ok


def test_a_stale_head_hint_is_walked_forward(platform):
    trail = AuditTrail(platform.tenant_storage(TENANT))
    _fill(trail, 3)
    trail.storage.write_json({"seq": 0, "hash": "stale"}, "audit/head.json")
    record = trail.append(actor="cli:ops", action="retried", subject="daily_track_stats")
    assert record.seq == 3 and trail.verify_chain().ok


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": "a", "action": "deleted-everything", "subject": "s"}, "unknown audit action"),
        ({"actor": "", "action": "started", "subject": "s"}, "needs an actor and a subject"),
    ],
)
def test_bad_records_are_refused(platform, kwargs, message):
    with pytest.raises(AuditError, match=message):
        AuditTrail(platform.tenant_storage(TENANT)).append(**kwargs)


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert config_hash(None) == config_hash({})


def test_a_step_audits_its_own_action(platform):
    @dg.asset(partitions_def=tenant_partitions)
    def offboarded_tenant(context: dg.AssetExecutionContext, platform: PlatformResource) -> None:
        """Audits an offboarding."""
        audit_step(context, platform, "offboarded", "tenant_data", details={"objects_deleted": 12})

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    result = dg.materialize(
        [offboarded_tenant],
        partition_key=TENANT,
        resources={"platform": platform},
        instance=instance,
        tags={ACTOR_TAG: "cli:ops"},
    )
    [record] = AuditTrail(platform.tenant_storage(TENANT)).records()
    assert (record.action, record.subject, record.actor, record.run_id) == (
        "offboarded",
        "tenant_data",
        "cli:ops",
        result.run_id,
    )
    assert record.details == {"objects_deleted": 12}
    assert record.config_hash == config_hash(instance.get_run_by_id(result.run_id).run_config)
