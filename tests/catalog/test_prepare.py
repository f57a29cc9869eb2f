"""The embedded catalog's two ways of preparing rows agree: the ndjson fast path and the general path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from snapearth.catalog.base import Refusal
from snapearth.catalog.sqlite import SQLiteCatalog
from snapearth.catalog.sqlite_prepare import (
    Prepared,
    compress,
    item_from_body,
    item_from_row,
    prepare_item,
    prepare_line,
    prepare_ndjson_range,
)
from snapearth.sources import itemgen
from tests.catalog.items import REAL, collections, generated_item


def _real_items() -> list[dict[str, Any]]:
    found = []
    for path in sorted(REAL.glob("*item*.json")):
        item = orjson.loads(path.read_bytes())
        if isinstance(item, dict) and item.get("type") == "Feature" and "collection" in item:
            found.append(item)
    return found


def _same(fast: Prepared, general: Prepared) -> None:
    for field in Prepared._fields:
        if field in ("properties", "geometry", "body"):
            continue
        assert getattr(fast, field) == getattr(general, field), field
    assert orjson.loads(fast.properties) == orjson.loads(general.properties)
    assert orjson.loads(fast.geometry) == orjson.loads(general.geometry)
    assert item_from_body(fast.body) == item_from_body(general.body)


@pytest.mark.parametrize("source", ["real", "generated"])
def test_fast_path_matches_the_general_path(source: str) -> None:
    if source == "real":
        items = _real_items()
        assert len(items) >= 3
    else:
        items = [orjson.loads(line) for line in itemgen.generate_ndjson(50, seed=3)]
    for item in items:
        line = orjson.dumps(item)
        fast = prepare_line(line)
        assert isinstance(fast, Prepared), item["id"]
        general = prepare_item(copy.deepcopy(item))
        assert isinstance(general, Prepared)
        _same(fast, general)
        # the stored item is the line, byte for byte, member order included
        back = item_from_body(fast.body)
        assert orjson.dumps(back) == line


def test_whitespace_and_escapes_are_kept() -> None:
    item = generated_item(1)
    item["properties"]["title"] = "Zaragoza — río Ebro"
    line = orjson.dumps(item).replace(b'"properties":', b'"properties" :\t').replace("í".encode(), b"\\u00ed")
    fast = prepare_line(line + b"\r")
    assert isinstance(fast, Prepared)
    assert orjson.loads(fast.properties)["title"] == "Zaragoza — río Ebro"
    assert item_from_body(fast.body) == item


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda item: item.pop("collection"), "collection"),
        (lambda item: item.update(id=7), "id"),
        (lambda item: item["assets"]["B04"].pop("href"), "assets.B04.href"),
        (lambda item: item["assets"].update(B04="not an asset"), "assets.B04.href"),
        (lambda item: item.update(links=[{"rel": "self"}]), "links"),
        (lambda item: item["properties"].update(datetime="yesterday"), "properties.datetime"),
        (lambda item: item["properties"].update({"eo:cloud_cover": "3.14"}), "properties.eo:cloud_cover"),
        (lambda item: item.update(geometry=None), "geometry"),
        (lambda item: item.update(properties=[]), "properties"),
        (lambda item: item.update(type="FeatureCollection"), "type"),
    ],
)
def test_bad_lines_are_refused_like_the_general_path_refuses_them(change: Any, field: str, tmp_path: Path) -> None:
    item = generated_item(2)
    item["assets"]["B04"] = {"href": "https://example.com/B04.tif", "type": "image/tiff"}
    change(item)
    assert prepare_line(orjson.dumps(item)) is None  # the fast path hands it over
    path = tmp_path / "bad.ndjson"
    path.write_bytes(orjson.dumps(generated_item(3)) + b"\n" + orjson.dumps(item) + b"\n{not json\n")
    records = prepare_ndjson_range(str(path), 0, path.stat().st_size)
    assert isinstance(records[0], tuple)  # prepared items travel as plain tuples
    assert Prepared(*records[0]) == prepare_item(generated_item(3))
    refusal = records[1]
    assert isinstance(refusal, Refusal)
    assert refusal.field == field
    expected = prepare_item(item)
    assert isinstance(expected, Refusal)
    assert refusal == expected
    assert isinstance(records[2], Refusal)
    assert "bad.ndjson line 3" in records[2].reason
    assert records[2].field == "item"


def test_bodies_of_the_earlier_layout_still_read(tmp_path: Path) -> None:
    """Schema-1 bodies held the item without properties and geometry (in their own columns)."""
    item = generated_item(4)
    rest = {k: v for k, v in item.items() if k not in ("properties", "geometry")}
    body = compress(orjson.dumps(rest))
    back = item_from_row(body, orjson.dumps(item["properties"]).decode(), orjson.dumps(item["geometry"]))
    assert back == item
    assert (
        list(back)[:8]
        == ["type", "stac_version", "stac_extensions", "id", "collection", "geometry", "bbox", "properties"][
            : len(back)
        ]
    )


def test_a_catalog_loaded_through_the_fast_path_answers_with_the_lines(tmp_path: Path) -> None:
    catalog = SQLiteCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    for collection in collections():
        catalog.create_collection(collection)
    lines = [orjson.dumps(generated_item(i)) for i in range(6)]
    path = tmp_path / "items.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = catalog.add_prepared(prepare_ndjson_range(str(path), 0, path.stat().st_size))
    assert report.inserted == 6
    for line in lines:
        item = orjson.loads(line)
        assert orjson.dumps(catalog.get_item(item["collection"], item["id"])) == line
    catalog.close()


def test_dropping_the_read_pages_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "items.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(generated_item(i)) for i in range(5)) + b"\n")
    size = path.stat().st_size
    assert prepare_ndjson_range(str(path), 0, size, drop_behind=True) == prepare_ndjson_range(str(path), 0, size)
