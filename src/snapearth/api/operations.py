"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from snapearth.api.observability import Metrics
from snapearth.api.responses import JSONResponse
from snapearth.catalog.base import Catalog, SearchRequest


def count_items(catalog: Catalog) -> dict[str, int]:
    counts: dict[str, int] = {}
    for collection in catalog.list_collections():
        page = catalog.search(SearchRequest(collections=[collection["id"]], limit=1, count=True))
        counts[collection["id"]] = page.number_matched or 0
    return counts


def create_router(catalog: Catalog, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["Operations"])

    @router.get("/healthz", summary="Liveness: the process answers", response_class=JSONResponse)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", summary="Readiness: the catalog answers", response_class=JSONResponse)
    def readyz() -> JSONResponse:
        try:
            collections = len(catalog.list_collections())
        except Exception as exc:  # readiness reports any catalog failure instead of raising
            return JSONResponse({"status": "unavailable", "catalog": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ready", "collections": collections})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus(request: Request) -> Response:
        return metrics.render()

    return router
