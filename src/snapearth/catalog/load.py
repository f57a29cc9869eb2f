"""Bulk loading from files, streamed in constant memory: ndjson, STAC ItemCollections, static STAC catalogs.

Every source yields items one at a time into ``Catalog.add_items`` (which commits in batches); a line or file
that cannot be read becomes a refusal in the report instead of stopping the load. A static catalog is walked
from its root (``catalog.json`` -> children -> items), its collections are created (or updated) first, and
the relative hrefs of assets and links are made absolute so the catalog works from anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ijson
import orjson

from snapearth.catalog.base import Catalog, Collection, Item, LoadMode, LoadReport, ProgressCallback, Refusal
from snapearth.errors import InvalidInputError, NotFoundError

# Links that describe where a JSON file sat in its static catalog: meaningless once the item is in a catalog.
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "child", "item", "items", "collection"})


@dataclass
class _Unreadable:
    """Stands in the item stream for something that could not be read (reported as a refusal)."""

    refusal: Refusal


@dataclass
class SourceStats:
    """What a load found besides items (collections created from a static catalog)."""

    collections: list[str] = field(default_factory=list)


def _is_remote(href: str) -> bool:
    return urlparse(href).scheme in ("http", "https", "s3", "gs", "file")


def resolve_href(href: str, base_dir: Path) -> str:
    """An href relative to the JSON file that holds it, as an absolute local path (URLs stay as they are)."""
    if _is_remote(href) or href.startswith("/"):
        return href
    return str((base_dir / href).resolve())


def absolutize(document: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Absolute asset hrefs; structural links dropped, other links' relative hrefs made absolute."""
    assets = document.get("assets")
    if isinstance(assets, dict):
        for asset in assets.values():
            if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                asset["href"] = resolve_href(asset["href"], base_dir)
    links = document.get("links")
    if isinstance(links, list):
        kept = []
        for link in links:
            if not isinstance(link, dict) or link.get("rel") in STRUCTURAL_RELS:
                continue
            if isinstance(link.get("href"), str):
                link["href"] = resolve_href(link["href"], base_dir)
            kept.append(link)
        document["links"] = kept
    return document


