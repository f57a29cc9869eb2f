"""`snapearth serve`: run the API with uvicorn."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option(None, help="Interface to bind (default: SNAPEARTH_HOST, 127.0.0.1)."),
        port: int = typer.Option(None, help="Port (default: SNAPEARTH_PORT, 8000)."),
        catalog: str = typer.Option(None, help="Catalog URL (default: SNAPEARTH_CATALOG or DATA/catalog.db)."),
        workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
    ) -> None:
        """Serve the STAC API, tiles, previews and the other concepts' endpoints over HTTP."""
        import os

        import uvicorn

        from snapearth.api.observability import configure_logging
        from snapearth.config import Settings

        if catalog:
            os.environ["SNAPEARTH_CATALOG"] = catalog  # workers rebuild Settings from the environment
        settings = Settings()
        configure_logging(settings.log_level)
        _refresh_in_background(settings.catalog_url)
        uvicorn.run(
            "snapearth.api.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=True,
        )


def _refresh_in_background(url: str) -> None:
    """Index what bulk loads left out (the free-text index) while the API starts serving; searches are right
    meanwhile, only slower. Its own connection, closed when done."""
    import logging
    import threading

    def refresh() -> None:
        from snapearth.catalog import open_catalog

        try:
            catalog = open_catalog(url)
            try:
                indexed = catalog.refresh_indexes()
            finally:
                catalog.close()
        except Exception:  # a catalog that cannot be opened is reported by the API itself
            logging.getLogger("snapearth.api").exception("refreshing the catalog's indexes failed")
            return
        if indexed:
            logging.getLogger("snapearth.api").info("indexed the free text of %d items", indexed)

    threading.Thread(target=refresh, name="refresh-indexes", daemon=True).start()
