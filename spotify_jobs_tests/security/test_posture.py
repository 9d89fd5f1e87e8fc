"""Protects the Kubernetes posture checks: every seeded PSS/hardening violation is found, nothing else is."""

from __future__ import annotations

import pytest

from spotify_jobs.security.controls import GDPR, ISO, PCI, SOX
from spotify_jobs.security.posture import image_pin_problem, scan_objects
from spotify_jobs_tests.security.helpers import DIGEST, namespace_objects, restricted_pod_spec, workload


def failed(objects: list[dict]) -> dict[str, list]:
    """control -> its findings, for a scan of `objects` plus a compliant namespace."""
    ledger = scan_objects([*objects, *namespace_objects()])
    result: dict[str, list] = {}
    for finding in ledger.findings:
        result.setdefault(finding.control, []).append(finding)
    return result


def container(spec: dict, index: int = 0) -> dict:
    return spec["containers"][index]


def sc(spec: dict) -> dict:
    return container(spec)["securityContext"]


def _privileged(s):
    sc(s)["privileged"] = True


def _root_user(s):
    sc(s)["runAsUser"] = 0


def _root_pod(s):
    s["securityContext"]["runAsUser"] = 0


def _host_path(s):
    s["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}})


def _no_limits(s):
    del container(s)["resources"]["limits"]


def _no_memory_limit(s):
    del container(s)["resources"]["limits"]["memory"]


def _latest(s):
    container(s)["image"] = "registry.example.com/spotify-jobs:latest"


def _untagged(s):
    container(s)["image"] = "registry.example.com:5000/spotify-jobs"


def _host_network(s):
    s["hostNetwork"] = True


def _host_pid(s):
    s["hostPID"] = True


def _host_port(s):
    container(s)["ports"] = [{"containerPort": 8080, "hostPort": 8080}]


def _sys_admin(s):
    sc(s)["capabilities"]["add"] = ["SYS_ADMIN"]


def _chown(s):
    sc(s)["capabilities"]["add"] = ["CHOWN"]


def _no_drop_all(s):
    sc(s)["capabilities"] = {"drop": ["NET_RAW"]}


def _escalation(s):
    del sc(s)["allowPrivilegeEscalation"]


def _maybe_root(s):
    del s["securityContext"]["runAsNonRoot"]


def _container_root_allowed(s):
    sc(s)["runAsNonRoot"] = False


def _unconfined(s):
    s["securityContext"]["seccompProfile"] = {"type": "Unconfined"}


def _no_seccomp(s):
    del s["securityContext"]["seccompProfile"]


def _proc_unmasked(s):
    sc(s)["procMount"] = "Unmasked"


def _unsafe_sysctl(s):
    s["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "65536"}]


def _apparmor_unconfined(s):
    sc(s)["appArmorProfile"] = {"type": "Unconfined"}


def _selinux_type(s):
    s["securityContext"]["seLinuxOptions"] = {"type": "spc_t"}


def _selinux_user(s):
    sc(s)["seLinuxOptions"] = {"user": "system_u"}


def _host_process(s):
    sc(s)["windowsOptions"] = {"hostProcess": True}


def _writable_root(s):
    sc(s)["readOnlyRootFilesystem"] = False


def _token_mounted(s):
    s["automountServiceAccountToken"] = True


def _nfs(s):
    s["volumes"].append({"name": "shared", "nfs": {"server": "nfs.local", "path": "/export"}})


def _privileged_init(s):
    init = dict(container(s), name="init")
    init["securityContext"] = dict(sc(s), privileged=True)
    s["initContainers"] = [init]


def _ephemeral_escalates(s):
    s["ephemeralContainers"] = [
        {"name": "debug", "image": f"busybox@{DIGEST}",
         "securityContext": {"capabilities": {"drop": ["ALL"]}}}
    ]  # fmt: skip


P = "spec.template.spec"
C0 = f"{P}.containers[0]"
SEEDED = [
    # (mutation, controls that must fail and nothing else, a field path of the first finding)
    (_privileged, {"PSS-PRIVILEGED"}, f"{C0}.securityContext.privileged"),
    (_root_user, {"PSS-RUN-AS-USER"}, f"{C0}.securityContext.runAsUser"),
    (_root_pod, {"PSS-RUN-AS-USER"}, f"{P}.securityContext.runAsUser"),
    (_host_path, {"PSS-HOSTPATH", "PSS-VOLUME-TYPES"}, f"{P}.volumes[1].hostPath"),
    (_no_limits, {"K8S-RESOURCE-LIMITS"}, f"{C0}.resources.limits"),
    (_no_memory_limit, {"K8S-RESOURCE-LIMITS"}, f"{C0}.resources.limits"),
    (_latest, {"K8S-IMAGE-PINNED"}, f"{C0}.image"),
    (_untagged, {"K8S-IMAGE-PINNED"}, f"{C0}.image"),
    (_host_network, {"PSS-HOST-NAMESPACES"}, f"{P}.hostNetwork"),
    (_host_pid, {"PSS-HOST-NAMESPACES"}, f"{P}.hostPID"),
    (_host_port, {"PSS-HOST-PORTS"}, f"{C0}.ports[0].hostPort"),
    (_sys_admin, {"PSS-CAPABILITIES-BASELINE", "PSS-CAPABILITIES-RESTRICTED"}, f"{C0}.securityContext.capabilities.add"),
    (_chown, {"PSS-CAPABILITIES-RESTRICTED"}, f"{C0}.securityContext.capabilities.add"),
    (_no_drop_all, {"PSS-CAPABILITIES-RESTRICTED"}, f"{C0}.securityContext.capabilities.drop"),
    (_escalation, {"PSS-PRIVILEGE-ESCALATION"}, f"{C0}.securityContext.allowPrivilegeEscalation"),
    (_maybe_root, {"PSS-RUN-AS-NON-ROOT"}, f"{C0}.securityContext.runAsNonRoot"),
    (_container_root_allowed, {"PSS-RUN-AS-NON-ROOT"}, f"{C0}.securityContext.runAsNonRoot"),
    (_unconfined, {"PSS-SECCOMP-BASELINE", "PSS-SECCOMP-RESTRICTED"}, f"{P}.securityContext.seccompProfile.type"),
    (_no_seccomp, {"PSS-SECCOMP-RESTRICTED"}, f"{C0}.securityContext.seccompProfile"),
    (_proc_unmasked, {"PSS-PROC-MOUNT"}, f"{C0}.securityContext.procMount"),
    (_unsafe_sysctl, {"PSS-SYSCTLS"}, f"{P}.securityContext.sysctls[0].name"),
    (_apparmor_unconfined, {"PSS-APPARMOR"}, f"{C0}.securityContext.appArmorProfile.type"),
    (_selinux_type, {"PSS-SELINUX"}, f"{P}.securityContext.seLinuxOptions.type"),
    (_selinux_user, {"PSS-SELINUX"}, f"{C0}.securityContext.seLinuxOptions.user"),
    (_host_process, {"PSS-HOST-PROCESS"}, f"{C0}.securityContext.windowsOptions.hostProcess"),
    (_writable_root, {"K8S-READONLY-ROOTFS"}, f"{C0}.securityContext.readOnlyRootFilesystem"),
    (_token_mounted, {"K8S-SA-TOKEN-AUTOMOUNT"}, f"{P}.automountServiceAccountToken"),
    (_nfs, {"PSS-VOLUME-TYPES"}, f"{P}.volumes[1].nfs"),
    (_privileged_init, {"PSS-PRIVILEGED"}, f"{P}.initContainers[0].securityContext.privileged"),
    (_ephemeral_escalates, {"PSS-PRIVILEGE-ESCALATION"},
     f"{P}.ephemeralContainers[0].securityContext.allowPrivilegeEscalation"),
]  # fmt: skip


def test_a_restricted_workload_in_a_hardened_namespace_has_no_finding():
    assert failed([workload()]) == {}


@pytest.mark.parametrize(("mutate", "controls", "field"), SEEDED, ids=[m.__name__ for m, _, _ in SEEDED])
def test_each_seeded_violation_fails_exactly_its_controls(mutate, controls, field):
    spec = restricted_pod_spec()
    mutate(spec)
    found = failed([workload(spec=spec)])
    assert set(found) == controls
    fields = [f.field for findings in found.values() for f in findings]
    assert field in fields
    finding = next(f for findings in found.values() for f in findings if f.field == field)
    assert str(finding.object) == "Job/sj-dev-startup-042/step"
    assert finding.remediation and finding.frameworks


@pytest.mark.parametrize(
    ("mutate", "control", "expected"),
    [
        (_privileged, "PSS-PRIVILEGED", {PCI: "2.2.6", ISO: "A.8.2", SOX: "APD", GDPR: "Art. 32(1)(b)"}),
        (_root_user, "PSS-RUN-AS-USER", {PCI: "7.2.5", ISO: "A.8.2"}),
        (_host_path, "PSS-HOSTPATH", {PCI: "A1.1.2", ISO: "A.8.3"}),
        (_no_limits, "K8S-RESOURCE-LIMITS", {PCI: "A1.1.3", ISO: "A.8.6", SOX: "CO"}),
        (_latest, "K8S-IMAGE-PINNED", {PCI: "6.5.1", ISO: "A.8.32", SOX: "PC"}),
    ],
)
def test_findings_carry_their_framework_requirements(mutate, control, expected):
    spec = restricted_pod_spec()
    mutate(spec)
    [finding, *_] = failed([workload(spec=spec)])[control]
    for framework, requirement in expected.items():
        assert requirement in finding.frameworks[framework]


def test_seeded_severities_match_the_catalogue():
    spec = restricted_pod_spec()
    _privileged(spec)
    _root_user(spec)
    _host_path(spec)
    _no_limits(spec)
    found = failed([workload(spec=spec)])
    assert {c: found[c][0].severity.value for c in found} == {
        "PSS-PRIVILEGED": "critical",
        "PSS-RUN-AS-USER": "critical",
        "PSS-HOSTPATH": "critical",
        "PSS-VOLUME-TYPES": "high",
        "K8S-RESOURCE-LIMITS": "medium",
    }


@pytest.mark.parametrize(
    "kind", ["Pod", "Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]
)
def test_pod_spec_is_found_in_every_workload_kind(kind):
    assert failed([workload(kind)]) == {}
    spec = restricted_pod_spec()
    _privileged(spec)
    [finding] = failed([workload(kind, spec)])["PSS-PRIVILEGED"]
    prefix = {"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec"}.get(kind, P)
    assert finding.field == f"{prefix}.containers[0].securityContext.privileged"
    assert finding.object.kind == kind


def test_apparmor_annotation_on_the_pod_template_is_checked():
    job = workload()
    job["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/step": "unconfined"
    }
    [finding] = failed([job])["PSS-APPARMOR"]
    assert finding.field.startswith("spec.template.metadata.annotations[")
    job["spec"]["template"]["metadata"]["annotations"][
        "container.apparmor.security.beta.kubernetes.io/step"
    ] = "localhost/k8s-step"
    assert failed([job]) == {}


def test_safe_sysctls_and_net_bind_service_are_allowed():
    spec = restricted_pod_spec()
    spec["securityContext"]["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    sc(spec)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert failed([workload(spec=spec)]) == {}


def test_windows_pods_are_exempt_from_the_linux_only_restricted_controls():
    spec = restricted_pod_spec()
    spec["os"] = {"name": "windows"}
    del spec["securityContext"]["seccompProfile"]
    del sc(spec)["allowPrivilegeEscalation"]
    del sc(spec)["capabilities"]
    assert failed([workload(spec=spec)]) == {}
    del spec["os"]
    assert set(failed([workload(spec=spec)])) == {
        "PSS-SECCOMP-RESTRICTED",
        "PSS-PRIVILEGE-ESCALATION",
        "PSS-CAPABILITIES-RESTRICTED",
    }


def test_container_level_seccomp_satisfies_restricted_without_a_pod_profile():
    spec = restricted_pod_spec()
    del spec["securityContext"]["seccompProfile"]
    sc(spec)["seccompProfile"] = {"type": "Localhost", "localhostProfile": "profiles/step.json"}
    assert failed([workload(spec=spec)]) == {}


def test_service_account_may_disable_the_token_instead_of_the_pod():
    spec = restricted_pod_spec()
    del spec["automountServiceAccountToken"]
    spec["serviceAccountName"] = "spotify-jobs-step"
    assert set(failed([workload(spec=spec)])) == {"K8S-SA-TOKEN-AUTOMOUNT"}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
               "metadata": {"name": "spotify-jobs-step", "namespace": "sj-dev-startup-042"}}  # fmt: skip
    assert failed([workload(spec=spec), account]) == {}


def namespace_findings(objects: list[dict]) -> dict[str, list]:
    result: dict[str, list] = {}
    for finding in scan_objects([workload(), *objects]).findings:
        result.setdefault(finding.control, []).append(finding)
    return result


def test_missing_network_policy_and_quota_are_findings():
    found = namespace_findings(namespace_objects(deny=False, quota=False))
    assert set(found) == {"K8S-NETWORK-DEFAULT-DENY", "K8S-RESOURCE-QUOTA"}
    [deny] = found["K8S-NETWORK-DEFAULT-DENY"]
    assert str(deny.object) == "Namespace/sj-dev-startup-042"
    assert "Ingress and Egress not denied" in deny.message
    assert "1.3.1" in deny.frameworks[PCI] and "A.8.22" in deny.frameworks[ISO]


def test_default_deny_needs_both_directions_for_all_pods():
    ingress_only = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "deny-in", "namespace": "sj-dev-startup-042"},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}  # fmt: skip
    objects = [*namespace_objects(deny=False), ingress_only]
    [finding] = namespace_findings(objects)["K8S-NETWORK-DEFAULT-DENY"]
    assert finding.message.startswith("Egress not denied")
    selective = {**ingress_only, "metadata": {"name": "deny-out", "namespace": "sj-dev-startup-042"},
                 "spec": {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Egress"]}}  # fmt: skip
    assert "K8S-NETWORK-DEFAULT-DENY" in namespace_findings([*objects, selective])
    egress = {**selective, "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}
    assert namespace_findings([*objects, egress]) == {}


def test_namespace_must_enforce_the_restricted_standard():
    objects = namespace_objects()
    objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    [finding] = namespace_findings(objects)["K8S-NAMESPACE-PSA"]
    assert "'baseline'" in finding.message
    [missing] = namespace_findings(objects[1:])["K8S-NAMESPACE-PSA"]
    assert "no Namespace object" in missing.message


def test_namespace_controls_can_be_left_out():
    ledger = scan_objects([workload()], check_namespaces=False)
    assert ledger.findings == []
    assert "K8S-NETWORK-DEFAULT-DENY" not in ledger.checked


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("registry.example.com/spotify-jobs:0.1.0", None),
        (f"spotify-jobs@{DIGEST}", None),
        (f"registry.example.com:5000/spotify-jobs:0.1.0@{DIGEST}", None),
        ("spotify-jobs:latest", "floating tag :latest"),
        ("spotify-jobs:Latest", "floating tag :Latest"),
        ("spotify-jobs:main", "floating tag :main"),
        ("spotify-jobs", "untagged (pulls :latest)"),
        ("registry.example.com:5000/spotify-jobs", "untagged (pulls :latest)"),
        ("spotify-jobs@sha256:abc", "malformed digest 'sha256:abc'"),
        ("", "no image reference"),
    ],
)
def test_image_pinning(image, problem):
    assert image_pin_problem(image) == problem


def test_an_object_without_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="no 'kind'"):
        scan_objects([{"metadata": {"name": "x"}}])
