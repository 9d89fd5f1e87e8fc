"""Kubernetes posture checks over plain object dicts (camelCase, as the API and manifests spell them).

The Pod Security Standards (baseline and restricted, as of Kubernetes 1.30) are checked control by control
the way the admission plugin does, on the pod spec of any workload kind (Pod, Job, CronJob, Deployment, ...),
plus hardening the standards leave out: limits, a read-only root filesystem, pinned images, no automounted
service account token, and per namespace a default-deny NetworkPolicy, a ResourceQuota and restricted
Pod Security Admission labels.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spotify_jobs.security.findings import Ledger, ObjectRef

# Where the pod spec and pod metadata lie in each workload kind.
_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Job": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
     "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)  # fmt: skip
RESTRICTED_ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
     "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
     "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
     "net.ipv4.tcp_keepalive_probes"}
)  # fmt: skip
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
FLOATING_TAGS = frozenset(
    {"latest", "stable", "main", "master", "develop", "dev", "edge", "nightly", "canary"}
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_pin_problem(image: object) -> str | None:
    """Why an image reference is not pinned (None if it is pinned by digest or a release tag)."""
    if not isinstance(image, str) or not image:
        return "no image reference"
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if _DIGEST.match(digest) else f"malformed digest {digest!r}"
    last = image.rsplit("/", 1)[-1]  # a registry host:port before the last '/' is not a tag
    if ":" not in last:
        return "untagged (pulls :latest)"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in FLOATING_TAGS:
        return f"floating tag :{tag}"
    return None


@dataclass(frozen=True)
class Workload:
    """A pod spec found inside an object, with the dotted path that leads to it."""

    ref: ObjectRef
    spec: dict
    metadata: dict
    path: str  # of the pod spec, e.g. "spec.template.spec"

    @property
    def windows(self) -> bool:
        return (self.spec.get("os") or {}).get("name") == "windows"

    def containers(self, lists: Iterable[str] = CONTAINER_LISTS) -> Iterator[tuple[str, dict]]:
        """(path, container) for every container in the given lists."""
        for list_name in lists:
            for index, container in enumerate(self.spec.get(list_name) or []):
                yield f"{self.path}.{list_name}[{index}]", container


def object_ref(obj: dict) -> ObjectRef:
    """kind/namespace/name of a Kubernetes object dict; ValueError if it has no kind."""
    if not isinstance(obj, dict) or not obj.get("kind"):
        raise ValueError(f"not a Kubernetes object (no 'kind'): {str(obj)[:120]}")
    meta = obj.get("metadata") or {}
    return ObjectRef(str(obj["kind"]), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def find_workload(obj: dict) -> Workload | None:
    """The pod spec inside a workload object, or None for kinds that hold no pods."""
    ref = object_ref(obj)
    path = _POD_TEMPLATE_PATHS.get(ref.kind)
    if path is None:
        return None
    template = obj
    for part in path:
        template = template.get(part) or {}
    spec = template.get("spec")
    if not isinstance(spec, dict):
        raise ValueError(f"{ref}: no pod spec at {'.'.join((*path, 'spec'))}")
    return Workload(ref, spec, template.get("metadata") or {}, ".".join((*path, "spec")))


def _sc(holder: dict) -> dict:
    return holder.get("securityContext") or {}


def check_workload(workload: Workload, ledger: Ledger, service_accounts: dict[tuple[str, str], dict]) -> None:
    """Every Pod Security Standards control and every per-pod hardening control, on one workload."""
    for check in _POD_CHECKS:
        check(workload, ledger)
    _check_service_account_token(workload, ledger, service_accounts)


def _host_process(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-HOST-PROCESS"
    ledger.check(ctl, w.ref)
    if (_sc(w.spec).get("windowsOptions") or {}).get("hostProcess"):
        ledger.fail(
            ctl, w.ref, f"{w.path}.securityContext.windowsOptions.hostProcess", "pod is a HostProcess pod"
        )
    for path, c in w.containers():
        if (_sc(c).get("windowsOptions") or {}).get("hostProcess"):
            ledger.fail(ctl, w.ref, f"{path}.securityContext.windowsOptions.hostProcess",
                        f"container {c.get('name')!r} is a HostProcess container")  # fmt: skip


def _host_namespaces(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-HOST-NAMESPACES"
    ledger.check(ctl, w.ref)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if w.spec.get(key):
            ledger.fail(ctl, w.ref, f"{w.path}.{key}", f"{key}: true shares the node's namespace")


def _privileged(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-PRIVILEGED"
    ledger.check(ctl, w.ref)
    for path, c in w.containers():
        if _sc(c).get("privileged"):
            ledger.fail(ctl, w.ref, f"{path}.securityContext.privileged",
                        f"container {c.get('name')!r} runs privileged")  # fmt: skip


def _capabilities(w: Workload, ledger: Ledger) -> None:
    ledger.check("PSS-CAPABILITIES-BASELINE", w.ref)
    if not w.windows:
        ledger.check("PSS-CAPABILITIES-RESTRICTED", w.ref)
    for path, c in w.containers():
        caps = _sc(c).get("capabilities") or {}
        added = [str(cap) for cap in caps.get("add") or []]
        beyond_baseline = sorted(set(added) - BASELINE_CAPABILITIES)
        if beyond_baseline:
            ledger.fail("PSS-CAPABILITIES-BASELINE", w.ref, f"{path}.securityContext.capabilities.add",
                        f"container {c.get('name')!r} adds {', '.join(beyond_baseline)}")  # fmt: skip
        if w.windows:
            continue
        if "ALL" not in (caps.get("drop") or []):
            ledger.fail("PSS-CAPABILITIES-RESTRICTED", w.ref, f"{path}.securityContext.capabilities.drop",
                        f"container {c.get('name')!r} does not drop ALL capabilities")  # fmt: skip
        beyond_restricted = sorted(set(added) - RESTRICTED_ADDABLE_CAPABILITIES)
        if beyond_restricted:
            ledger.fail("PSS-CAPABILITIES-RESTRICTED", w.ref, f"{path}.securityContext.capabilities.add",
                        f"container {c.get('name')!r} adds {', '.join(beyond_restricted)}")  # fmt: skip


def _volumes(w: Workload, ledger: Ledger) -> None:
    ledger.check("PSS-HOSTPATH", w.ref)
    ledger.check("PSS-VOLUME-TYPES", w.ref)
    for index, volume in enumerate(w.spec.get("volumes") or []):
        path = f"{w.path}.volumes[{index}]"
        name = volume.get("name")
        if volume.get("hostPath") is not None:
            host = (volume.get("hostPath") or {}).get("path")
            ledger.fail(
                "PSS-HOSTPATH", w.ref, f"{path}.hostPath", f"volume {name!r} mounts host path {host!r}"
            )
        sources = sorted(key for key, value in volume.items() if key != "name" and value is not None)
        disallowed = [source for source in sources if source not in RESTRICTED_VOLUME_TYPES]
        if disallowed:
            ledger.fail("PSS-VOLUME-TYPES", w.ref, f"{path}.{disallowed[0]}",
                        f"volume {name!r} is of type {', '.join(disallowed)}")  # fmt: skip


def _host_ports(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-HOST-PORTS"
    ledger.check(ctl, w.ref)
    for path, c in w.containers():
        for index, port in enumerate(c.get("ports") or []):
            if port.get("hostPort"):
                ledger.fail(ctl, w.ref, f"{path}.ports[{index}].hostPort",
                            f"container {c.get('name')!r} binds host port {port['hostPort']}")  # fmt: skip


def _apparmor(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-APPARMOR"
    ledger.check(ctl, w.ref)
    holders = [(f"{w.path}.securityContext", _sc(w.spec))]
    holders += [(f"{path}.securityContext", _sc(c)) for path, c in w.containers()]
    for path, sc in holders:
        profile_type = (sc.get("appArmorProfile") or {}).get("type")
        if profile_type is not None and profile_type not in APPARMOR_TYPES:
            ledger.fail(ctl, w.ref, f"{path}.appArmorProfile.type", f"AppArmor profile type {profile_type!r}")
    meta_path = w.path.removesuffix("spec") + "metadata"
    for key, value in (w.metadata.get("annotations") or {}).items():
        if (
            key.startswith(APPARMOR_ANNOTATION)
            and value != "runtime/default"
            and not value.startswith("localhost/")
        ):
            ledger.fail(ctl, w.ref, f"{meta_path}.annotations[{key}]", f"AppArmor annotation {value!r}")


def _selinux(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-SELINUX"
    ledger.check(ctl, w.ref)
    holders = [(f"{w.path}.securityContext", _sc(w.spec))]
    holders += [(f"{path}.securityContext", _sc(c)) for path, c in w.containers()]
    for path, sc in holders:
        options = sc.get("seLinuxOptions") or {}
        if options.get("type") is not None and options["type"] not in SELINUX_TYPES:
            ledger.fail(ctl, w.ref, f"{path}.seLinuxOptions.type", f"SELinux type {options['type']!r}")
        for key in ("user", "role"):
            if options.get(key):
                ledger.fail(
                    ctl, w.ref, f"{path}.seLinuxOptions.{key}", f"SELinux {key} {options[key]!r} is set"
                )


def _proc_mount(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-PROC-MOUNT"
    ledger.check(ctl, w.ref)
    for path, c in w.containers():
        mount = _sc(c).get("procMount")
        if mount not in (None, "Default"):
            ledger.fail(ctl, w.ref, f"{path}.securityContext.procMount", f"procMount {mount!r} unmasks /proc")


def _seccomp(w: Workload, ledger: Ledger) -> None:
    ledger.check("PSS-SECCOMP-BASELINE", w.ref)
    pod_type = (_sc(w.spec).get("seccompProfile") or {}).get("type")
    if pod_type == "Unconfined":
        ledger.fail("PSS-SECCOMP-BASELINE", w.ref, f"{w.path}.securityContext.seccompProfile.type",
                    "pod seccomp profile is Unconfined")  # fmt: skip
    container_types = [
        (path, c, (_sc(c).get("seccompProfile") or {}).get("type")) for path, c in w.containers()
    ]
    for path, c, kind in container_types:
        if kind == "Unconfined":
            ledger.fail("PSS-SECCOMP-BASELINE", w.ref, f"{path}.securityContext.seccompProfile.type",
                        f"container {c.get('name')!r} seccomp profile is Unconfined")  # fmt: skip
    if w.windows:
        return
    ctl = "PSS-SECCOMP-RESTRICTED"
    ledger.check(ctl, w.ref)
    if pod_type is not None and pod_type not in SECCOMP_TYPES:
        ledger.fail(ctl, w.ref, f"{w.path}.securityContext.seccompProfile.type",
                    f"pod seccomp profile {pod_type!r} is neither RuntimeDefault nor Localhost")  # fmt: skip
    for path, c, kind in container_types:
        if kind is None and pod_type not in SECCOMP_TYPES:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.seccompProfile",
                        f"container {c.get('name')!r} has no seccomp profile and the pod sets none")  # fmt: skip
        elif kind is not None and kind not in SECCOMP_TYPES:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.seccompProfile.type",
                        f"container {c.get('name')!r} seccomp profile {kind!r}")  # fmt: skip


def _sysctls(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-SYSCTLS"
    ledger.check(ctl, w.ref)
    for index, sysctl in enumerate(_sc(w.spec).get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            ledger.fail(ctl, w.ref, f"{w.path}.securityContext.sysctls[{index}].name",
                        f"unsafe sysctl {sysctl.get('name')!r}")  # fmt: skip


def _privilege_escalation(w: Workload, ledger: Ledger) -> None:
    if w.windows:
        return
    ctl = "PSS-PRIVILEGE-ESCALATION"
    ledger.check(ctl, w.ref)
    for path, c in w.containers():
        if _sc(c).get("allowPrivilegeEscalation") is not False:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.allowPrivilegeEscalation",
                        f"container {c.get('name')!r} does not set allowPrivilegeEscalation: false")  # fmt: skip


def _run_as_non_root(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-RUN-AS-NON-ROOT"
    ledger.check(ctl, w.ref)
    pod_value = _sc(w.spec).get("runAsNonRoot")
    if pod_value is False:
        ledger.fail(ctl, w.ref, f"{w.path}.securityContext.runAsNonRoot", "pod sets runAsNonRoot: false")
    for path, c in w.containers():
        value = _sc(c).get("runAsNonRoot")
        if value is False:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.runAsNonRoot",
                        f"container {c.get('name')!r} sets runAsNonRoot: false")  # fmt: skip
        elif value is None and pod_value is not True:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.runAsNonRoot",
                        f"container {c.get('name')!r} may run as root: runAsNonRoot is set neither on it "
                        "nor on the pod")  # fmt: skip


def _run_as_user(w: Workload, ledger: Ledger) -> None:
    ctl = "PSS-RUN-AS-USER"
    ledger.check(ctl, w.ref)
    if _sc(w.spec).get("runAsUser") == 0:
        ledger.fail(ctl, w.ref, f"{w.path}.securityContext.runAsUser", "pod runs as UID 0 (root)")
    for path, c in w.containers():
        if _sc(c).get("runAsUser") == 0:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.runAsUser",
                        f"container {c.get('name')!r} runs as UID 0 (root)")  # fmt: skip


def _limits(w: Workload, ledger: Ledger) -> None:
    ctl = "K8S-RESOURCE-LIMITS"
    ledger.check(ctl, w.ref)
    # Ephemeral containers cannot have resources; they are left out as the API leaves them out.
    for path, c in w.containers(("initContainers", "containers")):
        limits = (c.get("resources") or {}).get("limits") or {}
        missing = [name for name in ("cpu", "memory") if not limits.get(name)]
        if missing:
            ledger.fail(ctl, w.ref, f"{path}.resources.limits",
                        f"container {c.get('name')!r} has no {' or '.join(missing)} limit")  # fmt: skip


def _read_only_root(w: Workload, ledger: Ledger) -> None:
    ctl = "K8S-READONLY-ROOTFS"
    ledger.check(ctl, w.ref)
    for path, c in w.containers(("initContainers", "containers")):
        if _sc(c).get("readOnlyRootFilesystem") is not True:
            ledger.fail(ctl, w.ref, f"{path}.securityContext.readOnlyRootFilesystem",
                        f"container {c.get('name')!r} can write its root filesystem")  # fmt: skip


def _image_pinned(w: Workload, ledger: Ledger) -> None:
    ctl = "K8S-IMAGE-PINNED"
    ledger.check(ctl, w.ref)
    for path, c in w.containers():
        problem = image_pin_problem(c.get("image"))
        if problem:
            ledger.fail(
                ctl,
                w.ref,
                f"{path}.image",
                f"container {c.get('name')!r} image {c.get('image')!r}: {problem}",
            )


def _check_service_account_token(
    w: Workload, ledger: Ledger, service_accounts: dict[tuple[str, str], dict]
) -> None:
    ctl = "K8S-SA-TOKEN-AUTOMOUNT"
    ledger.check(ctl, w.ref)
    value = w.spec.get("automountServiceAccountToken")
    if value is False:
        return
    account = w.spec.get("serviceAccountName") or "default"
    sa = service_accounts.get((w.ref.namespace, account))
    if value is None and sa is not None and sa.get("automountServiceAccountToken") is False:
        return
    reason = "set to true" if value else f"unset and ServiceAccount {account!r} does not disable it"
    ledger.fail(
        ctl, w.ref, f"{w.path}.automountServiceAccountToken", f"service account token is mounted ({reason})"
    )


_POD_CHECKS = (
    _host_process, _host_namespaces, _privileged, _capabilities, _volumes, _host_ports, _apparmor, _selinux,
    _proc_mount, _seccomp, _sysctls, _privilege_escalation, _run_as_non_root, _run_as_user, _limits,
    _read_only_root, _image_pinned,
)  # fmt: skip


def _selects_all_pods(policy: dict) -> bool:
    selector = (policy.get("spec") or {}).get("podSelector")
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


def _denied_directions(policy: dict) -> set[str]:
    """Directions ('Ingress', 'Egress') a NetworkPolicy denies for every pod of its namespace."""
    if not _selects_all_pods(policy):
        return set()
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
    denied = set()
    if "Ingress" in types and not spec.get("ingress"):
        denied.add("Ingress")
    if "Egress" in types and not spec.get("egress"):
        denied.add("Egress")
    return denied


def check_namespace(namespace: str, objects: list[dict], ledger: Ledger) -> None:
    """Namespace-wide controls: default-deny NetworkPolicy, ResourceQuota, restricted PSA enforcement."""
    ref = ObjectRef("Namespace", "", namespace)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for obj in objects:
        by_kind[obj["kind"]].append(obj)

    ledger.check("K8S-NETWORK-DEFAULT-DENY", ref)
    denied = set().union(*(_denied_directions(p) for p in by_kind["NetworkPolicy"]))
    missing = [d for d in ("Ingress", "Egress") if d not in denied]
    if missing:
        have = (
            f"{len(by_kind['NetworkPolicy'])} NetworkPolicies"
            if by_kind["NetworkPolicy"]
            else "no NetworkPolicy"
        )
        ledger.fail("K8S-NETWORK-DEFAULT-DENY", ref, "NetworkPolicy",
                    f"{' and '.join(missing)} not denied by default ({have} in {namespace})")  # fmt: skip

    ledger.check("K8S-RESOURCE-QUOTA", ref)
    if not any((q.get("spec") or {}).get("hard") for q in by_kind["ResourceQuota"]):
        ledger.fail(
            "K8S-RESOURCE-QUOTA", ref, "ResourceQuota", f"no ResourceQuota with hard limits in {namespace}"
        )

    ledger.check("K8S-NAMESPACE-PSA", ref)
    namespaces = by_kind["Namespace"]
    if not namespaces:
        ledger.fail(
            "K8S-NAMESPACE-PSA", ref, "metadata.labels", f"no Namespace object for {namespace} to check"
        )
    for ns in namespaces:
        level = ((ns.get("metadata") or {}).get("labels") or {}).get(PSA_ENFORCE_LABEL)
        if level != "restricted":
            ledger.fail("K8S-NAMESPACE-PSA", ref, f"metadata.labels[{PSA_ENFORCE_LABEL}]",
                        f"namespace enforces {level!r}, not 'restricted'")  # fmt: skip


def scan_objects(
    objects: Iterable[dict], namespaces: Iterable[str] = (), *, check_namespaces: bool = True
) -> Ledger:
    """Posture of a set of Kubernetes objects: every workload's pod spec, and (with `check_namespaces`)
    every namespace involved: those named in `namespaces` plus those the workloads live in. Objects of
    other kinds are context: ServiceAccounts decide token automounting, NetworkPolicies, quotas and the
    Namespace itself the namespace controls."""
    ledger = Ledger()
    objects = list(objects)
    refs = [object_ref(obj) for obj in objects]
    service_accounts = {(r.namespace, r.name): obj for r, obj in zip(refs, objects, strict=True)
                        if r.kind == "ServiceAccount"}  # fmt: skip
    by_namespace: dict[str, list[dict]] = defaultdict(list)
    for ref, obj in zip(refs, objects, strict=True):
        by_namespace[ref.name if ref.kind == "Namespace" else ref.namespace].append(obj)
    workload_namespaces = set(namespaces)
    for obj in objects:
        workload = find_workload(obj)
        if workload is not None:
            check_workload(workload, ledger, service_accounts)
            workload_namespaces.add(workload.ref.namespace)
    for namespace in sorted(n for n in workload_namespaces if n and check_namespaces):
        check_namespace(namespace, by_namespace[namespace], ledger)
    return ledger
