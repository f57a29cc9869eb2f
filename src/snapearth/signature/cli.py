"""`snapearth enrich`: signatures, masks, events and embeddings for the items that have none yet."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError


def register(parent: typer.Typer) -> None:
    parent.command("enrich")(enrich_command)


def enrich_command(
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Collection(s) to enrich; default: every sentinel-1/2 collection."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only items acquired at or after this RFC 3339 date/time.")
    ] = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Catalog URL (sqlite:///path.db or postgresql://...).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute items that already have a signature.")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="LocalCluster worker processes (default from settings).")
    ] = None,
    no_events: Annotated[bool, typer.Option("--no-events", help="Skip event detection.")] = False,
) -> None:
    """Compute the signature of every item without one, on Dask; then detect events and index embeddings.

    Uses SNAPEARTH_DASK_SCHEDULER (tcp://...) when set, else a LocalCluster. Per-item failures are reported
    and recorded; the run goes on. Prints a JSON report; exits 1 when some items failed.
    """
    from snapearth.catalog import open_catalog
    from snapearth.config import Settings
    from snapearth.signature.runner import enrich

    settings = Settings()
    err = Console(stderr=True, soft_wrap=True)
    opened = None
    try:
        if since is not None:
            from snapearth.catalog.base import parse_rfc3339

            try:
                since = parse_rfc3339(since if "T" in since else f"{since}T00:00:00Z").strftime("%Y-%m-%dT%H:%M:%SZ")
            except ValueError as exc:
                raise InvalidInputError(f"since: {since!r} is not an RFC 3339 date ({exc})", field="since") from None
        opened = open_catalog(catalog or settings.catalog_url)
        with Progress(
            TextColumn("enrich"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
        ) as bar:
            task = bar.add_task("items", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = enrich(
                opened,
                data_dir=settings.data,
                collections=collection,
                since=since,
                force=force,
                scheduler=settings.dask_scheduler,
                workers=workers or settings.dask_workers,
                progress=advance,
                events=not no_events,
            )
    except SnapEarthError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, InvalidInputError | NotFoundError) else 1) from None
    finally:
        if opened is not None:
            opened.close()
    for failure in report.failures:
        err.print(f"[yellow]failed[/yellow] {failure.collection}/{failure.item_id}: {failure.reason}", highlight=False)
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    if report.failures:
        raise typer.Exit(1)
