"""`snapearth catalog init|collections|ingest|search|stats`: the catalog from the command line.

Output is JSON (ndjson for items, one per line) for scripts, or ``--table`` for people. Errors print one line
naming the parameter and the reason, and exit non-zero (2 for bad input, 1 otherwise).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from snapearth.catalog import Catalog, SearchRequest, open_catalog
from snapearth.catalog.base import Fields, LoadMode, SortKey
from snapearth.catalog.load import SourceStats, load_paths, read_json_object
from snapearth.catalog.search_params import parse_bbox, parse_fields, parse_sortby
from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError

app = typer.Typer(name="catalog", help="The STAC catalog: create, load, search, count.", no_args_is_help=True)

CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Catalog URL (sqlite:///path.db or postgresql://...); default from settings."),
]
TableOption = Annotated[bool, typer.Option("--table", help="A readable table instead of JSON.")]


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="catalog")


def _url(catalog: str | None) -> str:
    if catalog:
        return catalog
    from snapearth.config import Settings

    return Settings().catalog_url


def _emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


@contextmanager
def _opened(catalog: str | None) -> Iterator[Catalog]:
    """Open the catalog; turn SnapEarth errors into one line on stderr and an exit status."""
    opened: Catalog | None = None
    try:
        opened = open_catalog(_url(catalog))
        yield opened
    except SnapEarthError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
        raise typer.Exit(2 if isinstance(exc, InvalidInputError | NotFoundError) else 1) from None
    finally:
        if opened is not None:
            opened.close()


def _counts(catalog: Catalog) -> dict[str, int]:
    result = catalog.aggregate(SearchRequest(limit=1), ["collection_frequency"])
    buckets = result["aggregations"][0]["buckets"]
    return {bucket["key"]: bucket["frequency"] for bucket in buckets}


@app.command()
def init(
    catalog: CatalogOption = None,
    collection: Annotated[
        list[Path] | None, typer.Option("--collection", "-c", help="Collection JSON file(s) to create.")
    ] = None,
) -> None:
    """Create the catalog (tables, indexes) if it does not exist; optionally create collections."""
    with _opened(catalog) as opened:
        for path in collection or []:
            opened.create_collection(read_json_object(path, field="collection"), exist_ok=True)
        _emit({"catalog": _redacted(opened.url), "collections": [c["id"] for c in opened.list_collections()]})


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


@app.command()
def collections(
    catalog: CatalogOption = None,
    add: Annotated[
        list[Path] | None, typer.Option("--add", help="Create or update collections from JSON files.")
    ] = None,
    delete: Annotated[str | None, typer.Option("--delete", help="Delete this collection.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --delete: also delete its items.")] = False,
    table: TableOption = False,
) -> None:
    """List the collections with their item counts (and create, update or delete some)."""
    with _opened(catalog) as opened:
        for path in add or []:
            document = read_json_object(path, field="collection")
            try:
                opened.get_collection(str(document.get("id")))
                opened.update_collection(document)
            except NotFoundError:
                opened.create_collection(document)
        if delete:
            opened.delete_collection(delete, force=force)
        counts = _counts(opened)
        rows = [
            {"id": c["id"], "title": c.get("title", ""), "items": counts.get(c["id"], 0)}
            for c in opened.list_collections()
        ]
    if table:
        out = Table("collection", "title", "items")
        for row in rows:
            out.add_row(row["id"], str(row["title"]), f"{row['items']:,}")
        Console().print(out)
    else:
        for row in rows:
            _emit(row)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="ndjson files, ItemCollections, static catalogs (catalog.json).")],
    catalog: CatalogOption = None,
    mode: Annotated[str, typer.Option(help="insert | upsert | ignore (existing items).")] = "upsert",
    batch_size: Annotated[int, typer.Option(help="Items per transaction.")] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Load items; a re-run after an interruption completes the load (exits 1 if some items were refused)."""
    if mode not in ("insert", "upsert", "ignore"):
        Console(stderr=True, soft_wrap=True).print(
            f"error: mode: {mode!r} is not one of insert, upsert, ignore", highlight=False
        )
        raise typer.Exit(2)
    stats = SourceStats()
    with _opened(catalog) as opened:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("items"),
            TimeElapsedColumn(),
            console=Console(stderr=True, soft_wrap=True),
            disable=quiet,
            transient=True,
        )
        with progress:
            task = progress.add_task("loading", total=None)
            advance: Callable[[int], None] = lambda n: progress.advance(task, n)  # noqa: E731
            report = load_paths(
                opened,
                files,
                mode=cast(LoadMode, mode),
                batch_size=batch_size,
                progress=advance,
                stats=stats,
            )
            # the free-text index of a bulk load is built in one pass at the end
            progress.update(task, description="free text", completed=0, total=None)
            indexed = opened.refresh_indexes(progress=advance)
    summary = report.as_dict()
    summary["text_indexed"] = indexed
    summary["collections"] = stats.collections
    _emit(summary)
    if report.refused:
        console = Console(stderr=True, soft_wrap=True)
        for refusal in report.refused[:20]:
            console.print(f"refused: {refusal}", highlight=False, markup=False)
        if len(report.refused) > 20:
            console.print(f"... and {len(report.refused) - 20} more", highlight=False)
        raise typer.Exit(1)