def iter_ndjson(path: Path) -> Iterator[Item | _Unreadable]:
    """One item per line; a line that is not JSON is refused with its line number."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield _Unreadable(Refusal(None, "item", f"{path.name} line {number}: not valid JSON ({exc})"))


def iter_item_collection(path: Path) -> Iterator[Item | _Unreadable]:
    """The ``features`` of a (possibly huge) FeatureCollection, parsed incrementally."""
    base_dir = path.parent.resolve()
    with path.open("rb") as handle:
        try:
            for feature in ijson.items(handle, "features.item", use_float=True):
                yield absolutize(feature, base_dir) if isinstance(feature, dict) else feature
        except ijson.JSONError as exc:
            yield _Unreadable(Refusal(None, "item", f"{path.name}: not valid JSON ({exc})"))


def read_json_object(path: Path, *, field: str = "path") -> dict[str, Any]:
    """A JSON file holding one object; errors name ``field`` (the parameter that gave the path)."""
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotFoundError(f"file {str(path)!r} does not exist", field=field) from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid JSON ({exc})", field=field) from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"{path}: expected a JSON object", field=field)
    return document


def iter_static_catalog(
    root: Path, catalog: Catalog, stats: SourceStats, *, update_collections: bool = True
) -> Iterator[Item | _Unreadable]:
    """Walk a static STAC catalog depth-first; collections are created as they are met, before their items."""
    seen: set[Path] = set()
    yield from _walk(root.resolve(), None, catalog, stats, seen, update_collections)


def _walk(
    path: Path,
    collection_id: str | None,
    catalog: Catalog,
    stats: SourceStats,
    seen: set[Path],
    update_collections: bool,
) -> Iterator[Item | _Unreadable]:
    if path in seen:
        return
    seen.add(path)
    try:
        document = read_json_object(path)
    except (InvalidInputError, NotFoundError) as exc:
        yield _Unreadable(Refusal(None, "href", exc.message))
        return
    base_dir = path.parent
    kind = document.get("type")
    if kind == "Feature":
        item = absolutize(document, base_dir)
        if collection_id is not None and "collection" not in item:
            item["collection"] = collection_id
        yield item
        return
    if kind == "Collection":
        collection_id = str(document.get("id"))
        links = list(document.get("links", []))
        collection = absolutize(document, base_dir)
        _save_collection(catalog, collection, update_collections)
        stats.collections.append(collection_id)
        document = {"links": links}
    elif kind != "Catalog":
        yield _Unreadable(Refusal(None, "type", f"{path}: expected a Catalog, Collection or Feature, got {kind!r}"))
        return
    for link in document.get("links", []):
        if not isinstance(link, dict) or link.get("rel") not in ("child", "item"):
            continue
        href = link.get("href")
        if not isinstance(href, str) or _is_remote(href):
            yield _Unreadable(Refusal(None, "href", f"{path}: link {href!r} is not a local file"))
            continue
        target = Path(href) if href.startswith("/") else (base_dir / href)
        yield from _walk(target.resolve(), collection_id, catalog, stats, seen, update_collections)


def _save_collection(catalog: Catalog, collection: Collection, update: bool) -> None:
    try:
        catalog.get_collection(collection["id"])
    except NotFoundError:
        catalog.create_collection(collection)
        return
    if update:
        catalog.update_collection(collection)


def _detect(path: Path) -> str:
    """``ndjson``, ``item-collection``, ``static`` (Catalog/Collection), or ``item``; by name, then by content."""
    name = path.name.lower()
    if name.endswith((".ndjson", ".jsonl", ".geojsonl")):
        return "ndjson"
    with path.open("rb") as handle:
        for prefix, event, value in ijson.parse(handle):
            if prefix == "type" and event == "string":
                kinds = {"FeatureCollection": "item-collection", "Catalog": "static", "Collection": "static"}
                if value in kinds:
                    return kinds[value]
                if value == "Feature":
                    return "item"
                break
            if prefix == "features":  # a FeatureCollection without (or with a late) "type"
                return "item-collection"
    raise InvalidInputError(
        f"{path}: not an ndjson file, an ItemCollection, a STAC catalog/collection or an item", field="path"
    )


def iter_source(path: Path, catalog: Catalog, stats: SourceStats) -> Iterator[Item | _Unreadable]:
    if not path.exists():
        raise NotFoundError(f"file {str(path)!r} does not exist", field="path")
    if path.is_dir():
        path = path / "catalog.json"
        if not path.exists():
            raise NotFoundError(f"{path.parent}: a folder must hold a static STAC catalog.json", field="path")
    kind = _detect(path)
    if kind == "ndjson":
        return iter_ndjson(path)
    if kind == "item-collection":
        return iter_item_collection(path)
    if kind == "item":
        return iter(
            [absolutize(read_json_object(path), path.parent.resolve())]
        )  # one item: read whole, it is small by nature
    return iter_static_catalog(path, catalog, stats)


# ndjson files larger than this are parsed by worker processes when the catalog is the embedded one
PARALLEL_MIN_BYTES = 64 * 2**20
_CHUNK_BYTES = 8 * 2**20


def _chunks(path: Path) -> Iterator[tuple[int, int]]:
    """Byte ranges of ``path`` that start and end on line boundaries."""
    size, chunk_bytes = path.stat().st_size, _CHUNK_BYTES
    with path.open("rb") as handle:
        start = 0
        while start < size:
            handle.seek(min(start + chunk_bytes, size))
            handle.readline()
            end = min(handle.tell(), size)
            yield start, end
            start = end


def parallel_ndjson(path: Path, workers: int) -> Iterator[Any]:
    """``sqlite_prepare.prepare_ndjson_range`` over the file's chunks in ``workers`` processes, results in order.

    At most ``4 * workers`` chunks (~3 MB of results each) are in flight, slack for the writer's commits, so
    memory stays bounded whatever the file size.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    from snapearth.catalog.sqlite_prepare import prepare_ndjson_range

    drop_behind = path.stat().st_size > _memory_bytes() // 4  # read once, not worth the page cache it takes
    # fork: workers start at once and need no importable __main__; they only read the file, never the database
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[list[Any]]] = deque()
        for start, end in _chunks(path):
            pending.append(pool.submit(prepare_ndjson_range, str(path), start, end, drop_behind=drop_behind))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**34


def _loader_workers(catalog: Catalog, path: Path) -> int:
    """How many worker processes parse ``path`` (0: parse in this process)."""
    from snapearth.catalog.sqlite import SQLiteCatalog

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(catalog, SQLiteCatalog) or cpus < 2 or path.suffix.lower() not in (".ndjson", ".jsonl"):
        return 0
    return min(cpus, 4) if path.stat().st_size >= PARALLEL_MIN_BYTES else 0


def load_paths(
    catalog: Catalog,
    paths: Iterable[str | Path],
    *,
    mode: LoadMode = "upsert",
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
    stats: SourceStats | None = None,
) -> LoadReport:
    """Load every file (ndjson, ItemCollection, static catalog, single item) into ``catalog``; one report."""
    stats = stats if stats is not None else SourceStats()
    total = LoadReport()
    for raw in paths:
        unreadable: list[Refusal] = []

        def readable(stream: Iterator[Item | _Unreadable], sink: list[Refusal] = unreadable) -> Iterator[Item]:
            for entry in stream:
                if isinstance(entry, _Unreadable):
                    sink.append(entry.refusal)
                    if progress is not None:
                        progress(1)
                else:
                    yield entry

        path = Path(raw)
        workers = _loader_workers(catalog, path) if path.is_file() else 0
        if workers:
            from snapearth.catalog.sqlite import SQLiteCatalog

            assert isinstance(catalog, SQLiteCatalog)
            report = catalog.add_prepared(
                parallel_ndjson(path, workers), mode=mode, batch_size=batch_size, progress=progress
            )
        else:
            report = catalog.add_items(
                readable(iter_source(path, catalog, stats)), mode=mode, batch_size=batch_size, progress=progress
            )
        total.inserted += report.inserted
        total.updated += report.updated
        total.skipped += report.skipped
        total.batches += report.batches
        total.refused.extend(unreadable)
        total.refused.extend(report.refused)
    return total
