"""Loading files into both backends: ndjson, ItemCollections, static catalogs with relative hrefs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from snapearth.catalog import Catalog, SearchRequest
from snapearth.catalog.load import SourceStats, load_paths
from snapearth.errors import InvalidInputError, NotFoundError
from tests.catalog.items import collections, event_item, generated_item


def _ndjson(path: Path, items: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


def test_ndjson_with_a_broken_line(catalog: Catalog, tmp_path: Path) -> None:
    path = _ndjson(tmp_path / "items.ndjson", [generated_item(i) for i in range(5)])
    path.write_bytes(path.read_bytes() + b'{"id": "cut-in-the-midd\n' + orjson.dumps(generated_item(6)) + b"\n")
    report = load_paths(catalog, [path], batch_size=2)
    assert report.inserted == 6
    assert len(report.refused) == 1
    assert "line 6" in report.refused[0].reason
    again = load_paths(catalog, [path], mode="ignore")
    assert (again.inserted, again.skipped) == (0, 6)


def test_item_collection(catalog: Catalog, tmp_path: Path) -> None:
    features = [generated_item(i) for i in range(3)]
    features[0]["assets"]["B04"]["href"] = "./B04.tif"
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    report = load_paths(catalog, [path])
    assert report.inserted == 3
    stored = catalog.get_item("sentinel-2-l2a", "S2-GEN-00")
    assert stored["assets"]["B04"]["href"] == str(tmp_path / "B04.tif")


def _static_catalog(root: Path) -> Path:
    """catalog.json -> events/collection.json -> items in a sub-folder, every href relative."""
    (root / "events" / "flood").mkdir(parents=True)
    event = event_item()
    del event["collection"]  # a static catalog may leave it to the parent collection
    event["assets"] = {"mask": {"href": "./mask.tif", "type": "image/tiff", "roles": ["signature-water"]}}
    event["links"] = [
        {"rel": "collection", "href": "../collection.json"},
        {"rel": "before", "href": "../../images/a.json"},
    ]
    (root / "events" / "flood" / "flood.json").write_bytes(orjson.dumps(event))
    events = next(c for c in collections() if c["id"] == "events")
    events = {
        **events,
        "links": [{"rel": "item", "href": "./flood/flood.json"}, {"rel": "root", "href": "../catalog.json"}],
    }
    (root / "events" / "collection.json").write_bytes(orjson.dumps(events))
    catalog = {
        "type": "Catalog",
        "id": "root",
        "stac_version": "1.0.0",
        "description": "test",
        "links": [{"rel": "child", "href": "./events/collection.json"}],
    }
    (root / "catalog.json").write_bytes(orjson.dumps(catalog))
    return root / "catalog.json"


def test_static_catalog_creates_collections_and_resolves_hrefs(catalog: Catalog, tmp_path: Path) -> None:
    catalog.delete_collection("events")
    stats = SourceStats()
    report = load_paths(catalog, [_static_catalog(tmp_path / "static")], stats=stats)
    assert stats.collections == ["events"]
    assert report.inserted == 1
    assert catalog.get_collection("events")["description"] == "Detected events"
    item = catalog.get_item("events", "flood-garonne-2023-03")
    assert item["assets"]["mask"]["href"] == str(tmp_path / "static" / "events" / "flood" / "mask.tif")
    assert [link["rel"] for link in item["links"]] == ["before"]
    assert item["links"][0]["href"] == str(tmp_path / "static" / "images" / "a.json")
    # the folder works as well as its catalog.json, and a second load changes nothing
    again = load_paths(catalog, [tmp_path / "static"], mode="ignore")
    assert (again.inserted, again.skipped) == (0, 1)


def test_missing_and_unrecognised_files(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_paths(catalog, [tmp_path / "nope.ndjson"])
    other = tmp_path / "other.json"
    other.write_bytes(b'{"hello": 1}')
    with pytest.raises(InvalidInputError):
        load_paths(catalog, [other])


def test_loaded_items_are_searchable(catalog: Catalog, tmp_path: Path) -> None:
    path = _ndjson(tmp_path / "items.ndjson", [generated_item(i) for i in range(4)])
    load_paths(catalog, [path])
    page = catalog.search(SearchRequest(bbox=[2, 44, 3.95, 44.95], limit=10))
    assert {item["id"] for item in page.items} == {"S2-GEN-00", "S2-GEN-01"}
