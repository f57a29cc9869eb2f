"""Serves the built web UI at ``/ui/`` and makes it the browser's home page (``GET /`` from a browser)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
DIST = STATIC / "dist"

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SnapEarth</title></head>
<body><h1>SnapEarth</h1><p>The web UI has not been built: run <code>make demo</code> (or
<code>npm --prefix src/snapearth/web/frontend ci &amp;&amp; npm --prefix src/snapearth/web/frontend run build</code>).
The API is available at <a href="/api.html">/api.html</a>.</p></body></html>"""


def install(app: FastAPI) -> None:
    """Mount the UI's files and its page; ``GET /`` from a browser is redirected here."""
    app.mount("/ui/dist", StaticFiles(directory=DIST, check_dir=False), name="ui-dist")

    @app.get("/ui/", include_in_schema=False)
    def ui_page() -> Response:
        if not (DIST / "app.js").exists():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.state.browser_home = "/ui/"
