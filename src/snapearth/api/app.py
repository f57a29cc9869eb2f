"""The application layer: ``create_app(settings)`` wires the concepts' routers into one FastAPI app.

It only assembles; each concept owns its endpoints in ``snapearth/api/<name>.py`` behind a router factory.
To plug a concept in, add ONE line in the "concept routers" block of ``create_app``, e.g.::

    app.include_router(earthsearch.create_router(catalog, settings), prefix="/earthsearch")
    app.include_router(openeo.create_router(catalog, settings), prefix="/openeo/1.2")
    app.include_router(similarity.create_router(catalog, settings), prefix="/similarity")
    app.include_router(web.create_router(settings))   # the single-page UI

Conventions for routers: raise ``snapearth.errors.*`` (mapped to HTTP once, in ``api.errors``), never return
ad-hoc error bodies; take the ``Catalog`` contract, never a database connection; read settings only here.
The STAC API owns ``/`` for JSON clients (landing page); a browser asking ``/`` for HTML is sent to
``app.state.browser_home`` when a UI router sets it (``app.state.browser_home = "/ui/"``).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from snapearth import __version__, web
from snapearth.api import earthsearch, files, openeo, operations, similar, stac, tiles
from snapearth.api.errors import add_exception_handlers
from snapearth.api.observability import Metrics, ObservabilityMiddleware
from snapearth.catalog import Catalog, open_catalog
from snapearth.config import Settings, get_settings

# While it serves, the process collects young objects every 10,000 net allocations instead of CPython's 700. A search
# page holds ~10^4 live containers (50 parsed items) for a few milliseconds; with 700, dozens of young collections
# per request promoted them to the old generation, whose growth then set off a full collection of the whole heap
# (~450,000 objects once dask, xarray and the openEO processes are imported: 100-400 ms) every ~40 requests.
GC_YOUNG_THRESHOLD = 10_000


def create_app(settings: Settings | None = None, *, catalog: Catalog | None = None) -> FastAPI:
    """Build the API over ``catalog`` (default: ``settings.catalog_url``, closed on shutdown)."""
    settings = settings or get_settings()
    owns_catalog = catalog is None
    catalog = catalog or open_catalog(settings.catalog_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            if owns_catalog:
                catalog.close()

    app = FastAPI(
        title="SnapEarth API",
        version=__version__,
        description="STAC API, tiles and previews over the Copernicus Sentinel archive.",
        openapi_url="/api",
        docs_url="/api.html",
        redoc_url=None,
        root_path="",
        lifespan=lifespan,
    )
    app.state.snapearth_settings = settings  # (stac-fastapi owns app.state.settings)
    app.state.catalog = catalog
    app.state.browser_home = None
    metrics = Metrics()
    metrics.add_catalog_size(lambda: operations.count_items(catalog))
    app.state.metrics = metrics

    # core routers
    app.include_router(operations.create_router(catalog, metrics))
    app.include_router(files.create_router(settings.data))
    app.include_router(tiles.create_router(catalog))
    stac.add_stac_api(app, catalog, settings)

    # concept routers (one line each, see the module docstring)
    app.include_router(openeo.create_router(catalog, settings, registry=metrics.registry), prefix=openeo.PREFIX)
    app.include_router(earthsearch.create_router(catalog, settings), prefix=earthsearch.PREFIX)
    app.include_router(similar.create_router(catalog, settings), prefix=similar.PREFIX)
    app.include_router(openeo.create_well_known_router())
    web.install(app)

    add_exception_handlers(app)
    app.add_middleware(_BrowserHomeMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID"],
        max_age=600,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


class _BrowserHomeMiddleware:
    """``GET /`` from a browser (HTML preferred) goes to the web UI when one is installed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "GET":
            home = getattr(scope["app"].state, "browser_home", None)
            if home and _prefers_html(Request(scope)):
                response: Response = RedirectResponse(home, status_code=307)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _prefers_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first == "text/html" and request.query_params.get("f") not in ("json", "application/json")