def _search_request(
    bbox: str | None,
    intersects: str | None,
    datetime: str | None,
    collections: str | None,
    ids: str | None,
    filter_: str | None,
    filter_lang: str | None,
    query: str | None,
    sortby: str | None,
    fields: str | None,
    limit: int,
    token: str | None,
    q: str | None = None,
) -> SearchRequest:
    values: dict[str, Any] = {"limit": limit, "token": token, "datetime": datetime}
    if q:
        values["q"] = [word for word in q.split(",") if word.strip()]
    if bbox:
        parse_bbox(bbox)
        values["bbox"] = [float(v) for v in bbox.split(",")]
    if intersects:
        source = Path(intersects)
        text = source.read_bytes() if source.exists() else intersects.encode()
        try:
            values["intersects"] = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidInputError("intersects: not a GeoJSON geometry (JSON or a file)", field="intersects") from None
    if collections:
        values["collections"] = [c for c in collections.split(",") if c]
    if ids:
        values["ids"] = [i for i in ids.split(",") if i]
    if filter_:
        values["filter"] = filter_
        values["filter_lang"] = filter_lang
    if query:
        try:
            values["query"] = orjson.loads(query)
        except orjson.JSONDecodeError:
            raise InvalidInputError("query: not a JSON object", field="query") from None
    if sortby:
        values["sortby"] = [SortKey(field=k.field, direction=k.direction) for k in parse_sortby(sortby)]
    parsed_fields: Fields | None = parse_fields(fields)
    if parsed_fields is not None:
        values["fields"] = parsed_fields
    try:
        return SearchRequest(**values)
    except ValueError as exc:
        raise InvalidInputError(f"search: {exc}", field="search") from None


@app.command()
def search(
    catalog: CatalogOption = None,
    bbox: Annotated[str | None, typer.Option(help="west,south,east,north")] = None,
    intersects: Annotated[str | None, typer.Option(help="GeoJSON geometry, inline or a file")] = None,
    datetime: Annotated[str | None, typer.Option(help="instant, start/end, ../end, start/..")] = None,
    collections: Annotated[str | None, typer.Option(help="comma-separated collection ids")] = None,
    ids: Annotated[str | None, typer.Option(help="comma-separated item ids")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="CQL2 text or JSON")] = None,
    filter_lang: Annotated[str | None, typer.Option("--filter-lang", help="cql2-text | cql2-json")] = None,
    query: Annotated[str | None, typer.Option(help='STAC query extension, e.g. {"eo:cloud_cover":{"lt":20}}')] = None,
    q: Annotated[
        str | None, typer.Option("--q", help="free text: comma-separated words, any of them in id/title/description")
    ] = None,
    sortby: Annotated[str | None, typer.Option(help="e.g. -datetime,+id")] = None,
    fields: Annotated[str | None, typer.Option(help="e.g. id,properties.eo:cloud_cover,-assets")] = None,
    limit: Annotated[int, typer.Option(help="items per page")] = 10,
    token: Annotated[str | None, typer.Option(help="continuation token of the previous page")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every matching item, streamed")] = False,
    table: TableOption = False,
) -> None:
    """Search items: ndjson on stdout, then numberMatched and the next token on stderr."""
    with _opened(catalog) as opened:
        request = _search_request(
            bbox, intersects, datetime, collections, ids, filter_, filter_lang, query, sortby, fields, limit, token, q
        )
        rows = Table("collection", "id", "datetime", "cloud") if table else None
        if all_:
            count = 0
            for item in opened.iter_items(request):
                _show(item, rows)
                count += 1
            footer: dict[str, Any] = {"returned": count}
        else:
            page = opened.search(request)
            for item in page.items:
                _show(item, rows)
            footer = {"returned": len(page.items), "numberMatched": page.number_matched, "next": page.next_token}
    if rows is not None:
        Console().print(rows)
    Console(stderr=True, soft_wrap=True).print(orjson.dumps(footer).decode(), highlight=False, markup=False)


def _show(item: dict[str, Any], rows: Table | None) -> None:
    if rows is None:
        _emit(item)
        return
    properties = item.get("properties", {})
    cloud = properties.get("eo:cloud_cover")
    rows.add_row(
        str(item.get("collection", "")),
        str(item.get("id", "")),
        str(properties.get("datetime") or properties.get("start_datetime") or ""),
        "" if cloud is None else f"{cloud:.1f}",
    )


@app.command()
def stats(
    catalog: CatalogOption = None,
    aggregation: Annotated[
        list[str] | None,
        typer.Option("--aggregation", "-a", help="e.g. collection_frequency, datetime_frequency:year"),
    ] = None,
    bbox: Annotated[str | None, typer.Option(help="west,south,east,north")] = None,
    datetime: Annotated[str | None, typer.Option(help="instant or interval")] = None,
    collections: Annotated[str | None, typer.Option(help="comma-separated collection ids")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="CQL2 text or JSON")] = None,
    table: TableOption = False,
) -> None:
    """Counts: total, per collection, per year, cloud-cover histogram (or the aggregations you name)."""
    names = aggregation or ["total_count", "collection_frequency", "datetime_frequency:year", "cloud_cover_frequency"]
    with _opened(catalog) as opened:
        request = _search_request(bbox, None, datetime, collections, None, filter_, None, None, None, None, 1, None)
        result = opened.aggregate(request, names)
    if not table:
        _emit(result)
        return
    console = Console()
    for entry in result["aggregations"]:
        if "buckets" in entry:
            out = Table("key", "count", title=entry["name"])
            for bucket in entry["buckets"]:
                out.add_row(str(bucket["key"]), f"{bucket['frequency']:,}")
            console.print(out)
        else:
            console.print(f"{entry['name']}: {entry['value']}")
