"""Item and collection checks shared by every backend and loader.

A bad item is refused with a ``Refusal`` naming the item, the field and the reason; the checks are cheap
(no shapely) because every item of a million-item load passes through them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snapearth.catalog.base import Collection, Item, Refusal
from snapearth.catalog.geometry import Box, GeometryError, checked_boxes
from snapearth.errors import InvalidInputError

# Ids end up in URLs (/collections/{c}/items/{i}): no slashes, no control characters.
_ID_PATTERN = re.compile(r"^[^/\\\x00-\x1f?#]{1,256}$")
_ID_FORBIDDEN = frozenset("/\\?#")


class ItemRefused(InvalidInputError):
    """Raised by ``check_item``; carries the structured refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal), field=refusal.field)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class CheckedItem:
    """What a backend needs to index an item, computed once."""

    item: Item
    id: str
    collection: str
    datetime: float  # epoch seconds: ``datetime``, or ``start_datetime`` for a range-only item
    start: float
    end: float
    boxes: list[Box]
    cloud_cover: float | None


_NUMBER_TYPES = frozenset({int, float})


def _finite_numbers(values: list[Any]) -> bool:
    try:
        return {type(v) for v in values} <= _NUMBER_TYPES and math.isfinite(sum(values))
    except TypeError:
        return False


def _refuse(item_id: Any, field: str, reason: str) -> ItemRefused:
    return ItemRefused(Refusal(item_id if isinstance(item_id, str) else None, field, reason))


def _epoch(item_id: str, properties: dict[str, Any], name: str) -> float | None:
    value = properties.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse(item_id, f"properties.{name}", f"expected an RFC 3339 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads RFC 3339, 'Z' included
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise _refuse(item_id, f"properties.{name}", f"unparseable date-time {value!r}") from None


def check_item(item: Any, *, collection: str | None = None) -> CheckedItem:
    """Check one STAC item; ``collection`` fills a missing ``collection`` field (loading into a known one)."""
    if not isinstance(item, dict):
        raise _refuse(None, "item", f"expected a JSON object, got {type(item).__name__}")
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise _refuse(None, "id", "missing or not a non-empty string")
    if len(item_id) > 256 or not item_id.isprintable() or _ID_FORBIDDEN.intersection(item_id):
        raise _refuse(item_id, "id", "must be 1-256 characters without '/', '\\', '?', '#' or control characters")
    if item.get("type", "Feature") != "Feature":
        raise _refuse(item_id, "type", f"expected 'Feature', got {item.get('type')!r}")
    item_collection = item.get("collection", collection)
    if item_collection is None:
        raise _refuse(item_id, "collection", "missing: every item belongs to a collection")
    if not isinstance(item_collection, str) or not item_collection:
        raise _refuse(item_id, "collection", "must be a non-empty string")
    if collection is not None and item_collection != collection:
        raise _refuse(item_id, "collection", f"item says {item_collection!r}, loading into {collection!r}")
    geometry = item.get("geometry")
    if geometry is None:
        raise _refuse(item_id, "geometry", "missing: items without a footprint cannot be searched")
    try:
        boxes = checked_boxes(geometry)
    except GeometryError as exc:
        raise _refuse(item_id, "geometry", str(exc)) from None
    except (KeyError, TypeError, IndexError):
        raise _refuse(item_id, "geometry", "malformed GeoJSON") from None
    bbox = item.get("bbox")
    if bbox is not None and (type(bbox) is not list or len(bbox) not in (4, 6) or not _finite_numbers(bbox)):
        raise _refuse(item_id, "bbox", "must be a list of 4 or 6 finite numbers")
    properties = item.get("properties")
    if not isinstance(properties, dict):
        raise _refuse(item_id, "properties", "missing or not an object")
    instant = _epoch(item_id, properties, "datetime")
    start = _epoch(item_id, properties, "start_datetime")
    end = _epoch(item_id, properties, "end_datetime")
    if instant is None:
        if "datetime" not in properties:
            raise _refuse(item_id, "properties.datetime", "missing (null is allowed with start_datetime/end_datetime)")
        if start is None or end is None:
            raise _refuse(item_id, "properties.datetime", "null, so start_datetime and end_datetime are required")
    if start is not None and end is not None and start > end:
        raise _refuse(item_id, "properties.start_datetime", "is after end_datetime")
    cloud = properties.get("eo:cloud_cover")
    if cloud is not None and (
        isinstance(cloud, bool) or not isinstance(cloud, int | float) or not 0 <= cloud <= 100 or cloud != cloud
    ):
        raise _refuse(item_id, "properties.eo:cloud_cover", f"must be a number in [0, 100], got {cloud!r}")
    assets = item.get("assets", {})
    if not isinstance(assets, dict):
        raise _refuse(item_id, "assets", "must be an object of assets")
    for key, asset in assets.items():
        if asset.__class__ is not dict or asset.get("href").__class__ is not str:
            raise _refuse(item_id, f"assets.{key}.href", "every asset needs an 'href' string")
    links = item.get("links", [])
    if type(links) is not list:
        raise _refuse(item_id, "links", "must be a list of objects with 'href'")
    for link in links:
        if type(link) is not dict or "href" not in link:
            raise _refuse(item_id, "links", "must be a list of objects with 'href'")
    when = instant if instant is not None else start
    assert when is not None
    return CheckedItem(
        item=item,
        id=item_id,
        collection=item_collection,
        datetime=when,
        start=start if start is not None else when,
        end=end if end is not None else (instant if instant is not None else when),
        boxes=boxes,
        cloud_cover=float(cloud) if cloud is not None else None,
    )


def check_collection(collection: Any) -> Collection:
    """A STAC collection needs an id, a description and extents; raises ``InvalidInputError`` naming the field."""
    if not isinstance(collection, dict):
        raise InvalidInputError("collection: expected a JSON object", field="collection")
    collection_id = collection.get("id")
    if not isinstance(collection_id, str) or not _ID_PATTERN.match(collection_id):
        raise InvalidInputError(f"collection: id {collection_id!r} is missing or not a valid id", field="id")
    if collection.get("type", "Collection") != "Collection":
        raise InvalidInputError(f"collection {collection_id!r}: type must be 'Collection'", field="type")
    extent = collection.get("extent")
    if extent is not None and not isinstance(extent, dict):
        raise InvalidInputError(f"collection {collection_id!r}: extent must be an object", field="extent")
    return collection
