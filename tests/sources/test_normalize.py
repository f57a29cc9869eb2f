"""Normalisation, field by field, against real recorded provider answers served over loopback to real EODAG."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shapely.geometry import box

from snapearth.sources.normalize import normalize_feature
from snapearth.sources.query import parse_window
from tests.fixtures.shared import offline_schemas as load_offline_schemas
from tests.sources.fieldmaps import PROVIDERS, comparable, coverage, lookup, pc_id
from tests.sources.replay import RECORDED, ReplayServer

RECORDINGS = {
    "cop_dataspace": ("cop_dataspace_search.json", "/odata/v1/Products", "value"),
    "earth_search": ("earth_search_search.json", "/earth-search/v1/search", "features"),
    "geodes": ("geodes_search.json", "/geodes/api/stac/search", "features"),
    "sara": ("sara_search.json", "/sara/S2/search.json", "features"),
    "aws_eos": ("awseos_search.json", "/eos/sentinel2", "results"),
}

# Share of each recorded record's fields carried into the item (measured; the rest is provider-internal:
# tile-server templates, ingestion bookkeeping, keyword hashes). A drop means a regression.
MIN_COVERAGE = {"cop_dataspace": 0.85, "earth_search": 0.9, "geodes": 0.5, "sara": 0.55, "aws_eos": 0.38}


def _serve(replay: ReplayServer, provider: str) -> list[dict[str, Any]]:
    name, prefix, entry = RECORDINGS[provider]
    replay.route(prefix, replay.recorded(name))
    replay.route("/oidc", replay.oidc())
    # GEODES asks for on-line availability after each search; an empty answer leaves the recorded status
    replay.route("/geodes/fastavailability", replay.json({"products": []}))
    return list(json.loads((RECORDED / name).read_text())[entry])


def _record_name(provider: str, record: dict[str, Any]) -> str:
    return pc_id(_esa_name(provider, record))


def _esa_name(provider: str, record: dict[str, Any]) -> str:
    if provider == "cop_dataspace":
        return str(record["Name"]).removesuffix(".SAFE")
    if provider == "earth_search":
        return str(record["properties"]["s2:product_uri"]).removesuffix(".SAFE")
    if provider == "geodes":
        return str(record["properties"]["identifier"])
    if provider == "aws_eos":
        return str(record["productName"])
    return str(record["properties"]["productIdentifier"])


def harvest_items(make_gateway: Any, replay: ReplayServer, provider: str) -> tuple[list[Any], dict[str, Any]]:
    records = _serve(replay, provider)
    extra = {}
    if provider == "aws_eos":  # searching AWS EOS needs an API key; any key is accepted on loopback
        extra = {"aws_eos": {"search_auth": {"credentials": {"api_key": "loopback-key"}}}}
    gateway = make_gateway(provider, extra=extra)
    window = parse_window("2015-07-01/2025-12-31", "sentinel-2-l1c")
    items = {}
    for page in gateway.iter_pages(provider, "sentinel-2-l1c", box(0, 40, 5, 45), window.start, window.end):
        for feature in page.features:
            item = normalize_feature(feature, provider=provider, collection="sentinel-2-l1c")
            items[item["id"]] = item
    return records, items


@pytest.mark.parametrize("provider", sorted(RECORDINGS))
def test_every_kept_field_matches_the_recorded_answer(make_gateway, replay, provider):
    records, items = harvest_items(make_gateway, replay, provider)
    assert len(items) == len(records) > 0
    rows_of, _ = PROVIDERS[provider]
    for record in records:
        item = items[_record_name(provider, record)]
        mismatches = []
        for raw, path, expected in rows_of(record):
            try:
                actual = lookup(item, path)
            except (KeyError, IndexError):
                mismatches.append(f"{raw} -> {path}: missing")
                continue
            if comparable(actual) != comparable(expected):
                mismatches.append(f"{raw} -> {path}: {actual!r} != {expected!r}")
        assert not mismatches, "\n".join(mismatches)
        used, total = coverage(provider, record)
        assert used / total >= MIN_COVERAGE[provider], (used, total)


def test_items_follow_the_project_conventions(make_gateway, replay):
    _, items = harvest_items(make_gateway, replay, "earth_search")
    (item,) = items.values()
    assert item["collection"] == "sentinel-2-l1c"
    assert item["properties"]["platform"] == "sentinel-2b"
    assert item["properties"]["grid:code"] == "MGRS-27VWK"
    assert item["properties"]["proj:code"] == "EPSG:32627"
    b04 = item["assets"]["B04"]
    assert b04["eo:bands"] == [{"name": "B04", "common_name": "red", "center_wavelength": 0.665}]
    assert b04["raster:bands"][0]["scale"] == 0.0001
    assert b04["raster:bands"][0]["offset"] == -0.1
    assert b04["raster:bands"][0]["nodata"] == 0
    assert {"data", "reflectance"} <= set(b04["roles"])
    assert item["assets"]["thumbnail"]["roles"] == ["thumbnail"]
    assert [b["name"] for b in item["assets"]["visual"]["eo:bands"]] == ["B04", "B03", "B02"]
    assert item["properties"]["providers"][-1]["name"] == "earth_search"
    assert item["properties"]["snapearth:sources"][0]["provider"] == "earth_search"
    assert not [k for k in item["properties"] if k.startswith(("eodag:", "earthsearch:", "federation:"))]
    assert "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json" in item["stac_extensions"]


def test_items_validate_against_the_stac_schemas(make_gateway, replay):
    offline_schemas = load_offline_schemas()  # answers schema URLs from ../shared/stac-schemas
    import pystac
    from pystac.stac_io import DefaultStacIO

    class OfflineStacIO(DefaultStacIO):
        def read_text_from_href(self, href: str) -> str:
            path = offline_schemas.local_path(href)
            return open(path).read() if path else super().read_text_from_href(href)

    pystac.StacIO.set_default(OfflineStacIO)

    for provider in sorted(RECORDINGS):
        _, items = harvest_items(make_gateway, replay, provider)
        for item in items.values():
            # links (self, collection, root) are written by the API when it serves the item (api/stac.py)
            served = {**item, "links": [{"rel": "collection", "href": f"http://api/collections/{item['collection']}"}]}
            pystac.Item.from_dict(served).validate()
