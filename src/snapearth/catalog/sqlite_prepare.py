"""Items made ready for the embedded catalog's rows: checked, their columns computed, their documents serialised.

This is the CPU-heavy half of a load and runs in the loader's worker processes (``prepare_ndjson_range``), so the
process that writes SQLite only binds parameters. The stored documents are the properties and the geometry as JSON
text (what SQL filters read) and the whole item, LZ4-compressed (what searches return). Two paths give the same rows:

- ``prepare_line``, for an ndjson line: msgspec decodes the line once into a skeleton (id, collection, type, bbox,
  every asset's and link's ``href``) and the raw text of ``properties`` and ``geometry``; only those two are parsed
  into Python objects, for the checks and the columns, and the body is the line itself, compressed. The ~12 KB of
  assets of a Sentinel-2 item are never built as Python objects nor serialised again. Anything unusual (a decode or
  type error, a refused item) takes the general path, whose refusals name the field and the reason.
- ``prepare_item``, for a parsed item (the API, static catalogs, ItemCollections, odd lines): ``check_item`` then
  orjson.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, NamedTuple

import lz4.block
import msgspec
import orjson

from snapearth.catalog.base import Item, Refusal
from snapearth.catalog.validate import CheckedItem, ItemRefused, check_item


class Prepared(NamedTuple):
    """An item checked and serialised for the ``items``/``items_data``/``items_rtree`` rows.

    Flat, so that the loader's workers can send it to the writer as a plain tuple (``tuple(prepared)``: half the
    pickling cost of nested named tuples); the writer reads fields by position (``FIELDS``)."""

    collection: str
    id: str
    # the searchable columns of ``items`` (COLUMNS)
    datetime: float  # epoch seconds: ``datetime``, or ``start_datetime`` for a range-only item
    start: float
    end: float
    cloud_cover: float | None
    platform: Any
    grid_code: Any
    relative_orbit: Any
    west: float
    south: float
    east: float
    north: float
    # the documents
    properties: str  # JSON text
    geometry: bytes  # JSON
    body: bytes  # the whole item, JSON, LZ4 block
    boxes: tuple[tuple[float, float, float, float], ...]
    before: float  # datetime - start_datetime
    after: float  # end_datetime - datetime


# positions in a prepared tuple
COLUMNS = slice(2, 13)
START, END, PROPERTIES, GEOMETRY, BODY, BOXES, BEFORE, AFTER = 3, 4, 13, 14, 15, 16, 17, 18


def compress(document: bytes | memoryview) -> bytes:
    """An LZ4 block with its size in front (the format ``decompress`` reads)."""
    return lz4.block.compress(document)


def decompress(block: bytes) -> bytes:
    return lz4.block.decompress(block)


def prepare_item(item: Any) -> Prepared | Refusal:
    """The general path: any parsed item."""
    try:
        checked = check_item(item)
    except ItemRefused as refused:
        return refused.refusal
    item = checked.item
    if "collection" not in item:
        item = {**item, "collection": checked.collection}
    properties = orjson.dumps(item["properties"]).decode()
    return _prepared(checked, (properties, orjson.dumps(item["geometry"]), compress(orjson.dumps(item))))


def _prepared(checked: CheckedItem, documents: tuple[str, bytes, bytes]) -> Prepared:
    properties = checked.item["properties"]
    box = checked.boxes[0]
    return Prepared(
        checked.collection,
        checked.id,
        checked.datetime,
        checked.start,
        checked.end,
        checked.cloud_cover,
        scalar(properties.get("platform")),
        scalar(properties.get("grid:code")),
        scalar(properties.get("sat:relative_orbit")),
        box.west,
        box.south,
        box.east,
        box.north,
        *documents,
        tuple(tuple(box) for box in checked.boxes),  # type: ignore[misc]
        checked.datetime - checked.start,
        checked.end - checked.datetime,
    )


def scalar(value: Any) -> Any:
    """What ``json_extract`` would give for a property, so a column and the JSON always agree."""
    if value is None or isinstance(value, str | int | float):
        return int(value) if isinstance(value, bool) else value
    return orjson.dumps(value).decode()


# --- the fast path for ndjson lines ------------------------------------------------------------------------------


class _Href(msgspec.Struct):
    """An asset or a link: only its ``href`` is looked at (other members are skipped, not built)."""

    href: str


class _Skeleton(msgspec.Struct):
    """What the checks need of an item, the two members stored apart as raw JSON text."""

    id: Any
    collection: str
    properties: msgspec.Raw
    geometry: msgspec.Raw
    type: Any = "Feature"
    bbox: Any = None
    assets: dict[str, _Href] = {}
    links: list[_Href] = []


_DECODER = msgspec.json.Decoder(_Skeleton)


def prepare_line(line: bytes | memoryview) -> Prepared | Refusal | None:
    """One ndjson line through the fast path; ``None``: this line needs the general path (parse it whole)."""
    try:
        skeleton = _DECODER.decode(line)
        properties_text = bytes(skeleton.properties)
        geometry_text = bytes(skeleton.geometry)
        properties = orjson.loads(properties_text)
        geometry = orjson.loads(geometry_text)
        properties_json = properties_text.decode()
    except (msgspec.DecodeError, orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    item: dict[str, Any] = {
        "type": skeleton.type,
        "id": skeleton.id,
        "collection": skeleton.collection,
        "geometry": geometry,
        "properties": properties,
    }
    if skeleton.bbox is not None:
        item["bbox"] = skeleton.bbox
    try:
        checked = check_item(item)
    except ItemRefused:
        return None  # the general path words the refusal
    return _prepared(checked, (properties_json, geometry_text, compress(line)))


def prepare_ndjson_range(
    path: str, start: int, end: int, *, drop_behind: bool = False
) -> list[tuple[Any, ...] | Refusal]:
    """Parse, check and serialise the lines of ``path`` in bytes [start, end) (a loader worker's share).

    Prepared items come back as plain tuples (the fields of ``Prepared``), cheaper to send to the writer. The range
    is read with one call into a buffer this process keeps, and each line is decoded where it lies (a view, no copy:
    splitting into lines copied every byte again; mapping the file instead cost a page fault per 4 KiB when the file
    is not in the page cache). With ``drop_behind``, the range leaves the page cache once read.
    """
    records: list[tuple[Any, ...] | Refusal] = []
    if end <= start:
        return records
    global _BUFFER
    if len(_BUFFER) < end - start:
        _BUFFER = bytearray(end - start)
    buffer = _BUFFER
    collecting = gc.isenabled()
    gc.disable()  # what is built here is acyclic and dies young: the cyclic collector would only slow it down
    try:
        with open(path, "rb", buffering=0) as handle:
            handle.seek(start)
            view = memoryview(buffer)
            try:
                size = handle.readinto(view[: end - start]) or 0
                _prepare_lines(view, buffer, size, start, Path(path).name, records)
            finally:
                view.release()
            if drop_behind and hasattr(os, "posix_fadvise"):
                # a file larger than memory is read once: its pages would only push the catalog's out of the cache
                os.posix_fadvise(handle.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)
    finally:
        if collecting:
            gc.enable()
    return records


_BUFFER = bytearray()  # a loader worker's read buffer, kept between ranges (no new pages to fault in each time)


def _prepare_lines(
    view: memoryview, buffer: bytearray, end: int, offset: int, name: str, records: list[tuple[Any, ...] | Refusal]
) -> None:
    number, at = 0, 0
    while at < end:
        stop = buffer.find(b"\n", at, end)
        if stop < 0:
            stop = end
        number += 1
        first, last = at, stop
        at = stop + 1
        while first < last and buffer[first] in _BLANK:
            first += 1
        while last > first and buffer[last - 1] in _BLANK:
            last -= 1
        if first == last:
            continue
        line = view[first:last]
        try:
            record = prepare_line(line)
            if record is None:
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    where = f"{name} line {number} after byte {offset}"
                    records.append(Refusal(None, "item", f"{where}: not valid JSON ({exc})"))
                    continue
                record = prepare_item(item)
            records.append(tuple(record) if isinstance(record, Prepared) else record)
        finally:
            line.release()


_BLANK = frozenset(b" \t\r\n")


def item_from_body(body: bytes) -> Item:
    """The item back from its stored body (the whole item)."""
    document: Item = orjson.loads(decompress(body))
    return document


def item_from_row(body: bytes, properties: str, geometry: bytes) -> Item:
    """The item back from its stored documents.

    The body is the whole item as it was given (members in their order). Catalogs written before (schema 1
    bodies) kept properties and geometry only in their own columns: they are put back, in the usual STAC order.
    """
    document: Item = orjson.loads(decompress(body))
    if "properties" in document:
        return document
    document["properties"] = orjson.loads(properties)
    document["geometry"] = orjson.loads(geometry)
    ordered = {key: document.pop(key) for key in _ITEM_KEY_ORDER if key in document}
    ordered.update(document)
    return ordered


_ITEM_KEY_ORDER = ("type", "stac_version", "stac_extensions", "id", "collection", "geometry", "bbox", "properties")
