"""`snapearth harvest` and `snapearth fetch`: providers (through EODAG) or local folders into the catalog.

Errors print one line naming the parameter and the reason; exit 2 for bad input, 1 when every
provider failed or nothing could be downloaded, 0 otherwise (a partial failure is reported).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from snapearth.catalog import Catalog, open_catalog
from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError

CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Catalog URL (sqlite:///path.db or postgresql://...); default from settings."),
]


def register(parent: typer.Typer) -> None:
    parent.command("harvest")(harvest_command)
    parent.command("fetch")(fetch_command)


def _quiet_eodag(verbose: bool) -> None:
    """EODAG logs every provider failure with a traceback; the report already says what failed and why."""
    import logging

    logging.getLogger("eodag").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _settings() -> Any:
    from snapearth.config import Settings

    return Settings()


def _emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@contextmanager
def _opened(catalog: str | None) -> Iterator[Catalog]:
    opened: Catalog | None = None
    try:
        opened = open_catalog(catalog or _settings().catalog_url)
        yield opened
    except SnapEarthError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
        raise typer.Exit(2 if isinstance(exc, InvalidInputError | NotFoundError) else 1) from None
    finally:
        if opened is not None:
            opened.close()


def resolve_place(name: str) -> BaseGeometry:
    """A place name -> its outline (or bbox) through the EarthSearch gazetteer."""
    from shapely.geometry import shape

    from snapearth.earthsearch.gazetteer import get_gazetteer

    gazetteer = get_gazetteer()
    place = gazetteer.resolve(name) or gazetteer.fuzzy(name)
    if place is None:
        raise InvalidInputError(f"place: {name!r} is not a place the gazetteer knows", field="place")
    outline = gazetteer.geometry(place)
    if outline is not None and outline.get("type") in ("Polygon", "MultiPolygon"):
        return shape(outline)
    return box(*place.widened() if place.kind == "city" else place.bbox)


def _area(bbox: str | None, intersects: str | None, place: str | None) -> BaseGeometry:
    from snapearth.sources.query import parse_bbox, parse_geometry

    given = [name for name, value in (("bbox", bbox), ("intersects", intersects), ("place", place)) if value]
    if len(given) != 1:
        raise InvalidInputError("bbox: give exactly one of --bbox, --intersects, --place", field="bbox")
    if bbox:
        return parse_bbox(bbox)
    if intersects:
        return parse_geometry(intersects)
    return resolve_place(str(place))


def harvest_command(
    provider: Annotated[
        list[str] | None, typer.Option("--provider", "-p", help="EODAG provider (repeatable), e.g. cop_dataspace.")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="sentinel-2-l2a, sentinel-2-l1c or sentinel-1-grd.")
    ] = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="west,south,east,north in degrees.")] = None,
    intersects: Annotated[
        str | None, typer.Option("--intersects", help="GeoJSON/WKT geometry, or a file holding one.")
    ] = None,
    place: Annotated[str | None, typer.Option("--place", help="A place name (EarthSearch gazetteer).")] = None,
    datetime_: Annotated[
        str | None, typer.Option("--datetime", help="2024-01-01/2024-02-01, 2024-01-01/.., or one day.")
    ] = None,
    priority: Annotated[
        str | None, typer.Option("--priority", help="Provider order for merging, e.g. cop_dataspace,earth_search.")
    ] = None,
    local: Annotated[
        Path | None, typer.Option("--local", help="Harvest a static STAC catalog or a folder of item JSON files.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore the harvest state: search the whole window.")] = False,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000)] = 100,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show EODAG's own log.")] = False,
    eodag_config: Annotated[
        Path | None, typer.Option("--eodag-config", help="EODAG user configuration file (else EODAG_CFG_FILE).")
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """Search providers through EODAG (or a local folder) and store normalised, merged STAC items."""
    from snapearth.sources.eodag_source import EodagGateway
    from snapearth.sources.harvest import harvest
    from snapearth.sources.local import harvest_local
    from snapearth.sources.query import check_collection, parse_window

    console = Console(stderr=True, soft_wrap=True)
    _quiet_eodag(verbose)
    with _opened(catalog) as opened:
        if local is not None:
            if provider:
                raise InvalidInputError("provider: --local and --provider are separate harvests", field="provider")
            area = _area(bbox, intersects, place) if (bbox or intersects or place) else None
            window = parse_window(datetime_, collection or "", now=None) if datetime_ else None
            if collection:
                check_collection(collection)
            local_report = harvest_local(opened, local, collection=collection, geometry=area, window=window)
            _emit(vars(local_report))
            return
        if not provider:
            raise InvalidInputError("provider: give at least one --provider (or --local PATH)", field="provider")
        if not collection:
            raise InvalidInputError("collection: --collection is required", field="collection")
        check_collection(collection)
        area = _area(bbox, intersects, place)
        window = parse_window(datetime_, collection)
        gateway = EodagGateway(cfg_file=eodag_config, providers=tuple(provider), page_size=page_size)
        order = [p.strip() for p in priority.split(",") if p.strip()] if priority else None
        report = harvest(
            opened,
            gateway,
            providers=list(provider),
            collection=collection,
            geometry=area,
            window=window,
            priority=order,
            full=full,
            progress=lambda message: console.print(message, highlight=False, markup=False),
        )
        _emit(report.as_dict())
        if report.all_failed:
            raise typer.Exit(1)


def fetch_command(
    item_id: Annotated[str, typer.Argument(help="Item id in the catalog.")],
    assets: Annotated[str | None, typer.Option("--assets", help="Asset keys, e.g. B04,B08 (default: data).")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Cache folder (default: $SNAPEARTH_DATA/cache).")
    ] = None,
    eodag_config: Annotated[Path | None, typer.Option("--eodag-config")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Download an item's assets into the local cache; the catalog then points at the local copies."""
    from snapearth.sources.eodag_source import EodagGateway
    from snapearth.sources.fetch import Fetcher, find_item
    from snapearth.sources.merge import providers_of

    keys = [a.strip() for a in assets.split(",") if a.strip()] if assets else None
    _quiet_eodag(False)
    with _opened(catalog) as opened:
        item = find_item(opened, item_id, collection)
        folder = (cache or (_settings().data / "cache")).resolve()
        gateway = EodagGateway(cfg_file=eodag_config, providers=tuple(providers_of(item)))
        report = Fetcher(opened, folder, gateway).fetch(item_id, assets=keys, collection=item.get("collection"))
        _emit({"item": report.item_id, "assets": [vars(a) for a in report.assets], "failed": report.failed})
        if report.failed:
            Console(stderr=True).print(f"some assets failed: {sorted(report.failed)}", highlight=False, markup=False)
