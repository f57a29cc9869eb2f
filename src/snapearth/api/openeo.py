"""The openEO API 1.2 (mounted under ``/openeo/1.2``) over ``snapearth.processing``.

Errors follow the openEO API: ``{"id", "code", "message", "links"}`` with the status the openEO error code
carries (``ProcessUnsupported`` 400, ``CollectionNotFound`` 404, ``PaymentRequired`` 402...). This router
answers them itself (its route class), because openEO clients read ``code``/``message``, not the STAC error
shape the rest of the API uses. ``/.well-known/openeo`` lives at the server root: include
``create_well_known_router`` without a prefix.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, JSONResponse, Response

from snapearth import __version__
from snapearth.catalog import Catalog
from snapearth.config import Settings
from snapearth.errors import SnapEarthError
from snapearth.processing import collections as openeo_collections
from snapearth.processing.auth import User
from snapearth.processing.errors import OpenEOError, openeo_code
from snapearth.processing.execute import graph_of
from snapearth.processing.jobs import now
from snapearth.processing.metrics import JobMetrics
from snapearth.processing.outputs import MEDIA_TYPES
from snapearth.processing.processes import build_registry, process_listing
from snapearth.processing.publish import results_document
from snapearth.processing.service import OpenEOService, config_from_settings

logger = logging.getLogger("snapearth.api.openeo")

API_VERSION = "1.2.0"
PREFIX = "/openeo/1.2"
MAX_BODY_BYTES = 2 * 1024 * 1024
CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/core",
]


def openeo_error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, SnapEarthError):
        code, status = openeo_code(exc)
        message = exc.message
    elif isinstance(exc, StarletteHTTPException):
        code, status = ("NotFound" if exc.status_code == 404 else "BadRequest"), exc.status_code
        message = str(exc.detail)
    elif isinstance(exc, RequestValidationError):
        code, status = "BadRequest", 400
        problems = exc.errors()
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in problems[:5]
        )
    else:
        logger.error("openEO request failed", exc_info=exc)
        code, status, message = "Internal", 500, "internal error; see the server log"
    body = {"id": uuid.uuid4().hex, "code": code, "message": message, "links": []}
    headers = {"WWW-Authenticate": 'Bearer realm="openEO"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


class OpenEORoute(APIRoute):
    """Answers every error of this router as an openEO error object (HTTPException included)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure as an openEO error object (server faults logged, 500)
                return openeo_error_response(exc)

        return handle


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise OpenEOError("BadRequest", f"body: {len(raw):,} bytes, more than the limit {MAX_BODY_BYTES:,}")
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise OpenEOError("BadRequest", f"body: not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise OpenEOError("BadRequest", "body: expected a JSON object")
    return body


def create_well_known_router(prefix: str = PREFIX) -> APIRouter:
    router = APIRouter(tags=["openEO"])

    @router.get("/.well-known/openeo")
    def well_known(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"versions": [{"url": f"{base}{prefix}/", "api_version": API_VERSION, "production": True}]}

    return router


def create_router(
    catalog: Catalog,
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    service: OpenEOService | None = None,
) -> APIRouter:
    """The openEO router; ``registry`` receives the job metrics (the app's, or Prometheus' default)."""
    if service is None:
        config = config_from_settings(settings)
        metrics = JobMetrics(lambda: _count_by_status(catalog), registry)
        service = OpenEOService(catalog, config, metrics)
    svc = service
    # import the process implementations (seconds) in the background, not on a client's first request
    threading.Thread(target=build_registry, name="openeo-registry", daemon=True).start()

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(svc.close)

    router = APIRouter(route_class=OpenEORoute, tags=["openEO"], lifespan=lifespan)

    def current_user(request: Request) -> User:
        return svc.auth.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))

    def api_root(request: Request) -> str:
        return str(request.url_for("openeo_capabilities")).rstrip("/")

    # -- discovery ----------------------------------------------------------------------------------------------
    @router.get("/", name="openeo_capabilities")
    def capabilities(request: Request) -> dict[str, Any]:
        root = api_root(request)
        endpoints: dict[str, set[str]] = {}
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                endpoints.setdefault(route.path or "/", set()).update(route.methods or set())
        prices = svc.prices
        return {
            "api_version": API_VERSION,
            "backend_version": __version__,
            "stac_version": "1.0.0",
            "type": "Catalog",
            "id": "snapearth",
            "title": "SnapEarth EarthSelf-Service",
            "description": (
                "openEO on Dask over the SnapEarth Sentinel archive: Sentinel-2 L2A with scale/offset applied, "
                "EarthSignature cloud masks (`mask_clouds`) and `signature:*` properties usable as "
                "`load_collection` property filters. Batch jobs are metered (CPU, memory, data read, storage)."
            ),
            "production": False,
            "endpoints": [
                {"path": path, "methods": sorted(m for m in methods if m != "HEAD")}
                for path, methods in sorted(endpoints.items())
            ],
            "billing": {
                "currency": prices.currency,
                "default_plan": "pay-as-you-go",
                "plans": [
                    {
                        "name": "pay-as-you-go",
                        "description": (
                            f"{prices.core_hour} {prices.currency}/core-hour, {prices.gb_hour}/GB-hour of memory, "
                            f"{prices.gb_read}/GB read, {prices.gb_month_stored}/GB-month stored; compute is billed "
                            "on max(requested, used) (OpenCost)."
                        ),
                        "paid": True,
                    }
                ],
            },
            "links": [
                {"rel": "self", "href": f"{root}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{root}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{root}/collections", "type": "application/json"},
                {"rel": "version-history", "href": str(request.base_url) + ".well-known/openeo"},
            ],
        }

    @router.get("/.well-known/openeo", include_in_schema=False)
    def well_known_here(request: Request) -> dict[str, Any]:
        """Clients given the API URL look for discovery beneath it first."""
        return {"versions": [{"url": f"{api_root(request)}/", "api_version": API_VERSION, "production": True}]}

    @router.get("/conformance")
    def conformance() -> dict[str, Any]:
        return {"conformsTo": CONFORMANCE}

    @router.get("/file_formats")
    def file_formats() -> dict[str, Any]:
        raster = ["raster"]
        return {
            "input": {},
            "output": {
                "GTiff": {
                    "title": "Cloud-Optimized GeoTIFF (one file per time step)",
                    "gis_data_types": raster,
                    "parameters": {},
                },
                "netCDF": {"title": "netCDF 4 (the whole data cube)", "gis_data_types": raster, "parameters": {}},
                "JSON": {
                    "title": "JSON (dims, coords, data; for small results)",
                    "gis_data_types": ["raster", "vector", "other"],
                    "parameters": {},
                },
            },
        }

    @router.get("/collections")
    def list_collections(request: Request) -> dict[str, Any]:
        root = api_root(request)
        collections = []
        for collection in catalog.list_collections():
            entry = openeo_collections.openeo_collection(catalog, collection["id"], full=False)
            entry["links"] = [{"rel": "self", "href": f"{root}/collections/{collection['id']}"}]
            collections.append(entry)
        return {"collections": collections, "links": [{"rel": "self", "href": f"{root}/collections"}]}

    @router.get("/collections/{collection_id}")
    def get_collection(collection_id: str, request: Request) -> dict[str, Any]:
        try:
            collection = openeo_collections.openeo_collection(catalog, collection_id)
        except SnapEarthError as exc:
            if openeo_code(exc)[0] == "NotFound":
                raise OpenEOError("CollectionNotFound", f"collection_id: {collection_id!r} does not exist") from exc
            raise
        root = api_root(request)
        collection["links"] = [
            {"rel": "self", "href": f"{root}/collections/{collection_id}"},
            {"rel": "root", "href": f"{root}/"},
            {"rel": "parent", "href": f"{root}/collections"},
        ]
        return collection

    @router.get("/processes")
    def processes(request: Request) -> dict[str, Any]:
        return {
            "processes": process_listing(build_registry()),
            "links": [{"rel": "self", "href": f"{api_root(request)}/processes"}],
        }

    # -- authentication -----------------------------------------------------------------------------------------
    @router.get("/credentials/basic")
    def credentials_basic(request: Request) -> dict[str, Any]:
        import base64

        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise OpenEOError("AuthenticationRequired", "Authorization: send HTTP Basic credentials")
        try:
            user_id, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OpenEOError("CredentialsInvalid", "Authorization: malformed Basic credentials") from exc
        return {"access_token": svc.auth.login_basic(user_id, password)}

    @router.get("/me")
    def me(user: User = Depends(current_user)) -> dict[str, Any]:
        budget = svc.monthly_budget(user.user_id)
        spent = svc.store.spent(user.user_id, now()[:7])
        info: dict[str, Any] = user.as_me() | {"default_plan": "pay-as-you-go", "links": []}
        if budget is not None:
            info["budget"] = budget
            info["budget_remaining"] = max(budget - spent, 0.0)
        info["snapearth:spent_this_month"] = spent
        return info

    # -- validation and synchronous processing ------------------------------------------------------------------
    @router.post("/validation")
    async def validation(request: Request) -> dict[str, Any]:
        from snapearth.processing.execute import validate_graph

        body = await _json_body(request)
        try:
            graph = graph_of(body)
        except OpenEOError as exc:
            return {"errors": [{"code": exc.code, "message": exc.message}]}
        problems = validate_graph(graph, catalog, build_registry())
        return {"errors": [{"code": p.code, "message": p.message} for p in problems]}

    @router.post("/result")
    async def result(request: Request, user: User = Depends(current_user)) -> Response:
        body = await _json_body(request)
        outcome = await run_in_threadpool(svc.run_sync, user, body)
        return FileResponse(
            outcome.path,
            media_type=outcome.media_type,
            headers={"OpenEO-Costs": str(outcome.costs["total"])},
            background=BackgroundTask(shutil.rmtree, outcome.tmpdir, ignore_errors=True),
        )

    # -- stored process graphs ----------------------------------------------------------------------------------
    @router.get("/process_graphs")
    def list_process_graphs(user: User = Depends(current_user)) -> dict[str, Any]:
        graphs = [
            {k: v for k, v in p.items() if k in ("id", "summary", "description", "categories", "parameters", "returns")}
            for p in svc.store.list_process_graphs(user.user_id)
        ]
        return {"processes": graphs, "links": []}

    @router.put("/process_graphs/{process_graph_id}")
    async def put_process_graph(
        process_graph_id: str, request: Request, user: User = Depends(current_user)
    ) -> Response:
        if not process_graph_id.replace("_", "").isalnum():
            raise OpenEOError("BadRequest", f"process_graph_id: {process_graph_id!r} must match ^\\w+$")
        if process_graph_id in build_registry():
            raise OpenEOError("BadRequest", f"process_graph_id: {process_graph_id!r} is a predefined process")
        body = await _json_body(request)
        graph_of(body)
        process = body.get("process", body)
        svc.store.put_process_graph(user.user_id, process_graph_id, process)
        return Response(status_code=200)

    @router.get("/process_graphs/{process_graph_id}")
    def get_process_graph(process_graph_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        return svc.store.get_process_graph(user.user_id, process_graph_id)

    @router.delete("/process_graphs/{process_graph_id}", status_code=204)
    def delete_process_graph(process_graph_id: str, user: User = Depends(current_user)) -> Response:
        svc.store.delete_process_graph(user.user_id, process_graph_id)
        return Response(status_code=204)

    # -- batch jobs ---------------------------------------------------------------------------------------------
    def job_view(job: dict[str, Any], *, full: bool) -> dict[str, Any]:
        view = {k: job[k] for k in ("id", "title", "description", "status", "created", "updated", "plan", "budget")}
        view = {k: v for k, v in view.items() if v is not None}
        if full:
            view["process"] = job["process"]
            view["progress"] = job.get("progress", 0)
            if job.get("costs"):
                view["costs"] = job["costs"]["total"]
                view["snapearth:costs"] = job["costs"]
            if job.get("usage"):
                view["usage"] = _openeo_usage(job["usage"], job.get("costs"))
            if job.get("error"):
                view["snapearth:error"] = job["error"]
        return view

    @router.post("/jobs", status_code=201)
    async def create_job(request: Request, user: User = Depends(current_user)) -> Response:
        body = await _json_body(request)
        job = svc.create_job(user, body)
        location = f"{api_root(request)}/jobs/{job['id']}"
        return Response(status_code=201, headers={"Location": location, "OpenEO-Identifier": job["id"]})

    @router.get("/jobs")
    def list_jobs(request: Request, user: User = Depends(current_user)) -> dict[str, Any]:
        return {
            "jobs": [job_view(j, full=False) for j in svc.store.jobs(user.user_id)],
            "links": [{"rel": "self", "href": f"{api_root(request)}/jobs"}],
        }

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        return job_view(svc.store.get(job_id, user.user_id), full=True)

    @router.patch("/jobs/{job_id}", status_code=204)
    async def update_job(job_id: str, request: Request, user: User = Depends(current_user)) -> Response:
        job = svc.store.get(job_id, user.user_id)
        if job["status"] in ("queued", "running"):
            raise OpenEOError("JobLocked", f"job {job_id} is {job['status']}; stop it before changing it")
        body = await _json_body(request)
        editable = {"title", "description", "process", "plan", "budget", "job_options"}
        unknown = set(body) - editable
        if unknown:
            raise OpenEOError("PropertyNotEditable", f"{sorted(unknown)}: not editable; use {sorted(editable)}")
        if "process" in body:
            from snapearth.processing.execute import validate_graph

            problems = validate_graph(graph_of(body), catalog, build_registry())
            if problems:
                raise problems[0]
        svc.store.update(job_id, **body)
        return Response(status_code=204)

    @router.delete("/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str, user: User = Depends(current_user)) -> Response:
        svc.delete_job(user, job_id)
        return Response(status_code=204)

    @router.get("/jobs/{job_id}/estimate")
    def estimate_job(job_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        job = svc.store.get(job_id, user.user_id)
        estimate = svc.estimate(job["process"], job.get("job_options"))
        return {
            "costs": estimate["costs"]["total"],
            "duration": f"PT{max(1, round(estimate['usage']['wall_seconds']))}S",
            "size": int(estimate["usage"]["output_bytes"]),
            "downloads_included": None,
            "snapearth:usage": estimate["usage"],
            "snapearth:costs": estimate["costs"],
        }

    @router.get("/jobs/{job_id}/logs")
    def job_logs(
        job_id: str,
        offset: str | None = None,
        level: str | None = None,
        user: User = Depends(current_user),
    ) -> dict[str, Any]:
        svc.store.get(job_id, user.user_id)
        return {"logs": svc.store.logs(job_id, offset, level), "links": []}

    @router.post("/jobs/{job_id}/results", status_code=202)
    def start_job(job_id: str, user: User = Depends(current_user)) -> Response:
        svc.start_job(user, job_id)
        return Response(status_code=202)

    @router.delete("/jobs/{job_id}/results", status_code=204)
    def stop_job(job_id: str, user: User = Depends(current_user)) -> Response:
        svc.store.get(job_id, user.user_id)
        svc.runner.stop(job_id)
        return Response(status_code=204)

    @router.get("/jobs/{job_id}/results")
    def job_results(job_id: str, request: Request, user: User = Depends(current_user)) -> Response:
        job = svc.store.get(job_id, user.user_id)
        if job["status"] == "error":
            error = job.get("error") or {}
            message = f"job {job_id} failed: {error.get('message', 'see its logs')}"
            raise OpenEOError(error.get("code", "Internal"), message, status=424)
        if job["status"] != "finished":
            raise OpenEOError("JobNotFinished", f"job {job_id} is {job['status']}, not finished")
        root = api_root(request)
        document = results_document(job, lambda name: f"{root}/jobs/{job_id}/results/assets/{name}")
        document["links"] = [
            {"rel": "self", "href": f"{root}/jobs/{job_id}/results", "type": "application/json"},
            {"rel": "canonical", "href": f"{root}/jobs/{job_id}/results", "type": "application/json"},
        ]
        return JSONResponse(document, headers={"OpenEO-Costs": str((job.get("costs") or {}).get("total", 0))})

    @router.get("/jobs/{job_id}/results/assets/{name}")
    def job_result_asset(job_id: str, name: str, user: User = Depends(current_user)) -> Response:
        path, media_type = svc.result_file(user, job_id, name)
        return FileResponse(path, media_type=media_type, filename=Path(name).name)

    # -- costs --------------------------------------------------------------------------------------------------
    @router.get("/costs")
    def costs(month: str | None = None, user: User = Depends(current_user)) -> dict[str, Any]:
        if month is not None and not (len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit()):
            raise OpenEOError("BadRequest", f"month: {month!r} must be YYYY-MM")
        rows = svc.costs_report(user.user_id, month)
        return {"currency": svc.prices.currency, "costs": rows}

    return router


def _openeo_usage(usage: dict[str, Any], costs: dict[str, Any] | None) -> dict[str, Any]:
    """The openEO ``usage`` object: {metric: {value, unit}}."""
    out = {
        "cpu": {"value": round(usage.get("cpu_seconds", 0.0), 6), "unit": "cpu-seconds"},
        "memory": {"value": round(usage.get("memory_byte_seconds", 0.0) / 1024**3, 9), "unit": "gb-seconds"},
        "duration": {"value": round(usage.get("wall_seconds", 0.0), 6), "unit": "seconds"},
        "input": {"value": int(usage.get("bytes_read", 0)), "unit": "bytes"},
        "storage": {"value": int(usage.get("output_bytes", 0)), "unit": "bytes"},
    }
    if costs:
        quantities = costs.get("quantities", {})
        out["billed_core_hours"] = {"value": quantities.get("core_hours", 0.0), "unit": "core-hours"}
        out["billed_gb_hours"] = {"value": quantities.get("gb_hours", 0.0), "unit": "gb-hours"}
    return out


def _count_by_status(catalog: Catalog) -> dict[str, int]:
    from snapearth.processing.jobs import JOBS

    counts: dict[str, int] = {}
    for _, job in catalog.list_records(JOBS):
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return counts


def mount(app: FastAPI, catalog: Catalog, settings: Settings, registry: CollectorRegistry | None = None) -> None:
    """Convenience for apps that are not ``create_app``: both routers at their places."""
    app.include_router(create_router(catalog, settings, registry=registry), prefix=PREFIX)
    app.include_router(create_well_known_router())


__all__ = ["MEDIA_TYPES", "create_router", "create_well_known_router", "mount"]
