"""Catalog test data: the real Planetary Computer items and collections, plus a small generated set.

The generated items are copies of the real Sentinel-2 item with a known footprint, date, cloud cover and
signature fields, so every search below has an answer that can be worked out by hand.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.fixtures.shared import STAC_ITEMS as REAL

S2_ITEM = REAL / "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json"
S1_ITEM = REAL / "pc_S1A_IW_GRDH_20220428_item.json"
STACTOOLS_ITEM = REAL / "stactools_S2A_MSIL2A_20190212T192651_R013_T07HFE_item.json"
S2_COLLECTION = REAL / "pc_sentinel-2-l2a_collection.json"
S1_COLLECTION = REAL / "pc_sentinel-1-grd_collection.json"

REAL_S2_ID = "S2A_MSIL2A_20231107T144731_R139_T20QRF_20231107T182159"
REAL_S1_ID = "S1A_IW_GRDH_1SDV_20220428T034417_20220428T034442_042968_05213C"
GENERATED = 12
START = datetime(2023, 1, 15, 10, 30, tzinfo=UTC)


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def square(west: float, south: float, size: float = 0.9) -> dict[str, Any]:
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def bbox_of(geometry: dict[str, Any]) -> list[float]:
    points: list[list[float]] = []
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    for polygon in polygons:
        for ring in polygon:
            points.extend(ring)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def collections() -> list[dict[str, Any]]:
    s2 = read(S2_COLLECTION)
    s1 = read(S1_COLLECTION)
    example = copy.deepcopy(s2)
    example["id"] = "sentinel2-l2a-example"
    example["title"] = "stactools example"
    events = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "events",
        "description": "Detected events",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2015-06-23T00:00:00Z", None]]},
        },
        "links": [],
    }
    return [s2, s1, example, events]


def generated_item(index: int) -> dict[str, Any]:
    """Item ``index``: a 0.9° square on a 4-wide grid from (2E, 44N), every 20 days, cloud 8*index %."""
    item = read(S2_ITEM)
    item["id"] = f"S2-GEN-{index:02d}"
    item["geometry"] = square(2 + (index % 4), 44 + (index // 4))
    item["bbox"] = bbox_of(item["geometry"])
    properties = item["properties"]
    properties["datetime"] = iso(START + timedelta(days=20 * index))
    properties["eo:cloud_cover"] = float(8 * index)
    properties["platform"] = "sentinel-2a" if index % 2 == 0 else "sentinel-2b"
    properties["s2:mgrs_tile"] = f"31T{chr(65 + index)}J"
    properties["signature:water_fraction"] = round(index / 20, 3)
    properties["signature:stats"] = {"ndvi_mean": round(0.1 * index, 2)}
    properties["signature:themes"] = ["water", "urban"] if index % 3 == 0 else ["forest"]
    if index == 5:
        properties["signature:flag"] = None
    return item


def antimeridian_item() -> dict[str, Any]:
    item = read(S2_ITEM)
    item["id"] = "S2-ANTIMERIDIAN"
    item["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.5, -17.0], [180.0, -17.0], [180.0, -16.0], [179.5, -16.0], [179.5, -17.0]]],
            [[[-180.0, -17.0], [-179.5, -17.0], [-179.5, -16.0], [-180.0, -16.0], [-180.0, -17.0]]],
        ],
    }
    item["bbox"] = [179.5, -17.0, -179.5, -16.0]
    item["properties"]["datetime"] = "2023-06-01T22:00:00Z"
    item["properties"]["eo:cloud_cover"] = 50.0
    return item


def triangle_item() -> dict[str, Any]:
    """A footprint filling only the lower-left half of its bounding box (for exact-geometry tests)."""
    item = read(S2_ITEM)
    item["id"] = "S2-TRIANGLE"
    item["geometry"] = {"type": "Polygon", "coordinates": [[[10.0, 10.0], [11.0, 10.0], [10.0, 11.0], [10.0, 10.0]]]}
    item["bbox"] = [10.0, 10.0, 11.0, 11.0]
    item["properties"]["datetime"] = "2023-06-02T10:00:00Z"
    item["properties"]["eo:cloud_cover"] = 1.0
    return item


def event_item() -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "flood-garonne-2023-03",
        "collection": "events",
        "geometry": square(1.0, 44.0, 0.5),
        "bbox": [1.0, 44.0, 1.5, 44.5],
        "properties": {
            "datetime": None,
            "start_datetime": "2023-03-01T00:00:00Z",
            "end_datetime": "2023-03-20T00:00:00Z",
            "signature:event_type": "flood",
            "signature:area_km2": 123.4,
        },
        "links": [{"rel": "before", "href": "https://example.org/items/a"}],
        "assets": {},
    }


def all_items() -> list[dict[str, Any]]:
    return [
        *(generated_item(i) for i in range(GENERATED)),
        antimeridian_item(),
        triangle_item(),
        event_item(),
        read(S2_ITEM),
        read(S1_ITEM),
        read(STACTOOLS_ITEM),
    ]


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}
