"""One security scan of a tenant: gather what to check, check it, and build (and store) the report.

What is checked for a tenant:
- every step Job the platform would launch for it: each tenant job (all job types) rendered through
  `spotify_jobs.k8s.manifests` with the run config and tags its launch would get (a job type the tenant
  cannot run, e.g. GPU training without GPU quota, is refused at submission and listed in the notes);
- the objects of its namespace, rendered from the registry for a cluster profile
  (`spotify_jobs.k8s.tenant_objects`). On the embedded local default (development, local storage) there is
  no cluster, so the namespace controls do not apply; anywhere else a profile that cannot be built leaves
  the namespace without objects, and what is missing is reported;
- every file under its data prefix, and its backups (see `data_scan` and `isolation`).

The asset and the CLI both call `run_scans`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from spotify_jobs.resources import PlatformResource
from spotify_jobs.security.controls import Severity
from spotify_jobs.security.data_scan import DEFAULT_LIMITS, ScanLimits, scan_tenant_files
from spotify_jobs.security.detectors import secret_plugin_names
from spotify_jobs.security.findings import Finding, ObjectRef, Status
from spotify_jobs.security.isolation import BACKUP_GRACE, BACKUP_INTERVAL, check_backups
from spotify_jobs.security.posture import scan_objects
from spotify_jobs.security.report import ScanReport, build_report, previous_report, store_report
from spotify_jobs.settings import Settings
from spotify_jobs.storage.object_store import ObjectStore, open_store
from spotify_jobs.tenancy.registry import TenantRegistry

NAMESPACE_CONTROLS = ("K8S-NETWORK-DEFAULT-DENY", "K8S-RESOURCE-QUOTA", "K8S-NAMESPACE-PSA")
CHECKOV_TIMEOUT_S = 300
HOUR = timedelta(hours=1)


@dataclass
class ClusterObjects:
    """The Kubernetes objects of one tenant: its step Jobs and (if a cluster is known) its namespace."""

    objects: list[dict] = field(default_factory=list)
    namespace_checks: bool = True
    notes: list[str] = field(default_factory=list)


def _cluster_settings(settings: Settings, profile_path: Path | None):
    """Settings for rendering (k8s executor; environment and image of the cluster profile) and the profile,
    or None and the reason no profile could be built."""
    from spotify_jobs.k8s.tenant_objects import ClusterProfile, ProfileError

    try:
        profile = ClusterProfile.load(settings, profile_path)
    except ProfileError as exc:
        return settings.model_copy(update={"executor": "k8s"}), None, str(exc)
    update = {
        "executor": "k8s",
        "environment": profile.environment,
        "image": profile.image,
        "namespace": profile.platform_namespace,
    }
    return settings.model_copy(update=update), profile, ""


def render_cluster_objects(
    settings: Settings,
    registry: TenantRegistry,
    tenant_ids: Iterable[str],
    date: str,
    profile_path: Path | None = None,
) -> dict[str, ClusterObjects]:
    """Per tenant: the step Job of every step of every tenant job, and its namespace objects."""
    from spotify_jobs.definitions import TENANT_JOBS  # loads the code location only when a scan needs it
    from spotify_jobs.jobs import TenantJobFactory
    from spotify_jobs.k8s.config import PlacementError
    from spotify_jobs.k8s.manifests import ManifestRenderer
    from spotify_jobs.k8s.tenant_objects import tenant_objects

    k8s_settings, profile, problem = _cluster_settings(settings, profile_path)
    factory = TenantJobFactory(k8s_settings, registry)
    result: dict[str, ClusterObjects] = {}
    with ManifestRenderer(k8s_settings) as renderer:
        for tenant_id in tenant_ids:
            cluster = result[tenant_id] = ClusterObjects()
            for spec in TENANT_JOBS.values():
                try:
                    run_config, tags = factory.run_parts(spec, tenant_id)
                except PlacementError as exc:
                    cluster.notes.append(f"{spec.name} is never launched for this tenant: {exc}")
                    continue
                tags.update(spec.partition_tags(spec.partition_key(tenant_id, date)))
                cluster.objects += [m.body for m in renderer.render(spec.name, run_config, tags)]
            if profile is not None:
                cluster.objects += tenant_objects(registry.get(tenant_id), profile)
            elif k8s_settings.environment == "development" and not k8s_settings.data_root_is_s3:
                cluster.namespace_checks = False
                cluster.notes.append(f"namespace objects not checked: no cluster profile ({problem})")
            else:
                cluster.notes.append(f"namespace objects could not be rendered: {problem}")
    return result


def _checkov_finding(check: dict) -> Finding:
    """One failed checkov check as a finding; checkov run offline gives no severity, so it reads `low`."""
    kind, _, rest = str(check.get("resource", "")).partition(".")
    namespace, _, name = rest.partition(".")  # a namespace is a DNS label: no dots
    keys = (check.get("check_result") or {}).get("evaluated_keys") or [""]
    severity = str(check.get("severity") or Severity.LOW.value).lower()
    return Finding(
        control=str(check.get("check_id")),
        status=Status.FAIL,
        object=ObjectRef(kind, namespace, name),
        field=str(keys[0]).replace("/[", "[").replace("/", "."),
        message=str(check.get("check_name")),
        severity=Severity(severity) if severity in {s.value for s in Severity} else Severity.LOW,
        title=str(check.get("check_name")),
        remediation=str(check.get("guideline") or f"see checkov policy {check.get('check_id')}"),
        frameworks={},
        source="checkov",
    )


def checkov_findings(objects: list[dict], checkov: str) -> tuple[list[Finding], str]:
    """Failed checks of checkov (run from its own environment, offline) on the objects, and a note."""
    with tempfile.TemporaryDirectory(prefix="security-checkov-") as workdir:
        for index, obj in enumerate(objects):
            (Path(workdir) / f"{index:04d}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
        command = [
            checkov,
            "-d",
            workdir,
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
            "--quiet",
        ]
        try:
            run = subprocess.run(
                command, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], f"checkov at {checkov} did not run: {exc}"
    try:
        output = json.loads(run.stdout) if run.stdout.strip() else {}
    except ValueError:
        return [], f"checkov exited {run.returncode} without JSON output: {run.stderr.strip()[-300:]}"
    reports = output if isinstance(output, list) else [output]
    failed = [c for r in reports for c in (r.get("results") or {}).get("failed_checks", [])]
    return [_checkov_finding(c) for c in failed], f"checkov ({checkov}): {len(failed)} failed checks added"


def scan_tenant(
    *,
    platform: PlatformResource,
    tenant_id: str,
    date: str,
    cluster: ClusterObjects,
    backup_store: ObjectStore,
    now: datetime,
    limits: ScanLimits = DEFAULT_LIMITS,
    checkov: str | None = None,
) -> ScanReport:
    """Check one tenant's cluster objects, files and backups and build its report (not stored)."""
    tenant = platform.tenant(tenant_id)
    ledger = scan_objects(cluster.objects, check_namespaces=cluster.namespace_checks)
    if not cluster.namespace_checks:
        for control_id in NAMESPACE_CONTROLS:
            ledger.skip(control_id, "no cluster on the embedded local default")
    ledger.notes.extend(cluster.notes)
    if checkov:
        found, note = checkov_findings(cluster.objects, checkov)
        for finding in found:
            ledger.add_external(finding)
        ledger.notes.append(note)
    data = scan_tenant_files(platform.tenant_storage(tenant_id), platform.registry.ids, limits)
    ledger.merge(data.ledger)
    ledger.merge(check_backups(backup_store, tenant, now, platform.environment))
    return build_report(
        ledger,
        tenant=tenant_id,
        date=date,
        scanned_at=now.isoformat(timespec="seconds"),
        environment=platform.environment,
        coverage={"kubernetes_objects": len(cluster.objects), **data.coverage()},
        method=_method(limits, checkov),
        previous=previous_report(platform.tenant_storage(tenant_id), date),
    )


