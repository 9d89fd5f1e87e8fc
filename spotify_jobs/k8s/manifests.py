"""Render the exact Kubernetes Job body dagster-k8s would submit for each step of a run (DRY_RUN).

Nothing here builds a manifest by hand: a `k8s_job_executor` is created by dagster-k8s's own creation
function from the run's executor config, against an instance whose run launcher is a `K8sRunLauncher`
(as in production), and each step goes through `K8sStepHandler.launch_step`. The only substitution is the
Kubernetes API client, which records `create_namespaced_job` calls instead of sending them — the same
technique dagster-k8s's own unit tests use.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import kubernetes.client
import yaml
from dagster._config import process_config
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating import StepHandlerContext
from dagster._core.log_manager import DagsterLogManager
from dagster._core.origin import JobPythonOrigin
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s import k8s_job_executor
from dagster_k8s.client import DagsterKubernetesClient

from spotify_jobs.k8s.naming import RUN_LAUNCHER_CONFIG
from spotify_jobs.settings import Settings

DEFINITIONS_MODULE = "spotify_jobs.definitions"
_OFFLINE_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "offline", "user": {"token": "unused"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


@dataclass(frozen=True)
class StepManifest:
    step_key: str
    namespace: str
    body: dict

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.body, sort_keys=False)


class _RecordingBatchApi:
    """Stands in for BatchV1Api: keeps the Job bodies instead of sending them to a cluster."""

    def __init__(self):
        self.created: list[tuple[str, kubernetes.client.V1Job]] = []

    def create_namespaced_job(self, namespace: str, body: kubernetes.client.V1Job, **_kwargs):
        self.created.append((namespace, body))
        return body


def write_offline_kubeconfig(workdir: Path) -> str:
    """A kubeconfig that parses but points nowhere: dagster-k8s loads one, nothing connects."""
    path = workdir / "kubeconfig"
    path.write_text(yaml.safe_dump(_OFFLINE_KUBECONFIG))
    return str(path)


def _instance(workdir: Path, kubeconfig: str) -> dg.DagsterInstance:
    """An ephemeral-storage instance whose run launcher is a K8sRunLauncher, as in production."""
    launcher = {
        "module": "dagster_k8s",
        "class": "K8sRunLauncher",
        "config": {**RUN_LAUNCHER_CONFIG, "load_incluster_config": False, "kubeconfig_file": kubeconfig},
    }
    (workdir / "dagster.yaml").write_text(
        yaml.safe_dump({"run_launcher": launcher, "telemetry": {"enabled": False}})
    )
    return dg.DagsterInstance.from_config(str(workdir))


def _launch_all_steps(
    job: InMemoryJob,
    origin: JobPythonOrigin,
    executor,
    instance: dg.DagsterInstance,
    run_config: Mapping,
    tags: Mapping[str, str],
) -> list[StepManifest]:
    plan = create_execution_plan(job, run_config=run_config, tags=tags)
    run = instance.create_run_for_job(
        job_def=job.get_definition(),
        execution_plan=plan,
        run_config=run_config,
        tags=tags,
        job_code_origin=origin,
    )
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(
            job=job,
            dagster_run=run,
            instance=instance,
            execution_plan=plan,
            raise_on_error=True,
            retry_mode=RetryMode.DISABLED,
        ),
        # Events go to the throwaway instance only: rendering is not a run, so nothing is printed.
        log_manager=DagsterLogManager.create(loggers=[], instance=instance, dagster_run=run),
        executor=executor,
        output_capture=None,
    )
    handler = executor._step_handler  # the K8sStepHandler dagster-k8s built from this executor config
    recorder = _RecordingBatchApi()
    handler._api_client = DagsterKubernetesClient.production_client(batch_api_override=recorder)
    serializer = kubernetes.client.ApiClient()
    manifests = []
    for step in plan.get_all_steps_in_topo_order():
        args = ExecuteStepArgs(
            job_origin=origin,
            run_id=run.run_id,
            step_keys_to_execute=[step.key],
            instance_ref=None,
            print_serialized_events=False,
        )
        context = StepHandlerContext(
            instance=instance,
            plan_context=plan_context,
            steps=plan.get_all_steps_in_topo_order(),
            execute_step_args=args,
            dagster_run=run,
        )
        list(handler.launch_step(context))
        namespace, job = recorder.created[-1]
        body = serializer.sanitize_for_serialization(job)
        body["metadata"]["namespace"] = namespace
        manifests.append(StepManifest(step_key=step.key, namespace=namespace, body=body))
    return manifests


class ManifestRenderer:
    """Renders step manifests for many runs against one offline instance (a context manager).

    The jobs come from the code location built with the k8s executor (as production builds it), and the
    step arguments name `spotify_jobs.definitions` as their origin, as the production code server does.
    """

    def __init__(self, settings: Settings):
        self.settings = settings.model_copy(update={"executor": "k8s"})
        self._workdir: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> ManifestRenderer:
        from spotify_jobs.definitions import build_definitions  # the code location imports this module

        self._workdir = tempfile.TemporaryDirectory(prefix="spotify-jobs-render-")
        workdir = Path(self._workdir.name)
        self._kubeconfig = write_offline_kubeconfig(workdir)
        self._instance = _instance(workdir, self._kubeconfig)
        self._definitions = build_definitions(self.settings)
        self._repository = ReconstructableRepository.for_module(
            DEFINITIONS_MODULE, "defs", container_image=self.settings.image
        )
        return self

    def __exit__(self, *exc_info) -> None:
        self._instance.dispose()
        self._workdir.cleanup()

    def render(self, job_name: str, run_config: Mapping, tags: Mapping[str, str]) -> list[StepManifest]:
        """The Job body of every step of `job_name` for a run with this run config (its `execution.config`
        is the k8s executor config) and these tags, in execution order, with `metadata.namespace` set."""
        processed = process_config(
            k8s_job_executor.config_schema.config_type,
            {
                **run_config["execution"]["config"],
                "load_incluster_config": False,
                "kubeconfig_file": self._kubeconfig,
            },
        )
        if not processed.success:
            raise ValueError(f"invalid k8s executor config: {[e.message for e in processed.errors]}")
        job = InMemoryJob(self._definitions.resolve_job_def(job_name))
        executor = k8s_job_executor.executor_creation_fn(
            InitExecutorContext(
                job=job,
                executor_def=k8s_job_executor,
                executor_config=processed.value,
                instance=self._instance,
            )
        )
        origin = self._repository.get_reconstructable_job(job_name).get_python_origin()
        return _launch_all_steps(job, origin, executor, self._instance, run_config, tags)


def render_step_manifests(
    job_name: str, run_config: Mapping, tags: Mapping[str, str], settings: Settings
) -> list[StepManifest]:
    """The step manifests of one run (see `ManifestRenderer.render`)."""
    with ManifestRenderer(settings) as renderer:
        return renderer.render(job_name, run_config, tags)


def write_manifests(manifests: list[StepManifest], out_dir: Path) -> list[Path]:
    """One YAML file per step, named after the step key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for manifest in manifests:
        path = out_dir / f"{manifest.step_key}.yaml"
        path.write_text(manifest.to_yaml())
        paths.append(path)
    return paths
