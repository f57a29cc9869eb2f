"""``snapearth costs``, ``snapearth openeo ...`` (users, API keys, budgets, running graphs) and
``snapearth deploy ...`` (Kubernetes/Argo manifests)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from snapearth.catalog import Catalog
from snapearth.config import Settings
from snapearth.errors import SnapEarthError

openeo_app = typer.Typer(
    help="openEO users, API keys, budgets; run process graphs as batch jobs.", no_args_is_help=True
)
deploy_app = typer.Typer(help="Scale-out manifests: DaskCluster (Kubernetes operator) and Argo CronWorkflow.")

CatalogOption = Annotated[str | None, typer.Option(help="Catalog URL; default from settings.")]


def register(parent: typer.Typer) -> None:
    parent.command(name="costs")(costs)
    parent.add_typer(openeo_app, name="openeo")
    parent.add_typer(deploy_app, name="deploy")


def _fail(exc: SnapEarthError) -> None:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(2)


def _open(catalog_url: str | None) -> tuple[Settings, Catalog]:
    from snapearth.catalog import open_catalog
    from snapearth.config import get_settings

    settings = get_settings()
    return settings, open_catalog(catalog_url or settings.catalog_url)


def costs(
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    month: Annotated[str | None, typer.Option(help="Only this month, YYYY-MM.")] = None,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """openEO usage and costs per user and month (batch jobs and synchronous requests), with budgets."""
    from snapearth.processing.auth import Auth
    from snapearth.processing.jobs import JobStore, aggregate_costs

    if month is not None and not (len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit()):
        _fail(SnapEarthError(f"month: {month!r} must be YYYY-MM", field="month"))
    _, store_catalog = _open(catalog)
    try:
        rows = aggregate_costs(JobStore(store_catalog).ledger(user, month))
        auth = Auth(store_catalog)
        budgets = {u.user_id: u.monthly_budget for u in auth.users()}
    finally:
        store_catalog.close()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row | {"budget": budgets.get(row["user"])}))
        return
    typer.echo(f"{'user':<16}{'month':<9}{'runs':>6}{'cpu s':>10}{'GB read':>10}{'cost':>12}{'budget':>10}")
    for row in rows:
        budget = budgets.get(row["user"])
        typer.echo(
            f"{row['user']:<16}{row['month']:<9}{row['runs']:>6}{row['cpu_seconds']:>10.1f}"
            f"{row['bytes_read'] / 1024**3:>10.3f}{row['cost']:>12.6f}{'-' if budget is None else budget:>10}"
        )


@openeo_app.command("user-add")
def user_add(
    user_id: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    budget: Annotated[float | None, typer.Option(help="Monthly budget (price table currency).")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Create (or replace) an openEO user; they log in with HTTP Basic at /openeo/1.2/credentials/basic."""
    from snapearth.processing.auth import Auth

    _, store_catalog = _open(catalog)
    try:
        user = Auth(store_catalog).add_user(user_id, password, name=name, monthly_budget=budget)
    except SnapEarthError as exc:
        _fail(exc)
    finally:
        store_catalog.close()
    typer.echo(f"user {user.user_id} created (monthly budget: {user.monthly_budget})")


@openeo_app.command("api-key")
def api_key(user_id: str, label: str = "default", catalog: CatalogOption = None) -> None:
    """Create an API key for a user (send it as X-API-Key, or as the bearer token)."""
    from snapearth.processing.auth import Auth

    _, store_catalog = _open(catalog)
    try:
        typer.echo(Auth(store_catalog).create_api_key(user_id, label))
    except SnapEarthError as exc:
        _fail(exc)
    finally:
        store_catalog.close()