def _method(limits: ScanLimits, checkov: str | None) -> dict:
    return {
        "pod_security_standards": "baseline and restricted, Kubernetes v1.30 definitions",
        "secret_detectors": "detect-secrets " + ", ".join(secret_plugin_names()),
        "personal_data_detectors": "e-mail, IPv4/IPv6 (ipaddress), card numbers (IIN + length + Luhn), "
        "phone numbers (phonenumbers), username / user agent fields",
        "sampling": f"all rows of files up to {limits.max_rows_per_file} rows; evenly spread samples beyond",
        "backup_freshness": f"newest backup younger than {(BACKUP_INTERVAL + BACKUP_GRACE) / HOUR:g} h "
        f"(daily schedule + {BACKUP_GRACE / HOUR:g} h grace)",
        "checkov": checkov or "not available (not on PATH); built-in checks only",
    }


def run_scans(
    platform: PlatformResource,
    settings: Settings,
    tenant_ids: Iterable[str],
    date: str,
    *,
    now: datetime | None = None,
    profile_path: Path | None = None,
    checkov: str | None = None,
    limits: ScanLimits = DEFAULT_LIMITS,
    store: bool = True,
) -> list[ScanReport]:
    """Scan each tenant for `date` and (with `store`) keep each report under its `reports/security/<date>/`."""
    tenant_ids = [platform.tenant(t).id for t in tenant_ids]
    now = now or datetime.now(UTC)
    # The resource says where this deployment's data lives; the settings add image and namespace.
    settings = settings.model_copy(
        update={
            "environment": platform.environment,
            "data_root": platform.data_root,
            "backup_root": platform.backup_root,
            "s3_endpoint_url": platform.s3_endpoint_url,
        }
    )
    checkov = checkov if checkov is not None else shutil.which("checkov")
    clusters = render_cluster_objects(settings, platform.registry, tenant_ids, date, profile_path)
    backup_store = open_store(platform.backup_root, platform.s3_endpoint_url)
    reports = []
    for tenant_id in tenant_ids:
        report = scan_tenant(
            platform=platform,
            tenant_id=tenant_id,
            date=date,
            cluster=clusters[tenant_id],
            backup_store=backup_store,
            now=now,
            limits=limits,
            checkov=checkov or None,
        )
        if store:
            store_report(platform.tenant_storage(tenant_id), report)
        reports.append(report)
    return reports
