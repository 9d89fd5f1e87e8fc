"""Is a Kubernetes cluster reachable from here, and does the platform's namespace exist? (no Dagster)"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

DEFAULT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class ClusterCheck:
    reachable: bool
    context: str | None
    server: str | None
    version: str | None
    namespace: str
    namespace_exists: bool | None
    problem: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_cluster(
    namespace: str,
    *,
    context: str | None = None,
    config_file: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ClusterCheck:
    """Load the kube context (the current one, or `context`), ask the API server its version, and look
    up `namespace`. In a pod without a kubeconfig, the in-cluster service account is used."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    def unreachable(problem: str, name: str | None = None, server: str | None = None) -> ClusterCheck:
        return ClusterCheck(False, name, server, None, namespace, None, problem)

    # The client reads KUBECONFIG once, when it is imported; read it now so the current value counts.
    config_file = config_file or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        if context is None and _in_cluster_without_kubeconfig(config_file):
            config.load_incluster_config()
            api_client, name = client.ApiClient(), "in-cluster"
        else:
            _contexts, active = config.list_kube_config_contexts(config_file=config_file)
            name = context or (active or {}).get("name")
            api_client = config.new_client_from_config(config_file=config_file, context=context)
    except (config.ConfigException, OSError) as exc:
        return unreachable(
            f"no Kubernetes context: {exc}. Point KUBECONFIG at a kubeconfig (or ~/.kube/config) and select "
            "a context with `kubectl config use-context NAME`, or pass --context"
        )
    server = api_client.configuration.host
    try:
        version = client.VersionApi(api_client).get_code(_request_timeout=timeout).git_version
    except Exception as exc:  # connection refused, TLS, timeouts, HTTP errors: all mean "not reachable"
        return unreachable(f"context {name!r}: API server {server} is not reachable: {exc}", name, server)
    try:
        client.CoreV1Api(api_client).read_namespace(namespace, _request_timeout=timeout)
        exists, problem = True, None
    except ApiException as exc:
        exists = False if exc.status == 404 else None
        problem = (
            None if exc.status == 404 else f"cannot read namespace {namespace!r}: {exc.status} {exc.reason}"
        )
    return ClusterCheck(True, name, server, version, namespace, exists, problem)


def _in_cluster_without_kubeconfig(config_file: str) -> bool:
    present = any(os.path.exists(path) for path in config_file.split(os.pathsep))
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not present
