"""The security controls the scan evaluates and the compliance requirements each one evidences.

Every finding names one control; every control maps to the requirement ids it evidences in each framework.
A framework's score counts only the controls that map to it (PCI DSS has nothing to say about e-mail
addresses, so a leaked e-mail moves the GDPR and HIPAA scores, not the PCI DSS one). SOX does not number
its IT general controls; they are named by the usual ITGC domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Profile(StrEnum):
    """Which rule set a control comes from; `baseline` and `restricted` are the Pod Security Standards."""

    BASELINE = "baseline"
    RESTRICTED = "restricted"
    HARDENING = "hardening"
    DATA = "data"
    ISOLATION = "isolation"


PCI = "PCI-DSS-4.0"
SOX = "SOX-ITGC"
GDPR = "GDPR"
HIPAA = "HIPAA"
ISO = "ISO-27001-2022"
FRAMEWORKS: dict[str, str] = {
    PCI: "PCI DSS v4.0",
    SOX: "SOX IT general controls",
    GDPR: "GDPR",
    HIPAA: "HIPAA Security Rule (45 CFR 164)",
    ISO: "ISO/IEC 27001:2022 Annex A",
}

REQUIREMENTS: dict[str, dict[str, str]] = {
    PCI: {
        "1.3.1": "Inbound traffic to the CDE is restricted to only that which is necessary",
        "1.3.2": "Outbound traffic from the CDE is restricted to only that which is necessary",
        "2.2.1": "Configuration standards are developed, implemented and maintained",
        "2.2.4": "Only necessary services, protocols, daemons and functions are enabled",
        "2.2.6": "System security parameters are configured to prevent misuse",
        "3.2.1": "Account data storage is kept to a minimum",
        "3.5.1": "PAN is rendered unreadable anywhere it is stored",
        "6.5.1": "Changes to production system components follow established procedures",
        "7.2.5": "Application and system accounts have the least privileges necessary",
        "8.3.2": "Authentication factors are unreadable in storage (strong cryptography)",
        "8.6.2": "Account passwords are not hard coded in scripts, configuration files or source",
        "A1.1.1": "Logical separation between the provider and customer environments",
        "A1.1.2": "Each customer can access only its own cardholder data and environment",
        "A1.1.3": "Each customer can access only the resources allocated to it",
    },
    SOX: {
        "APD": "Access to programs and data (logical access, least privilege, segregation)",
        "PC": "Program changes (authorised, traceable, reproducible releases)",
        "CO": "Computer operations (job processing, capacity, backup and recovery)",
    },
    GDPR: {
        "Art. 5(1)(c)": "Data minimisation",
        "Art. 5(1)(f)": "Integrity and confidentiality",
        "Art. 25": "Data protection by design and by default",
        "Art. 32(1)(a)": "Pseudonymisation and encryption of personal data",
        "Art. 32(1)(b)": "Ongoing confidentiality, integrity, availability and resilience",
        "Art. 32(1)(c)": "Ability to restore availability and access to personal data in time",
    },
    HIPAA: {
        "164.308(a)(7)(ii)(A)": "Data backup plan",
        "164.312(a)(1)": "Access control",
        "164.312(a)(2)(iv)": "Encryption and decryption",
        "164.312(c)(1)": "Integrity",
        "164.312(d)": "Person or entity authentication",
        "164.312(e)(1)": "Transmission security",
        "164.514(b)(2)": "De-identification: the listed direct identifiers are removed",
    },
    ISO: {
        "A.5.15": "Access control",
        "A.5.17": "Authentication information",
        "A.5.34": "Privacy and protection of PII",
        "A.8.2": "Privileged access rights",
        "A.8.3": "Information access restriction",
        "A.8.6": "Capacity management",
        "A.8.9": "Configuration management",
        "A.8.11": "Data masking",
        "A.8.12": "Data leakage prevention",
        "A.8.13": "Information backup",
        "A.8.19": "Installation of software on operational systems",
        "A.8.20": "Networks security",
        "A.8.22": "Segregation of networks",
        "A.8.24": "Use of cryptography",
        "A.8.32": "Change management",
    },
}


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    profile: Profile
    severity: Severity
    remediation: str
    frameworks: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def pod_security_standard(self) -> bool:
        """True for the Pod Security Standards controls (restricted includes baseline)."""
        return self.profile in (Profile.BASELINE, Profile.RESTRICTED)


def _fw(**by_framework: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    names = {"pci": PCI, "sox": SOX, "gdpr": GDPR, "hipaa": HIPAA, "iso": ISO}
    return {names[key]: ids for key, ids in by_framework.items()}


_HOST_HARDENING = _fw(
    pci=("2.2.6",), sox=("APD",), gdpr=("Art. 32(1)(b)",), hipaa=("164.312(a)(1)",), iso=("A.8.9",)
)
_LEAST_PRIVILEGE = _fw(
    pci=("2.2.6", "7.2.5"),
    sox=("APD",),
    gdpr=("Art. 32(1)(b)",),
    hipaa=("164.312(a)(1)",),
    iso=("A.8.2", "A.8.9"),
)
_TENANT_SEPARATION = _fw(
    pci=("2.2.6", "A1.1.2"),
    sox=("APD",),
    gdpr=("Art. 32(1)(b)",),
    hipaa=("164.312(a)(1)",),
    iso=("A.8.3", "A.8.9"),
)
_PERSONAL_DATA = _fw(
    gdpr=("Art. 5(1)(c)", "Art. 25", "Art. 32(1)(a)"), hipaa=("164.514(b)(2)",), iso=("A.5.34", "A.8.11")
)

_CONTROLS = (
    # Pod Security Standards, baseline profile.
    Control("PSS-HOST-PROCESS", "Windows HostProcess containers are not allowed", Profile.BASELINE,
            Severity.CRITICAL, "Remove securityContext.windowsOptions.hostProcess (or set it to false).",
            _LEAST_PRIVILEGE),
    Control("PSS-HOST-NAMESPACES", "Host network, PID and IPC namespaces are not shared", Profile.BASELINE,
            Severity.CRITICAL, "Remove spec.hostNetwork, spec.hostPID and spec.hostIPC (or set them to false).",
            _fw(pci=("2.2.6", "A1.1.2"), sox=("APD",), gdpr=("Art. 32(1)(b)",), hipaa=("164.312(a)(1)",),
                iso=("A.8.9", "A.8.22"))),
    Control("PSS-PRIVILEGED", "Privileged containers are not allowed", Profile.BASELINE, Severity.CRITICAL,
            "Remove securityContext.privileged (or set it to false) on every container.", _LEAST_PRIVILEGE),
    Control("PSS-CAPABILITIES-BASELINE", "Only the default capabilities may be added", Profile.BASELINE,
            Severity.HIGH, "Add no capabilities beyond the baseline set (in practice: none, or NET_BIND_SERVICE).",
            _LEAST_PRIVILEGE),
    Control("PSS-HOSTPATH", "hostPath volumes are not allowed", Profile.BASELINE, Severity.CRITICAL,
            "Replace hostPath volumes with emptyDir, a PersistentVolumeClaim, a ConfigMap or a Secret.",
            _TENANT_SEPARATION),
    Control("PSS-HOST-PORTS", "Host ports are not used", Profile.BASELINE, Severity.HIGH,
            "Remove ports[].hostPort; expose the container through a Service instead.",
            _fw(pci=("1.3.1", "2.2.4"), sox=("APD",), gdpr=("Art. 32(1)(b)",), hipaa=("164.312(e)(1)",),
                iso=("A.8.9", "A.8.20"))),
    Control("PSS-APPARMOR", "AppArmor is not disabled or overridden", Profile.BASELINE, Severity.HIGH,
            "Use appArmorProfile.type RuntimeDefault or Localhost (annotation runtime/default or localhost/*).",
            _HOST_HARDENING),
    Control("PSS-SELINUX", "SELinux options are not customised", Profile.BASELINE, Severity.HIGH,
            "Leave seLinuxOptions.user and .role unset and use a container_* type (or none).", _HOST_HARDENING),
    Control("PSS-PROC-MOUNT", "The default /proc mask is kept", Profile.BASELINE, Severity.HIGH,
            "Remove securityContext.procMount (or set it to Default).", _HOST_HARDENING),
    Control("PSS-SECCOMP-BASELINE", "Seccomp is not explicitly disabled", Profile.BASELINE, Severity.HIGH,
            "Do not use seccompProfile.type Unconfined; use RuntimeDefault.", _HOST_HARDENING),
    Control("PSS-SYSCTLS", "Only safe sysctls are set", Profile.BASELINE, Severity.MEDIUM,
            "Remove securityContext.sysctls entries outside the Pod Security Standards' safe set.",
            _HOST_HARDENING),
    # Pod Security Standards, restricted profile.
    Control("PSS-VOLUME-TYPES", "Only core non-host volume types are used", Profile.RESTRICTED, Severity.HIGH,
            "Use only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected "
            "or secret volumes.", _TENANT_SEPARATION),
    Control("PSS-PRIVILEGE-ESCALATION", "Privilege escalation is disallowed", Profile.RESTRICTED,
            Severity.HIGH, "Set securityContext.allowPrivilegeEscalation: false on every container.",
            _LEAST_PRIVILEGE),
    Control("PSS-RUN-AS-NON-ROOT", "Containers must run as non-root", Profile.RESTRICTED, Severity.HIGH,
            "Set securityContext.runAsNonRoot: true on the pod (and never false on a container).",
            _LEAST_PRIVILEGE),
    Control("PSS-RUN-AS-USER", "Containers do not run as UID 0", Profile.RESTRICTED, Severity.CRITICAL,
            "Set runAsUser to a non-zero UID (the platform uses 10001) or leave it unset with runAsNonRoot.",
            _LEAST_PRIVILEGE),
    Control("PSS-SECCOMP-RESTRICTED", "A seccomp profile is set explicitly", Profile.RESTRICTED,
            Severity.MEDIUM, "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
            _HOST_HARDENING),
    Control("PSS-CAPABILITIES-RESTRICTED", "Capabilities: drop ALL, add only NET_BIND_SERVICE",
            Profile.RESTRICTED, Severity.HIGH,
            "Set capabilities.drop: [ALL] and add nothing but NET_BIND_SERVICE.", _LEAST_PRIVILEGE),
    # Hardening beyond the Pod Security Standards.
    Control("K8S-RESOURCE-LIMITS", "CPU and memory limits are set", Profile.HARDENING, Severity.MEDIUM,
            "Set resources.limits.cpu and resources.limits.memory on every container (the tier's values).",
            _fw(pci=("A1.1.3",), sox=("CO",), gdpr=("Art. 32(1)(b)",), iso=("A.8.6",))),
    Control("K8S-READONLY-ROOTFS", "The root filesystem is read-only", Profile.HARDENING, Severity.MEDIUM,
            "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where writes are needed.",
            _fw(pci=("2.2.6",), sox=("PC",), gdpr=("Art. 32(1)(b)",), hipaa=("164.312(c)(1)",), iso=("A.8.9",))),
    Control("K8S-IMAGE-PINNED", "Images are pinned by digest or an immutable tag", Profile.HARDENING,
            Severity.HIGH, "Reference images as name@sha256:<digest> or name:<release tag>, never :latest or "
            "untagged.", _fw(pci=("6.5.1",), sox=("PC",), hipaa=("164.312(c)(1)",), iso=("A.8.19", "A.8.32"))),
    Control("K8S-SA-TOKEN-AUTOMOUNT", "The service account token is not automounted", Profile.HARDENING,
            Severity.MEDIUM, "Set automountServiceAccountToken: false on the pod spec or its ServiceAccount.",
            _fw(pci=("7.2.5",), sox=("APD",), gdpr=("Art. 32(1)(b)",), hipaa=("164.312(d)",),
                iso=("A.5.17", "A.8.2"))),
    Control("K8S-NETWORK-DEFAULT-DENY", "The namespace denies all traffic by default", Profile.HARDENING,
            Severity.HIGH, "Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] and no "
            "rules, then allow only what steps need.",
            _fw(pci=("1.3.1", "1.3.2", "A1.1.1"), sox=("APD",), gdpr=("Art. 32(1)(b)",),
                hipaa=("164.312(a)(1)", "164.312(e)(1)"), iso=("A.8.20", "A.8.22"))),
    Control("K8S-RESOURCE-QUOTA", "The namespace has a ResourceQuota", Profile.HARDENING, Severity.MEDIUM,
            "Add a ResourceQuota (the tenant's registry quota) to the tenant namespace.",
            _fw(pci=("A1.1.3",), sox=("CO",), gdpr=("Art. 32(1)(b)",), iso=("A.8.6",))),
    Control("K8S-NAMESPACE-PSA", "The namespace enforces the restricted Pod Security Standard",
            Profile.HARDENING, Severity.HIGH,
            "Label the namespace pod-security.kubernetes.io/enforce: restricted.",
            _fw(pci=("2.2.1",), sox=("APD",), gdpr=("Art. 25",), hipaa=("164.312(a)(1)",), iso=("A.8.9",))),
    # Tenant data.
    Control("DATA-PII-EMAIL", "No e-mail addresses in clear", Profile.DATA, Severity.CRITICAL,
            "Drop or pseudonymise (HMAC) the column or field before writing it.", _PERSONAL_DATA),
    Control("DATA-PII-IP", "No IP addresses in clear", Profile.DATA, Severity.CRITICAL,
            "Drop ip_addr* fields, or truncate/pseudonymise addresses before writing them.", _PERSONAL_DATA),
    Control("DATA-PII-PHONE", "No phone numbers in clear", Profile.DATA, Severity.CRITICAL,
            "Drop or pseudonymise phone numbers before writing them.", _PERSONAL_DATA),
    Control("DATA-PII-IDENTIFIER", "No raw usernames or device identifiers", Profile.DATA, Severity.CRITICAL,
            "Replace username (and user agent) values with the HMAC pseudonym, as listening_events does.",
            _PERSONAL_DATA),
    Control("DATA-PII-CARD", "No payment card numbers (PAN) in clear", Profile.DATA, Severity.CRITICAL,
            "Never store a PAN; if one must be kept, tokenise it or keep only the last four digits.",
            _fw(pci=("3.2.1", "3.5.1"), gdpr=("Art. 32(1)(a)",), hipaa=("164.514(b)(2)",),
                iso=("A.8.11", "A.8.24"))),
    Control("DATA-SECRET", "No credentials, keys or tokens in tenant files", Profile.DATA, Severity.CRITICAL,
            "Remove the secret from the file, rotate it, and load secrets from the Kubernetes Secret instead.",
            _fw(pci=("8.3.2", "8.6.2"), sox=("APD",), gdpr=("Art. 32(1)(b)",),
                hipaa=("164.312(a)(1)", "164.312(d)"), iso=("A.5.17", "A.8.12"))),
    # Tenant isolation and backups.
    Control("TEN-CROSS-TENANT-OBJECT", "No object under the tenant's prefix belongs to another tenant",
            Profile.ISOLATION, Severity.CRITICAL,
            "Move the object to its owner's prefix (or delete it) and find the writer that crossed tenants.",
            _fw(pci=("A1.1.2",), sox=("APD",), gdpr=("Art. 5(1)(f)", "Art. 32(1)(b)"), hipaa=("164.312(a)(1)",),
                iso=("A.5.15", "A.8.3"))),
    Control("TEN-BACKUP-FRESH", "A backup younger than the tenant's schedule allows exists", Profile.ISOLATION,
            Severity.HIGH, "Run tenant_backup_job for the tenant and check why the scheduled backup did not run.",
            _fw(sox=("CO",), gdpr=("Art. 32(1)(c)",), hipaa=("164.308(a)(7)(ii)(A)",), iso=("A.8.13",))),
    Control("TEN-BACKUP-ENCRYPTED", "Backups are encrypted at rest", Profile.ISOLATION, Severity.HIGH,
            "Enable default SSE (SSE-S3 or SSE-KMS) on the backup bucket, or write with ServerSideEncryption.",
            _fw(pci=("3.5.1",), gdpr=("Art. 32(1)(a)",), hipaa=("164.312(a)(2)(iv)",), iso=("A.8.13", "A.8.24"))),
)  # fmt: skip

CONTROLS: dict[str, Control] = {control.id: control for control in _CONTROLS}


def control(control_id: str) -> Control:
    """The control with this id; KeyError naming the known ids otherwise."""
    try:
        return CONTROLS[control_id]
    except KeyError:
        raise KeyError(f"unknown control {control_id!r}; known: {', '.join(CONTROLS)}") from None


def _check_catalogue() -> None:
    """Every requirement a control cites is in REQUIREMENTS (a typo would silently skew a score)."""
    for ctl in _CONTROLS:
        for framework, ids in ctl.frameworks.items():
            unknown = set(ids) - set(REQUIREMENTS[framework])
            if unknown:
                raise ValueError(f"control {ctl.id} cites unknown {framework} requirements {sorted(unknown)}")


_check_catalogue()
