"""A local source: a static STAC catalog (the sample archive) or a folder of STAC item files.

Harvested the same way as a provider: items keep their fields, hrefs become absolute, the source is
recorded in ``providers`` and ``snapearth:sources`` (as ``local:<folder name>``), the same identity
merge applies, and state is kept in the catalog: an item whose JSON has not changed since the last
run is not written again.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from snapearth.catalog.base import Catalog, Item, parse_rfc3339
from snapearth.errors import InvalidInputError
from snapearth.sources.harvest import STATE_NAMESPACE, ensure_collection, store_items
from snapearth.sources.normalize import SOURCES_FIELD, extensions_of, product_name_of
from snapearth.sources.query import Window


@dataclass
class LocalReport:
    source: str
    read: int = 0
    stored: int = 0
    unchanged: int = 0
    merged: int = 0
    outside: int = 0


def _read(path: Path) -> dict[str, Any]:
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"path: {path} is not valid JSON ({error})", field="path") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"path: {path} is not a JSON object", field="path")
    return document


def _absolute(href: str, base: Path) -> str:
    if "://" in href or href.startswith("/"):
        return href
    return str((base / href).resolve())


def iter_local_items(root: Path) -> Iterator[tuple[Item, Path]]:
    """Items of a static catalog (following child/item links) or every item JSON under a folder."""
    if root.is_dir():
        candidates = [root / "catalog.json", root / "collection.json"]
        entry = next((c for c in candidates if c.is_file()), None)
        if entry is None:
            for path in sorted(root.rglob("*.json")):
                document = _read(path)
                if document.get("type") == "Feature":
                    yield document, path
            return
        root = entry
    if not root.is_file():
        raise InvalidInputError(f"path: {root} is neither a folder nor a STAC file", field="path")
    seen: set[Path] = set()
    stack = [root.resolve()]
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        document = _read(path)
        if document.get("type") == "Feature":
            yield document, path
            continue
        for link in document.get("links", []):
            if link.get("rel") in ("child", "item") and "://" not in str(link.get("href", "")):
                stack.append((path.parent / link["href"]).resolve())


def adopt(item: Item, path: Path, source: str, now: datetime) -> Item:
    """A local item as a harvested one: absolute hrefs, provenance, the canonical id when it has an ESA name."""
    adopted = copy.deepcopy(item)
    name = product_name_of(item)
    if name is not None:
        adopted["id"] = name.item_id
    for asset in adopted.get("assets", {}).values():
        asset["href"] = _absolute(str(asset["href"]), path.parent)
    adopted["links"] = [link for link in adopted.get("links", []) if link.get("rel") not in ("self", "parent", "root")]
    props = adopted["properties"]
    hosts = [p for p in props.get("providers", []) if p.get("name") != source]
    props["providers"] = [*hosts, {"name": source, "roles": ["host"], "url": path.parent.as_uri()}]
    props[SOURCES_FIELD] = [{"provider": source, "id": item["id"], "harvested": now.isoformat().replace("+00:00", "Z")}]
    adopted["stac_extensions"] = sorted(set(adopted.get("stac_extensions", [])) | set(extensions_of(adopted)))
    return adopted


def harvest_local(
    catalog: Catalog,
    root: Path,
    *,
    collection: str | None = None,
    geometry: BaseGeometry | None = None,
    window: Window | None = None,
    priority: list[str] | None = None,
) -> LocalReport:
    """Harvest a local folder or static catalog into ``catalog`` (only new or changed items are written)."""
    if not root.exists():
        raise InvalidInputError(f"path: {root} does not exist", field="path")
    source = f"local:{root.resolve().name}"
    report = LocalReport(source=source)
    state_key = f"{source}|{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}"
    state = catalog.get_record(STATE_NAMESPACE, state_key) or {}
    seen: dict[str, str] = dict(state.get("items", {}))
    now = datetime.now(UTC)
    batches: dict[str, list[Item]] = {}
    fingerprints: dict[str, str] = {}
    for item, path in iter_local_items(root):
        report.read += 1
        target = collection or item.get("collection")
        if not target:
            raise InvalidInputError(f"collection: {path} names no collection; give --collection", field="collection")
        if geometry is not None and not shape(item["geometry"]).intersects(geometry):
            report.outside += 1
            continue
        if window is not None and not window.start <= parse_rfc3339(item["properties"]["datetime"]) <= window.end:
            report.outside += 1
            continue
        fingerprint = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
        key = f"{target}/{item['id']}"
        if seen.get(key) == fingerprint:
            report.unchanged += 1
            continue
        adopted = adopt(item, path, source, now)
        adopted["collection"] = target
        batches.setdefault(target, []).append(adopted)
        fingerprints[key] = fingerprint
    order = [*(priority or []), source]
    for target, items in batches.items():
        ensure_collection(catalog, target)
        for start in range(0, len(items), 500):
            inserted, merged = store_items(catalog, target, items[start : start + 500], order)
            report.stored += inserted + merged
            report.merged += merged
    seen.update(fingerprints)
    catalog.put_record(
        STATE_NAMESPACE,
        state_key,
        {"source": source, "path": str(root.resolve()), "items": seen, "last_success": now.isoformat()},
    )
    return report
