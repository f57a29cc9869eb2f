"""deploy/ manifests validated offline, and the processing commands (costs, users, run) on a real catalog."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from snapearth.catalog import Catalog
from snapearth.processing.deploy import DeployConfig, check_manifest, dask_cluster, production_workflow
from snapearth.processing.jobs import JobStore

REPO = Path(__file__).resolve().parents[2]
DASK_DEFINITIONS = "python://dask_kubernetes/operator/customresources/templates.yaml#/definitions/"


def _local_refs(node: Any) -> Any:
    """dask-kubernetes' CRD templates: its own definitions resolved, Kubernetes core types (PodSpec,
    ServiceSpec: in k8s-crd-resolver, not installed) accepted as objects."""
    if isinstance(node, list):
        return [_local_refs(n) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(DASK_DEFINITIONS):
            return {"$ref": "#/definitions/" + ref.removeprefix(DASK_DEFINITIONS)}
        return {"type": "object"}
    return {k: _local_refs(v) for k, v in node.items()}


def daskcluster_schema() -> dict[str, Any]:
    text = (resources.files("dask_kubernetes.operator") / "customresources" / "templates.yaml").read_text()
    definitions = _local_refs(yaml.safe_load(text)["definitions"])
    return {"$ref": "#/definitions/dask.k8s.api.v1.DaskCluster", "definitions": definitions}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """The processing commands, registered the way ``snapearth.cli`` does, on their own app (fast to build)."""
    import typer

    from snapearth.processing import cli

    app = typer.Typer()
    cli.register(app)
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_generated_manifests_are_valid(tmp_path: Path) -> None:
    result = run_cli("deploy", "generate", "--out", str(tmp_path), "--workers", "3", "--image", "registry/se:1")
    assert result.exit_code == 0, result.output
    cluster = yaml.safe_load((tmp_path / "dask-cluster.yaml").read_text())
    jsonschema.Draft7Validator(daskcluster_schema()).validate(cluster)
    assert cluster["spec"]["worker"]["replicas"] == 3
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == "registry/se:1"
    assert worker["resources"]["requests"] == worker["resources"]["limits"] == {"cpu": "2.0", "memory": "8192Mi"}

    workflow = yaml.safe_load((tmp_path / "argo-production.yaml").read_text())
    from hera.workflows import CronWorkflow

    assert CronWorkflow.from_dict(workflow).to_dict() == workflow  # type: ignore[attr-defined]  # hera round-trip (untyped)
    tasks = {
        t["name"]: t
        for t in next(t for t in workflow["spec"]["workflowSpec"]["templates"] if "dag" in t)["dag"]["tasks"]
    }
    assert tasks["enrich"]["depends"] == "harvest-sentinel-2-l2a && harvest-sentinel-1-grd"
    assert tasks["publish"]["depends"] == "enrich"
    assert run_cli("deploy", "check", str(tmp_path)).exit_code == 0

    broken = tmp_path / "broken.yaml"
    workflow["spec"]["workflowSpec"]["templates"][-1]["dag"]["tasks"][-1]["depends"] = "nowhere"
    broken.write_text(yaml.safe_dump(workflow))
    assert check_manifest(broken) == ["broken.yaml: task publish depends on unknown nowhere"]
    assert run_cli("deploy", "check", str(tmp_path)).exit_code == 1


def test_committed_deploy_folder_matches_the_generator() -> None:
    config = DeployConfig()
    for name in ("dask-cluster.yaml", "argo-production.yaml"):
        committed = yaml.safe_load((REPO / "deploy" / name).read_text())
        expected = dask_cluster(config) if name == "dask-cluster.yaml" else production_workflow(config).to_dict()
        assert committed == expected, f"deploy/{name} is stale: run `snapearth deploy generate`"
        assert check_manifest(REPO / "deploy" / name) == []


def test_bad_deploy_options_name_the_field(tmp_path: Path) -> None:
    result = run_cli("deploy", "generate", "--out", str(tmp_path), "--schedule", "every day")
    assert result.exit_code == 2
    assert "schedule" in result.output


def test_users_costs_and_run_commands(scene_catalog: Catalog, tmp_path: Path, dask_scheduler: str) -> None:
    url = scene_catalog.url
    env = {"SNAPEARTH_DATA": str(tmp_path / "data"), "SNAPEARTH_DASK_SCHEDULER": dask_scheduler}
    from snapearth.config import get_settings

    get_settings.cache_clear()
    try:
        created = run_cli("openeo", "user-add", "prod", "--password", "production-pw", "--catalog", url, env=env)
        assert created.exit_code == 0, created.output
        from tests.processing.test_openeo_api import ndvi_graph

        graph = tmp_path / "ndvi.json"
        graph.write_text(json.dumps(ndvi_graph("GTiff")["process"]))
        ran = run_cli("openeo", "run", str(graph), "--user", "prod", "--catalog", url, env=env)
        assert ran.exit_code == 0, ran.output
        line = json.loads(ran.output.strip().splitlines()[-1])
        assert line["status"] == "finished"
        assert scene_catalog.get_collection(line["collection"])["id"] == line["collection"]

        report = run_cli("costs", "--catalog", url, "--json", env=env)
        rows = [json.loads(r) for r in report.output.strip().splitlines()]
        assert [(r["user"], r["runs"]) for r in rows] == [("prod", 1)]
        assert rows[0]["cost"] == pytest.approx(line["costs"])
        budget = run_cli("openeo", "budget", "prod", "0", "--catalog", url, env=env)
        assert budget.exit_code == 0
        refused = run_cli("openeo", "run", str(graph), "--user", "prod", "--catalog", url, env=env)
        assert refused.exit_code == 2
        assert "budget" in refused.output
        assert len(JobStore(scene_catalog).ledger("prod")) == 1
        bad_month = run_cli("costs", "--month", "May", "--catalog", url, env=env)
        assert bad_month.exit_code == 2
    finally:
        get_settings.cache_clear()
