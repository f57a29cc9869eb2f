"""Product identity and merging, on real items (no HTTP): names, Sentinel-1 orbits, alternate assets."""

from __future__ import annotations

import copy

import pytest

from snapearth.sources.merge import identity_of, merge_batch, merge_items
from snapearth.sources.naming import parse_product_name
from snapearth.sources.normalize import normalize_feature
from tests.sources.replay import stac_item

S1_ITEM = "pc_S1A_IW_GRDH_20220428_item.json"
S2_ITEM = "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json"


def test_sentinel1_names_give_the_orbits_the_provider_gives():
    raw = stac_item(S1_ITEM)
    name = parse_product_name(raw["id"])
    assert name is not None
    assert name.absolute_orbit == raw["properties"]["sat:absolute_orbit"]
    assert name.relative_orbit == raw["properties"]["sat:relative_orbit"]
    assert list(name.polarizations) == raw["properties"]["sar:polarizations"]
    assert name.instrument_mode == raw["properties"]["sar:instrument_mode"]
    # the same product as named by Copernicus Data Space (with its CRC suffix and extension) is the same name
    cdse = parse_product_name(raw["id"] + "_1F2B.SAFE")
    assert cdse is not None
    assert cdse.name == raw["id"]


def test_sentinel1_items_are_normalised_from_the_real_planetary_computer_item():
    raw = stac_item(S1_ITEM)
    item = normalize_feature(raw, provider="planetary_computer", collection="sentinel-1-grd")
    props = item["properties"]
    assert item["id"] == raw["id"]
    assert props["platform"] == "sentinel-1a"
    assert props["constellation"] == "sentinel-1"
    for key in ("sat:relative_orbit", "sat:absolute_orbit", "sar:instrument_mode", "sar:product_type"):
        assert props[key] == raw["properties"][key], key
    assert props["sar:polarizations"] == ["VV", "VH"]
    assert props["datetime"] == raw["properties"]["datetime"]  # mid-acquisition, as Planetary Computer gives it
    assert props["start_datetime"] == "2022-04-28T03:44:17.707575Z"
    assert set(item["assets"]) >= {"vv", "vh", "thumbnail"}
    assert item["assets"]["vv"]["href"] == raw["assets"]["vv"]["href"]
    assert "eo:cloud_cover" not in props


def test_identity_matches_with_or_without_the_product_name():
    item = normalize_feature(stac_item(S2_ITEM), provider="planetary_computer", collection="sentinel-2-l2a")
    nameless = copy.deepcopy(item)
    nameless["properties"].pop("s2:product_uri")
    assert identity_of(item).matches(identity_of(nameless))
    other_baseline = copy.deepcopy(item)
    other_baseline["properties"]["s2:product_uri"] = item["properties"]["s2:product_uri"].replace("N0509", "N0500")
    assert not identity_of(item).matches(identity_of(other_baseline))  # a reprocessing is another product
    other_tile = copy.deepcopy(item)
    other_tile["properties"]["grid:code"] = "MGRS-20QRG"
    assert not identity_of(item).matches(identity_of(other_tile))


def _from(provider: str, host: str) -> dict:
    raw = copy.deepcopy(stac_item(S2_ITEM))
    for asset in raw["assets"].values():
        asset["href"] = asset["href"].replace("https://sentinel2l2a01.blob.core.windows.net", host)
    return normalize_feature(raw, provider=provider, collection="sentinel-2-l2a")


@pytest.mark.parametrize("priority", [["a", "b", "c"], ["c", "a", "b"]])
def test_three_routes_merge_in_priority_order_whatever_the_arrival_order(priority):
    routes = {name: _from(name, f"https://{name}.example") for name in "abc"}
    merged_forward = merge_batch([routes["a"], routes["b"], routes["c"]], priority)
    merged_backward = merge_batch([routes["c"], routes["b"], routes["a"]], priority)
    assert len(merged_forward) == len(merged_backward) == 1
    for merged in (merged_forward[0], merged_backward[0]):
        b04 = merged["assets"]["B04"]
        assert b04["href"].startswith(f"https://{priority[0]}.example")
        assert list(b04["alternate"]) == priority[1:]
        assert [s["provider"] for s in merged["properties"]["snapearth:sources"]] == priority


def test_a_provider_coming_back_replaces_its_own_route():
    first = merge_items(_from("a", "https://a.example"), _from("b", "https://b.example"), ["a", "b"])
    moved = merge_items(first, _from("b", "https://b2.example"), ["a", "b"])
    assert moved["assets"]["B04"]["alternate"]["b"]["href"].startswith("https://b2.example")
    assert list(moved["assets"]["B04"]["alternate"]) == ["b"]


def test_a_result_without_a_product_name_merges_into_the_stored_item(catalog):
    from snapearth.sources.harvest import ensure_collection, store_items

    named = _from("a", "https://a.example")
    raw = copy.deepcopy(stac_item(S2_ITEM))
    raw["id"] = "tile-20QRF-2023-11-07"  # a provider that knows tile and time but not the ESA name
    raw["properties"].pop("s2:product_uri")
    raw["properties"]["s2:mgrs_tile"] = "20QRF"
    nameless = normalize_feature(raw, provider="b", collection="sentinel-2-l2a")
    assert nameless["id"] == "tile-20QRF-2023-11-07"
    assert nameless["properties"]["grid:code"] == "MGRS-20QRF"
    ensure_collection(catalog, "sentinel-2-l2a")
    store_items(catalog, "sentinel-2-l2a", [named], ["a", "b"])
    inserted, merged = store_items(catalog, "sentinel-2-l2a", [nameless], ["a", "b"])
    assert (inserted, merged) == (0, 1)
    stored = catalog.get_item("sentinel-2-l2a", named["id"])
    assert [s["provider"] for s in stored["properties"]["snapearth:sources"]] == ["a", "b"]
    assert stored["assets"]["B04"]["alternate"]["b"]["href"] == nameless["assets"]["B04"]["href"]
