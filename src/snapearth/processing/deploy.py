"""Scale-out manifests, generated offline: a DaskCluster for the Dask Kubernetes operator (dask-kubernetes'
``make_cluster_spec``) and an Argo Workflows CronWorkflow built with Hera for scheduled production
(harvest -> enrich -> publish, publish = run the stored openEO production graphs as batch jobs whose results
become STAC collections).

The API server reaches the cluster with ``SNAPEARTH_DASK_SCHEDULER=tcp://<name>-scheduler.<namespace>:8786``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snapearth.errors import InvalidInputError


@dataclass
class DeployConfig:
    name: str = "snapearth"
    namespace: str = "snapearth"
    image: str = "ghcr.io/snapearth/snapearth:latest"
    workers: int = 4
    worker_cores: float = 2.0
    worker_memory_gb: float = 8.0
    schedule: str = "0 3 * * *"
    catalog_secret: str = "snapearth-catalog"  # a Secret with key SNAPEARTH_CATALOG (postgresql://...)
    harvest_providers: list[str] = field(default_factory=lambda: ["cop_dataspace"])
    harvest_collections: list[str] = field(default_factory=lambda: ["sentinel-2-l2a", "sentinel-1-grd"])
    harvest_bbox: str | None = None
    production_graphs: list[str] = field(default_factory=lambda: ["/etc/snapearth/graphs/ndvi-monthly.json"])
    production_user: str = "production"

    def validate(self) -> None:
        if not self.name.replace("-", "").isalnum() or self.name.lower() != self.name:
            raise InvalidInputError(f"name: {self.name!r} must be lower-case letters, digits and '-'", field="name")
        if self.workers < 1:
            raise InvalidInputError(f"workers: {self.workers} must be >= 1", field="workers")
        if self.worker_cores <= 0 or self.worker_memory_gb <= 0:
            raise InvalidInputError("worker_cores/worker_memory_gb: must be > 0", field="worker_cores")
        if len(self.schedule.split()) != 5:
            raise InvalidInputError(f"schedule: {self.schedule!r} is not a 5-field cron expression", field="schedule")

    @property
    def scheduler_address(self) -> str:
        return f"tcp://{self.name}-scheduler.{self.namespace}.svc.cluster.local:8786"


def _quantity(memory_gb: float) -> str:
    return f"{round(memory_gb * 1024)}Mi"


def dask_cluster(config: DeployConfig) -> dict[str, Any]:
    """The DaskCluster resource (kubernetes.dask.org/v1); requests == limits, as the price table bills them."""
    from dask_kubernetes.operator import make_cluster_spec

    resources = {
        "requests": {"cpu": str(config.worker_cores), "memory": _quantity(config.worker_memory_gb)},
        "limits": {"cpu": str(config.worker_cores), "memory": _quantity(config.worker_memory_gb)},
    }
    spec = make_cluster_spec(
        name=config.name,
        image=config.image,
        n_workers=config.workers,
        resources=resources,
        env={"DASK_DISTRIBUTED__WORKER__DAEMON": "False"},
    )
    spec = copy.deepcopy(spec)  # make_cluster_spec shares one resources dict between scheduler and workers
    spec["metadata"]["namespace"] = config.namespace
    spec["metadata"].setdefault("labels", {})["app.kubernetes.io/part-of"] = "snapearth"
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    worker["args"] += ["--nthreads", str(max(1, int(config.worker_cores)))]
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    scheduler["resources"] = {"requests": {"cpu": "1", "memory": "2048Mi"}, "limits": {"cpu": "1", "memory": "2048Mi"}}
    return spec


def production_workflow(config: DeployConfig) -> Any:
    """The CronWorkflow (hera object): harvest -> enrich -> publish, sharing the catalog secret."""
    from hera.workflows import DAG, Container, CronWorkflow, Env, Parameter, SecretEnv

    catalog_env = SecretEnv(name="SNAPEARTH_CATALOG", secret_name=config.catalog_secret, secret_key="SNAPEARTH_CATALOG")
    dask_env = Env(name="SNAPEARTH_DASK_SCHEDULER", value=config.scheduler_address)
    harvest_args = ["harvest"]  # incremental: the harvest state in the catalog says where the last run stopped
    for provider in config.harvest_providers:
        harvest_args += ["--provider", provider]
    if config.harvest_bbox:
        harvest_args += ["--bbox", config.harvest_bbox]
    publish_args = ["openeo", "run", *config.production_graphs, "--user", config.production_user]

    with CronWorkflow(
        name=f"{config.name}-production",
        namespace=config.namespace,
        schedule=config.schedule,
        concurrency_policy="Forbid",
        entrypoint="production",
        labels={"app.kubernetes.io/part-of": "snapearth"},
    ) as workflow:
        harvest = Container(
            name="harvest",
            image=config.image,
            command=["snapearth"],
            args=[*harvest_args, "--collection", "{{inputs.parameters.collection}}"],
            inputs=[Parameter(name="collection")],
            env=[catalog_env],
        )
        enrich = Container(
            name="enrich", image=config.image, command=["snapearth"], args=["enrich"], env=[catalog_env, dask_env]
        )
        publish = Container(
            name="publish", image=config.image, command=["snapearth"], args=publish_args, env=[catalog_env, dask_env]
        )
        with DAG(name="production"):
            harvests: list[Any] = [
                harvest(name=f"harvest-{c}", arguments={"collection": c}) for c in config.harvest_collections
            ]
            enriched: Any = enrich(name="enrich")
            published: Any = publish(name="publish")
            for step in harvests:
                step >> enriched
            enriched >> published
    return workflow


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False)


def write_manifests(config: DeployConfig, out_dir: Path) -> list[Path]:
    """Write ``dask-cluster.yaml`` and ``argo-production.yaml`` under ``out_dir``; return the paths."""
    config.validate()
    out_dir.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `snapearth deploy generate`; edit the options, not this file.\n"
    cluster = out_dir / "dask-cluster.yaml"
    cluster.write_text(header + to_yaml(dask_cluster(config)))
    workflow = out_dir / "argo-production.yaml"
    workflow.write_text(header + to_yaml(production_workflow(config).to_dict()))
    return [cluster, workflow]


def check_manifest(path: Path) -> list[str]:
    """Offline checks of a generated manifest: parses, kind/apiVersion known, required fields present."""
    problems: list[str] = []
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"{path.name}: not YAML: {exc}"]
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind == "DaskCluster":
        if document.get("apiVersion") != "kubernetes.dask.org/v1":
            problems.append(f"{path.name}: apiVersion {document.get('apiVersion')!r}")
        spec = document.get("spec", {})
        for part in ("scheduler", "worker"):
            containers = spec.get(part, {}).get("spec", {}).get("containers", [])
            if not containers or not containers[0].get("image"):
                problems.append(f"{path.name}: spec.{part} has no container image")
        if not isinstance(spec.get("worker", {}).get("replicas"), int):
            problems.append(f"{path.name}: spec.worker.replicas missing")
        if "service" not in spec.get("scheduler", {}):
            problems.append(f"{path.name}: spec.scheduler.service missing")
    elif kind == "CronWorkflow":
        if document.get("apiVersion") != "argoproj.io/v1alpha1":
            problems.append(f"{path.name}: apiVersion {document.get('apiVersion')!r}")
        spec = document.get("spec", {})
        if not spec.get("schedule") and not spec.get("schedules"):
            problems.append(f"{path.name}: spec.schedule missing")
        workflow_spec = spec.get("workflowSpec", {})
        templates = {t["name"]: t for t in workflow_spec.get("templates", [])}
        entry = templates.get(workflow_spec.get("entrypoint", ""))
        if entry is None or "dag" not in entry:
            problems.append(f"{path.name}: the entrypoint is not a DAG template")
        else:
            for task in entry["dag"]["tasks"]:
                if task["template"] not in templates:
                    problems.append(f"{path.name}: task {task['name']} uses unknown template {task['template']}")
                depends = str(task.get("depends", "")).replace("&&", " ").replace("||", " ").replace("!", " ")
                for dependency in [*task.get("dependencies", []), *depends.replace("(", " ").replace(")", " ").split()]:
                    if dependency not in {t["name"] for t in entry["dag"]["tasks"]}:
                        problems.append(f"{path.name}: task {task['name']} depends on unknown {dependency}")
    else:
        problems.append(f"{path.name}: unknown kind {kind!r}")
    if isinstance(document, dict) and not document.get("metadata", {}).get("name"):
        problems.append(f"{path.name}: metadata.name missing")
    return problems
