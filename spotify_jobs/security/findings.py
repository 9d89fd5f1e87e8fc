"""Findings and the ledger of what was checked: the raw material of scores and reports."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from spotify_jobs.security.controls import Severity, control


class Status(StrEnum):
    FAIL = "fail"  # the control does not hold: counts against the score
    RISK = "risk"  # worth knowing, but not a control failure (e.g. personal data in raw landing files)


@dataclass(frozen=True, order=True)
class ObjectRef:
    """What a finding is about: a Kubernetes object, a tenant file or a backup."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Finding:
    control: str
    status: Status
    object: ObjectRef
    field: str
    message: str
    severity: Severity
    title: str
    remediation: str
    frameworks: dict[str, tuple[str, ...]]
    source: str = "spotify-jobs"
    count: int = 1

    @property
    def fingerprint(self) -> str:
        """Stable identity across scans (for the trend: new and resolved findings)."""
        return f"{self.control}|{self.object}|{self.field}"

    def to_dict(self) -> dict:
        return {
            "control": self.control,
            "title": self.title,
            "severity": self.severity.value,
            "status": self.status.value,
            "object": self.object.to_dict(),
            "field": self.field,
            "message": self.message,
            "count": self.count,
            "remediation": self.remediation,
            "frameworks": {name: list(ids) for name, ids in self.frameworks.items()},
            "source": self.source,
        }


@dataclass
class Ledger:
    """Which (control, object) pairs were evaluated, what failed, and which controls could not apply."""

    checked: dict[str, set[ObjectRef]] = field(default_factory=lambda: defaultdict(set))
    findings: list[Finding] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def check(self, control_id: str, obj: ObjectRef) -> None:
        control(control_id)  # unknown ids fail here, not silently in the score
        self.checked[control_id].add(obj)

    def fail(
        self,
        control_id: str,
        obj: ObjectRef,
        field_path: str,
        message: str,
        *,
        status: Status = Status.FAIL,
        count: int = 1,
    ) -> None:
        ctl = control(control_id)
        self.checked[control_id].add(obj)
        self.findings.append(
            Finding(
                control=ctl.id,
                status=status,
                object=obj,
                field=field_path,
                message=message,
                severity=ctl.severity,
                title=ctl.title,
                remediation=ctl.remediation,
                frameworks=dict(ctl.frameworks),
                count=count,
            )
        )

    def skip(self, control_id: str, reason: str) -> None:
        """Record that a control does not apply to this tenant (it then counts in no score)."""
        control(control_id)
        self.not_applicable.setdefault(control_id, reason)

    def add_external(self, finding: Finding) -> None:
        """A finding from another tool (checkov): reported, mapped to no framework unless it says so."""
        self.findings.append(finding)

    def merge(self, other: Ledger) -> Ledger:
        for control_id, objects in other.checked.items():
            self.checked[control_id] |= objects
        self.findings.extend(other.findings)
        for control_id, reason in other.not_applicable.items():
            self.not_applicable.setdefault(control_id, reason)
        self.notes.extend(other.notes)
        return self
