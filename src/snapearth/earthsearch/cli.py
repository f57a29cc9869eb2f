"""`snapearth parse` and `snapearth ask`: EarthSearch from the command line (JSON out, one object per line)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from typing import Annotated

import orjson
import typer
from rich.console import Console

from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError

NowOption = Annotated[
    str | None, typer.Option("--now", help="Reference day for relative dates (YYYY-MM-DD); default: today (UTC).")
]


def register(app: typer.Typer) -> None:
    app.command("parse")(parse_command)
    app.command("ask")(ask_command)


def parse_now(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"now: {value!r} is not a date (expected YYYY-MM-DD)", field="now") from None


def _queries(queries: list[str] | None) -> Iterator[str]:
    if queries:
        yield from queries
        return
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _fail(exc: SnapEarthError) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc.message}", highlight=False)
    return typer.Exit(2 if isinstance(exc, InvalidInputError | NotFoundError) else 1)


def parse_command(
    queries: Annotated[
        list[str] | None, typer.Argument(help="Queries (one per argument); none: one per line on stdin.")
    ] = None,
    now: NowOption = None,
) -> None:
    """Print what EarthSearch understands of each query (place, dates, conditions, themes) as JSON lines."""
    from snapearth.earthsearch.parser import get_parser

    try:
        reference = parse_now(now)
        parser = get_parser()
        for query in _queries(queries):
            sys.stdout.write(orjson.dumps(parser.parse(query, reference).to_dict()).decode() + "\n")
            sys.stdout.flush()
    except SnapEarthError as exc:
        raise _fail(exc) from None


def ask_command(
    queries: Annotated[
        list[str] | None, typer.Argument(help="Queries (one per argument); none: one per line on stdin.")
    ] = None,
    now: NowOption = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Catalog URL (sqlite:///path.db or postgresql://...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Images to return per query (1-100).")] = 10,
) -> None:
    """Answer each query from the catalog: a ranked STAC ItemCollection with reasons, events and pairs."""
    from snapearth.catalog import open_catalog
    from snapearth.earthsearch.answer import Answerer

    try:
        reference = parse_now(now)
        if catalog is None:
            from snapearth.config import Settings

            catalog = Settings().catalog_url
        opened = open_catalog(catalog)
        try:
            answerer = Answerer(opened)
            for query in _queries(queries):
                result = answerer.ask(query, now=reference, limit=limit)
                sys.stdout.write(orjson.dumps(result).decode() + "\n")
                sys.stdout.flush()
        finally:
            opened.close()
    except SnapEarthError as exc:
        raise _fail(exc) from None
