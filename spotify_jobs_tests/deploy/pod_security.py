"""Pod Security "restricted" for a bare pod spec, judged by the security scan's own posture controls (one
implementation of the standard for the platform and its tests)."""

from __future__ import annotations

from collections.abc import Mapping

from spotify_jobs.security.posture import scan_objects
from spotify_jobs.security.report import restricted_profile_findings


def restricted_violations(spec: Mapping) -> list[str]:
    """Each way the pod spec `spec` breaks Pod Security "restricted"; empty when it complies."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "probe"},
        "spec": spec,
    }
    findings = restricted_profile_findings(scan_objects([pod], check_namespaces=False).findings)
    return [f"{finding.control} at {finding.field}: {finding.message}" for finding in findings]
