"""Per-tenant audit trail: append-only, hash-chained records under `tenants/<tenant>/audit/` (no Dagster).

Each record says who or what (`actor`) did what (`action`: started, retried, cancelled, restored, ...) to
what (`subject`), when, in which run, with which configuration (`config_hash`, the SHA-256 of the run
config). Each record also holds the hash of the record before it and its own hash over all of its fields,
so editing a record breaks its own hash, and removing or re-ordering records breaks the chain:
`verify_chain()` reports either.

Storage and concurrency. Object stores cannot append, so every record is its own object,
`audit/records/<seq>.json` (seq zero-padded to 12 digits), created with an exclusive write: `If-None-Match: *`
on S3 (conditional PUT), an atomic hard link on a local directory. Two writers that race for the same seq
cannot both win: the loser gets a conflict, re-reads the head and retries with the next seq, so the chain
never forks and no record is lost or overwritten. `audit/head.json` is only a hint of the last seq, so that
appending does not list the whole trail; a stale hint costs a few existence checks, never correctness.

What a hash chain cannot show on its own: removing the newest records (truncation) leaves a valid shorter
chain. The head hint catches a careless truncation; keep the `head_hash` of `verify_chain()` somewhere else
(the SLA report, a ticket) and pass it as `expected_head` to catch a careful one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from spotify_jobs.storage.object_store import ObjectExists, StorageError
from spotify_jobs.storage.tenant_storage import TenantStorage

AUDIT_PREFIX = "audit"
RECORDS_PREFIX = f"{AUDIT_PREFIX}/records"
HEAD_KEY = f"{AUDIT_PREFIX}/head.json"
GENESIS_HASH = "0" * 64
SEQ_DIGITS = 12
MAX_APPEND_ATTEMPTS = 50
AUDIT_ACTIONS = frozenset(
    {
        "started",
        "retried",
        "succeeded",
        "failed",
        "cancelled",
        "restored",
        "backed-up",
        "offboarded",
        "onboarded",
        "config-changed",
    }
)
_RECORD_KEY = re.compile(rf"^{RECORDS_PREFIX}/(\d{{{SEQ_DIGITS}}})\.json$")


class AuditError(ValueError):
    """An audit record that cannot be written as asked (unknown action, empty actor, ...)."""


def canonical_json(payload: object) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def config_hash(run_config: Mapping[str, object] | None) -> str:
    """`sha256:<hex>` of a run config in canonical JSON (key order does not matter)."""
    return "sha256:" + hashlib.sha256(canonical_json(dict(run_config or {}))).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    tenant: str
    actor: str
    action: str
    subject: str
    run_id: str | None
    config_hash: str | None
    details: dict[str, object] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def body(self) -> dict[str, object]:
        payload = asdict(self)
        payload.pop("hash")
        return payload

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    @classmethod
    def from_json(cls, raw: bytes) -> AuditRecord:
        payload = json.loads(raw)
        return cls(**payload)


@dataclass
class ChainReport:
    """What `verify_chain` found: `ok` is True only when there are no problems."""

    tenant: str
    records: int
    head_seq: int | None
    head_hash: str | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AuditTrail:
    """The audit trail of one tenant, in that tenant's storage."""

    def __init__(self, storage: TenantStorage):
        self.storage = storage
        self.tenant = storage.tenant_id

    def _record_key(self, seq: int) -> str:
        return f"{RECORDS_PREFIX}/{seq:0{SEQ_DIGITS}d}.json"

    def _read(self, seq: int) -> AuditRecord:
        return AuditRecord.from_json(self.storage.read_bytes(self._record_key(seq)))

    def _head_hint(self) -> int:
        if not self.storage.exists(HEAD_KEY):
            return -1
        try:
            seq = int(self.storage.read_json(HEAD_KEY)["seq"])
        except (ValueError, KeyError, TypeError):
            return -1
        return seq if seq >= 0 and self.storage.exists(self._record_key(seq)) else -1

    def _head(self) -> AuditRecord | None:
        seq = self._head_hint()
        if seq < 0:
            seqs = self._listed_seqs()
            seq = max(seqs) if seqs else -1
        while self.storage.exists(self._record_key(seq + 1)):
            seq += 1
        return self._read(seq) if seq >= 0 else None

    def _listed_seqs(self) -> list[int]:
        seqs = []
        for info in self.storage.list(RECORDS_PREFIX):
            match = _RECORD_KEY.match(info.key)
            if match:
                seqs.append(int(match.group(1)))
        return sorted(seqs)

    def append(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        run_id: str | None = None,
        config_hash: str | None = None,
        details: Mapping[str, object] | None = None,
        time: str | None = None,
    ) -> AuditRecord:
        """Add a record at the end of the chain; retries when a concurrent writer took the seq first."""
        if action not in AUDIT_ACTIONS:
            raise AuditError(f"unknown audit action {action!r}; allowed: {', '.join(sorted(AUDIT_ACTIONS))}")
        if not actor or not subject:
            raise AuditError("an audit record needs an actor and a subject")
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            head = self._head()
            record = AuditRecord(
                seq=head.seq + 1 if head else 0,
                time=time or _now(),
                tenant=self.tenant,
                actor=actor,
                action=action,
                subject=subject,
                run_id=run_id,
                config_hash=config_hash,
                details=json.loads(canonical_json(dict(details or {}))),
                prev_hash=head.hash if head else GENESIS_HASH,
            )
            record = AuditRecord(**{**record.body(), "hash": record.computed_hash()})
            try:
                self.storage.create(canonical_json(asdict(record)), self._record_key(record.seq))
            except ObjectExists:
                continue
            self.storage.write_json({"seq": record.seq, "hash": record.hash}, HEAD_KEY)
            return record
        raise StorageError(
            f"audit trail of {self.tenant!r}: gave up after {MAX_APPEND_ATTEMPTS} write conflicts"
        )

    def records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first (unverified: call verify_chain to trust them)."""
        for seq in self._listed_seqs():
            yield self._read(seq)

    def verify_chain(self, expected_head: str | None = None) -> ChainReport:
        """Check every record's hash, the links between them, the seq numbering and the head."""
        problems: list[str] = []
        previous: AuditRecord | None = None
        count = 0
        for seq in self._listed_seqs():
            expected_seq = previous.seq + 1 if previous else 0
            if seq != expected_seq:
                problems.append(f"records {expected_seq}..{seq - 1} are missing")
            try:
                record = self._read(seq)
            except (ValueError, TypeError) as exc:
                problems.append(f"record {seq} is unreadable: {exc}")
                previous = None
                continue
            count += 1
            if record.seq != seq:
                problems.append(f"record {seq} says it is record {record.seq}")
            if record.tenant != self.tenant:
                problems.append(f"record {seq} belongs to tenant {record.tenant!r}")
            if record.hash != record.computed_hash():
                problems.append(f"record {seq} was modified: its content does not match its hash")
            if previous is not None and record.prev_hash != previous.hash:
                problems.append(f"record {seq} does not follow record {previous.seq}: chain broken")
            if previous is None and seq == 0 and record.prev_hash != GENESIS_HASH:
                problems.append("record 0 does not start the chain")
            previous = record
        hint = self.storage.read_json(HEAD_KEY) if self.storage.exists(HEAD_KEY) else None
        if isinstance(hint, dict) and previous is not None and int(hint.get("seq", -1)) > previous.seq:
            problems.append(f"trail ends at record {previous.seq} but the head says {hint['seq']}: truncated")
        if expected_head is not None and (previous is None or previous.hash != expected_head):
            problems.append(f"head is {previous.hash if previous else None}, expected {expected_head}")
        return ChainReport(
            tenant=self.tenant,
            records=count,
            head_seq=previous.seq if previous else None,
            head_hash=previous.hash if previous else None,
            problems=problems,
        )
