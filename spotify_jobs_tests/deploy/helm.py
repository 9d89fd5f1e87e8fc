"""The deploy tests' view of deploy/helm: values files merged as Helm merges them, the chart's documented
keys, and what the chart's templates make of our values (run launcher config, long-running pod specs)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import yaml

from spotify_jobs.k8s.tenant_objects import HELM_RELEASE
from spotify_jobs_tests.deploy.tree import DEPLOY

HELM = DEPLOY / "helm"
CHART_KEYS = HELM / "chart-keys-1.13.27.txt"
VALUES_FILES = ("values.yaml", "values-prod.yaml")
OPAQUE_KINDS = ("map", "unused")


def helm_merge(base: Mapping, override: Mapping) -> dict:
    """`helm -f base -f override`: maps merge key by key, anything else (lists too) is replaced, null deletes."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@cache
def load_values(name: str) -> dict:
    return yaml.safe_load((HELM / name).read_text())


def merged_values(name: str) -> dict:
    """The values Helm sees when `name` is installed (values-prod.yaml is layered on values.yaml)."""
    values = load_values("values.yaml")
    return values if name == "values.yaml" else helm_merge(values, load_values(name))


def tag_concurrency_limits(values: Mapping) -> list[dict]:
    coordinator = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    return coordinator["tagConcurrencyLimits"]


def key_paths(values: Mapping, prefix: str = "") -> Iterator[str]:
    """Every key path in `values` (`a.b`, list items as `a[].b`)."""
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        yield path
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                yield from key_paths(item, f"{path}[]" if isinstance(value, list) else path)


class ChartKeys:
    """The chart's documented key paths (deploy/helm/chart-keys-*.txt) and what may sit below each."""

    def __init__(self, path: Path = CHART_KEYS):
        self.kinds: dict[str, str] = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, kind = (part.strip() for part in line.partition("="))
            self.kinds[key] = kind or "key"
        for key in list(self.kinds):  # the sections that hold documented keys are documented too
            for ancestor in self._ancestors(key):
                self.kinds.setdefault(ancestor, "section")

    @staticmethod
    def _ancestors(path: str) -> Iterator[str]:
        while True:
            if path.endswith("[]"):
                path = path[:-2]
            elif "." in path:
                path = path.rsplit(".", 1)[0]
            else:
                return
            yield path

    def problem(self, path: str) -> str | None:
        """Why `path` is not a documented key of the chart, or None when it is."""
        for candidate in (path, f"{path}[]"):
            if candidate in self.kinds:
                return (
                    f"{path}: the chart's `{candidate}` section is not used here"
                    if (self.kinds[candidate] == "unused")
                    else None
                )
        for ancestor in self._ancestors(path):
            kind = self.kinds.get(ancestor)
            if kind == "unused":
                return f"{path}: the chart's `{ancestor}` section is not used here"
            if kind is not None and (kind == "map" or kind.startswith("k8s:")):
                return None
        return f"{path}: not a documented key of the dagster chart"

    def problems(self, values: Mapping) -> list[str]:
        """One problem per offending key (keys below an offending key are not reported again)."""
        found: dict[str, str] = {}
        for path in key_paths(values):
            if any(ancestor in found for ancestor in self._ancestors(path)):
                continue
            problem = self.problem(path)
            if problem:
                found[path] = problem
        return list(found.values())


_CAMEL_TOP = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL_TOP.sub("_", key).lower()


def chart_run_launcher_config(values: Mapping, release_namespace: str) -> dict:
    """The `run_launcher.config` the chart writes into dagster.yaml from these values (its
    templates/helpers/instance/_run-launcher.tpl, K8sRunLauncher branch)."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or release_namespace,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"]
        or values["serviceAccount"]["name"]
        or HELM_RELEASE,
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{HELM_RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    optional = {
        "env_config_maps": [c["name"] for c in k8s.get("envConfigMaps") or [] if "name" in c],
        "env_secrets": [s["name"] for s in k8s.get("envSecrets") or [] if "name" in s],
        "env_vars": k8s.get("envVars"),
        "volume_mounts": k8s.get("volumeMounts"),
        "volumes": k8s.get("volumes"),
        "labels": k8s.get("labels"),
        "resources": k8s.get("resources"),
        "security_context": k8s.get("securityContext"),
        "run_k8s_config": {_snake(key): value for key, value in (k8s.get("runK8sConfig") or {}).items()},
    }
    config.update({key: value for key, value in optional.items() if value})
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    return config


def _image(section: Mapping) -> str:
    return f"{section['image']['repository']}:{section['image']['tag']}"


def _probe(probe: Mapping | None) -> dict | None:
    """A probe as the pod gets it: the chart's own `enabled` switch removed, its default handler filled in."""
    if not probe or probe.get("enabled") is False:
        return None
    probe = {k: v for k, v in probe.items() if k != "enabled"}
    if not {"exec", "httpGet", "tcpSocket", "grpc"} & set(probe):
        probe["exec"] = {"command": ["dagster", "api", "grpc-health-check", "-p", "3030"]}
    return probe


def chart_pod(section: Mapping, name: str) -> dict:
    """The Pod the chart's Deployment template makes from a service's values (the parts we set)."""
    container: dict = {"name": name, "image": _image(section)}
    for key in ("securityContext", "resources", "volumeMounts"):
        if section.get(key):
            container[key] = section[key]
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = _probe(section.get(key))
        if probe:
            container[key] = probe
    env_from = [{"configMapRef": {"name": c["name"]}} for c in section.get("envConfigMaps") or []]
    env_from += [{"secretRef": {"name": s["name"]}} for s in section.get("envSecrets") or []]
    if env_from:
        container["envFrom"] = env_from
    spec: dict = {"containers": [container]}
    for source, target in (
        ("podSecurityContext", "securityContext"),
        ("volumes", "volumes"),
        ("affinity", "affinity"),
        ("tolerations", "tolerations"),
        ("nodeSelector", "nodeSelector"),
    ):
        if section.get(source):
            spec[target] = section[source]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def long_running_pods(values: Mapping) -> dict[str, dict]:
    """The chart's long-running pods we shape: webserver, daemon, each code server."""
    pods = {
        "dagster-webserver": chart_pod(values["dagsterWebserver"], "dagster-webserver"),
        "dagster-daemon": chart_pod(values["dagsterDaemon"], "dagster-daemon"),
    }
    for deployment in values["dagster-user-deployments"]["deployments"]:
        pods[f"user-code-{deployment['name']}"] = chart_pod(deployment, deployment["name"])
    return pods