@openeo_app.command("budget")
def budget(
    user_id: str,
    amount: Annotated[float | None, typer.Argument(help="Monthly budget; omit for unlimited.")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Set a user's monthly budget: jobs beyond it are refused, running ones stopped."""
    from snapearth.processing.auth import Auth

    _, store_catalog = _open(catalog)
    try:
        user = Auth(store_catalog).set_budget(user_id, amount)
    except SnapEarthError as exc:
        _fail(exc)
    finally:
        store_catalog.close()
    typer.echo(f"{user.user_id}: monthly budget {user.monthly_budget}")


@openeo_app.command("run")
def run(
    graphs: Annotated[
        list[Path], typer.Argument(help="openEO process graph JSON files ({process_graph} or {process}).")
    ],
    user: Annotated[str, typer.Option(help="The user the jobs belong to (and are billed to).")],
    catalog: CatalogOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each job.")] = 6 * 3600,
) -> None:
    """Run process graphs as batch jobs (results published as STAC collections ``openeo-<job id>``)."""
    from snapearth.processing.service import OpenEOService, config_from_settings

    settings, store_catalog = _open(catalog)
    service = OpenEOService(store_catalog, config_from_settings(settings))
    failed = 0
    try:
        owner = service.auth.user(user)
        for path in graphs:
            try:
                document = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                _fail(SnapEarthError(f"graphs: cannot read {path}: {exc}", field="graphs"))
            body = document if "process" in document else {"process": document, "title": path.stem}
            job = service.create_job(owner, body)
            service.start_job(owner, job["id"])
            deadline = time.monotonic() + timeout
            while service.store.get(job["id"])["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.2)
            job = service.store.get(job["id"])
            if job["status"] in ("queued", "running"):
                service.runner.stop(job["id"])
            failed += job["status"] != "finished"
            typer.echo(
                json.dumps(
                    {
                        "graph": str(path),
                        "job_id": job["id"],
                        "status": job["status"],
                        "error": job.get("error"),
                        "collection": f"openeo-{job['id']}" if job["status"] == "finished" else None,
                        "costs": (job.get("costs") or {}).get("total"),
                    }
                )
            )
    except SnapEarthError as exc:
        _fail(exc)
    finally:
        service.close()
        store_catalog.close()
    if failed:
        raise typer.Exit(1)


@deploy_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the manifests to.")] = Path("deploy"),
    image: Annotated[str, typer.Option(help="Container image with snapearth installed.")] = (
        "ghcr.io/snapearth/snapearth:latest"
    ),
    namespace: str = "snapearth",
    workers: Annotated[int, typer.Option(help="Dask worker replicas.")] = 4,
    worker_cores: float = 2.0,
    worker_memory_gb: float = 8.0,
    schedule: Annotated[str, typer.Option(help="Cron schedule of the production workflow.")] = "0 3 * * *",
    graph: Annotated[
        list[str] | None, typer.Option(help="Production openEO graph path in the image (repeatable).")
    ] = None,
) -> None:
    """Write deploy/dask-cluster.yaml (DaskCluster) and deploy/argo-production.yaml (CronWorkflow)."""
    from snapearth.processing.deploy import DeployConfig, check_manifest, write_manifests

    config = DeployConfig(
        namespace=namespace,
        image=image,
        workers=workers,
        worker_cores=worker_cores,
        worker_memory_gb=worker_memory_gb,
        schedule=schedule,
    )
    if graph:
        config.production_graphs = list(graph)
    try:
        paths = write_manifests(config, out)
    except SnapEarthError as exc:
        _fail(exc)
    for path in paths:
        problems = check_manifest(path)
        typer.echo(f"{path}: {'ok' if not problems else '; '.join(problems)}")
        if problems:
            raise typer.Exit(1)


@deploy_app.command("check")
def check(folder: Annotated[Path, typer.Argument(help="Folder with generated manifests.")] = Path("deploy")) -> None:
    """Validate generated manifests offline (YAML, kinds, required fields, DAG references)."""
    from snapearth.processing.deploy import check_manifest

    problems = [p for path in sorted(folder.glob("*.yaml")) for p in check_manifest(path)]
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("ok")
