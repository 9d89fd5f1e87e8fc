"""The Pod Security Standards "restricted" profile (Kubernetes v1.30, `latest`) as a check on a pod spec.

Pod Security Admission runs in the API server, which these tests do not have; this applies the same
controls (https://kubernetes.io/docs/concepts/security/pod-security-standards/) to camelCase pod specs.
"""

from __future__ import annotations

from collections.abc import Mapping

# Restricted allows only these volume types.
_ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def _containers(spec: Mapping) -> list[Mapping]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def restricted_violations(spec: Mapping) -> list[str]:
    """Each way the pod spec `spec` breaks Pod Security "restricted"; empty when it complies."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"pod sets {field}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')!r} has a disallowed type {sorted(kinds)}")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            problems.append(f"pod sets unsafe sysctl {sysctl.get('name')!r}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runs as user 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in _SECCOMP_OK:
        problems.append(f"pod seccomp profile {pod_seccomp!r}")
    containers = _containers(spec)
    if not containers:
        problems.append("pod has no containers")
    for container in containers:
        name = container.get("name", "?")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"container {name!r} is privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name!r} does not set allowPrivilegeEscalation: false")
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"container {name!r} does not run as non-root (runAsNonRoot)")
        if sc.get("runAsUser") == 0:
            problems.append(f"container {name!r} runs as user 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in _SECCOMP_OK:
            problems.append(f"container {name!r} has seccomp profile {seccomp!r} (need RuntimeDefault)")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name!r} does not drop ALL capabilities")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"container {name!r} adds capabilities {sorted(added)}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"container {name!r} sets procMount {sc['procMount']!r}")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"container {name!r} uses hostPort {port['hostPort']}")
    return problems
