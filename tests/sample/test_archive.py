"""The built ``test`` archive: real formats, valid STAC, valid COGs, encodings, and truth that matches the pixels."""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from tests.fixtures.shared import offline_schemas

NOT_SCL_PERCENTAGES = (
    "s2:nodata_pixel_percentage",
    "s2:degraded_msi_data_percentage",
    "s2:saturated_defective_pixel_percentage",
)


def _items(root: Path, collection: str) -> list[dict[str, Any]]:
    coll = json.loads((root / collection / "collection.json").read_text())
    out = []
    for link in coll["links"]:
        if link["rel"] == "item":
            path = (root / collection / link["href"]).resolve()
            item = json.loads(path.read_text())
            item["_path"] = path
            out.append(item)
    return out


def _read(item: dict[str, Any], asset: str) -> np.ndarray:
    with rasterio.open(item["_path"].parent / item["assets"][asset]["href"]) as src:
        return src.read(1) if src.count == 1 else src.read()


def _reflectance(item: dict[str, Any], asset: str) -> np.ndarray:
    rb = item["assets"][asset]["raster:bands"][0]
    return _read(item, asset).astype(np.float64) * rb["scale"] + rb["offset"]


def _truth(root: Path) -> dict[str, Any]:
    return json.loads((root / "truth" / "manifest.json").read_text())


def _state(root: Path, scene: dict[str, Any]) -> np.ndarray:
    with rasterio.open(root / "truth" / scene["state"]) as src:
        return src.read(1)


def test_static_catalog_layout(sample_archive: Path) -> None:
    cat = json.loads((sample_archive / "catalog.json").read_text())
    assert cat["id"] == "snapearth-sample-test"
    children = sorted(link["href"] for link in cat["links"] if link["rel"] == "child")
    assert children == ["./sentinel-1-grd/collection.json", "./sentinel-2-l2a/collection.json"]
    s2, s1 = _items(sample_archive, "sentinel-2-l2a"), _items(sample_archive, "sentinel-1-grd")
    assert len(s2) >= 6
    assert len(s1) >= 4
    for item in s2 + s1:
        for asset in item["assets"].values():
            assert asset["href"].startswith("./")
            assert (item["_path"].parent / asset["href"]).is_file()
        for link in item["links"]:
            if link["rel"] in ("root", "parent", "collection"):
                assert not link["href"].startswith(("/", "http"))
                assert (item["_path"].parent / link["href"]).resolve().is_file()
    assert set(s2[0]["assets"]) == {
        "B02",
        "B03",
        "B04",
        "B05",
        "B08",
        "B8A",
        "B11",
        "B12",
        "SCL",
        "visual",
        "thumbnail",
    }
    assert set(s1[0]["assets"]) == {"vv", "vh", "thumbnail"}
    assert (item["_path"].parent / "thumbnail.png").read_bytes().startswith(b"\x89PNG")


def test_stac_valid_offline(sample_archive: Path) -> None:
    offline_schemas()
    from stac_validator import stac_validator

    paths = [sample_archive / "catalog.json"]
    for coll in ("sentinel-2-l2a", "sentinel-1-grd"):
        paths.append(sample_archive / coll / "collection.json")
        paths += [i["_path"] for i in _items(sample_archive, coll)]
    for path in paths:
        validator = stac_validator.StacValidate(str(path), extensions=True)
        assert validator.run(), (path.name, validator.message)
    # and the validator does catch a broken item (so the loop above can fail)
    item = json.loads(paths[3].read_text())
    item["properties"]["sat:relative_orbit"] = "R094"
    broken = sample_archive.parent / "broken.json"
    broken.write_text(json.dumps(item))
    assert not stac_validator.StacValidate(str(broken), extensions=True).run()


def test_assets_are_valid_cogs(sample_archive: Path) -> None:
    checked = 0
    for coll in ("sentinel-2-l2a", "sentinel-1-grd"):
        for item in _items(sample_archive, coll):
            for key, asset in item["assets"].items():
                if key == "thumbnail":
                    continue
                path = item["_path"].parent / asset["href"]
                valid, errors, _ = cog_validate(str(path), quiet=True)
                assert valid, (path, errors)
                with rasterio.open(path) as src:
                    assert src.crs.to_epsg() == item["properties"]["proj:epsg"]
                    assert list(src.shape) == asset["proj:shape"]
                    assert list(src.transform)[:6] == pytest.approx(asset["proj:transform"])
                    assert src.overviews(1), path
                    assert src.nodata == asset["raster:bands"][0]["nodata"]
                    assert src.dtypes[0] == asset["raster:bands"][0]["data_type"]
                checked += 1
    assert checked > 90


def test_real_tile_grid_and_properties(sample_archive: Path) -> None:
    s2 = _items(sample_archive, "sentinel-2-l2a")
    tiles = {i["properties"]["grid:code"]: i["properties"]["proj:epsg"] for i in s2}
    assert tiles == {"MGRS-32TLR": 32632, "MGRS-30SYJ": 32630}  # Chamonix and Valencia's real tiles
    for item in s2:
        p = item["properties"]
        assert p["platform"] in ("sentinel-2a", "sentinel-2b")
        assert p["constellation"] == "sentinel-2"
        assert p["sat:orbit_state"] == "descending"
        assert 10 < p["view:sun_elevation"] < 40  # winter and autumn mornings at 39-46 N
        assert 130 < p["view:sun_azimuth"] < 180
        assert item["id"].startswith(f"S2{p['platform'][-1].upper()}_MSIL2A_")
        assert f"_T{p['grid:code'][5:]}_" in item["id"]
        x0, y0 = p["proj:transform"][2], p["proj:transform"][5]
        assert x0 % 80 == 0
        assert (y0 - 20) % 80 == 0  # on the tile's grid (tiles start 20 m above a 100 km line)
        scl_keys = [k for k in p if k.endswith("_percentage") and k not in NOT_SCL_PERCENTAGES]
        pct = sum(p[k] for k in scl_keys)
        assert pct == pytest.approx(100, abs=0.05)
    days = sorted(i["properties"]["datetime"][:10] for i in s2 if i["properties"]["grid:code"] == "MGRS-32TLR")
    gaps = {(date.fromisoformat(b) - date.fromisoformat(a)).days for a, b in itertools.pairwise(days)}
    assert gaps == {5}  # Sentinel-2A + 2B, 5-day revisit
    s1 = _items(sample_archive, "sentinel-1-grd")
    assert {i["properties"]["sat:orbit_state"] for i in s1} == {"ascending", "descending"}
    for state in ("ascending", "descending"):
        days = sorted(i["properties"]["datetime"][:10] for i in s1 if i["properties"]["sat:orbit_state"] == state
                      and i["bbox"][0] > 0)  # fmt: skip
        gaps = {(date.fromisoformat(b) - date.fromisoformat(a)).days for a, b in itertools.pairwise(days)}
        assert gaps == {12}  # Sentinel-1A alone since 2021-12-23: 12-day repeat per track


def test_offset_convention_before_and_after_baseline_04(sample_archive: Path) -> None:
    truth = {s["item_id"]: s for s in _truth(sample_archive)["scenes"]}
    seen = set()
    for item in _items(sample_archive, "sentinel-2-l2a"):
        p = item["properties"]
        after = p["datetime"][:10] >= "2022-01-25"
        offset = item["assets"]["B08"]["raster:bands"][0]["offset"]
        assert offset == (-0.1 if after else 0.0)
        assert p["s2:processing_baseline"] >= "04.00" if after else p["s2:processing_baseline"] < "04.00"
        seen.add(after)
        # decoded with the item's own scale/offset, open water is dark in the NIR on both sides of the date
        state = _state(sample_archive, truth[item["id"]])
        b08 = _reflectance(item, "B08")
        water = state == 3
        if water.sum() >= 5:
            assert np.median(b08[water]) < 0.05, item["id"]
        raw = _read(item, "B08")
        assert raw.min() >= 1  # 0 is nodata
    assert seen == {True, False}


def test_truth_matches_pixels(sample_archive: Path) -> None:
    truth = _truth(sample_archive)
    scenes = {s["item_id"]: s for s in truth["scenes"]}
    flood_checked = snow_checked = 0
    for item in _items(sample_archive, "sentinel-2-l2a"):
        scene = scenes[item["id"]]
        state = _state(sample_archive, scene)
        b03, b08, b04 = (_reflectance(item, b) for b in ("B03", "B08", "B04"))
        with rasterio.open(item["_path"].parent / "B11.tif") as src:
            b11 = (
                src.read(1, out_shape=state.shape).astype(np.float64) * 0.0001
                + item["assets"]["B11"]["raster:bands"][0]["offset"]
            )
        clear = (state >= 1) & (state <= 6)
        # eo:cloud_cover (from SCL) agrees with the true cloud fraction
        assert item["properties"]["eo:cloud_cover"] == pytest.approx(100 * scene["fractions"]["cloud"], abs=6)
        if clear.sum() < 200:
            continue
        ndwi = (b03 - b08) / (b03 + b08)
        ndsi = (b03 - b11) / (b03 + b11)
        ndvi = (b08 - b04) / (b08 + b04)
        water = np.isin(state, (3, 4))
        no_snow = clear & (state != 5)  # snow has NDWI > 0 too
        if no_snow.sum() > 50:
            assert ((ndwi > 0) == water)[no_snow].mean() > 0.95
        assert scene["fractions"]["water"] == pytest.approx(water[clear].mean(), abs=1e-6)
        if scene["fractions"]["flood"]:
            flood = state == 4
            assert (ndwi[flood] > 0).mean() > 0.95
            flood_checked += 1
        if scene["fractions"]["snow"]:
            snow = state == 5
            assert (ndsi[snow] > 0.4).mean() > 0.9  # B11 is at 20 m: snow edges mix
            ground = clear & ~snow & ~water
            if ground.sum() > 50:
                assert (ndsi[ground] < 0.4).mean() > 0.9
            snow_checked += 1
        veg = state == 1
        if veg.sum() > 20:
            assert np.median(ndvi[veg]) > 0.45
    assert flood_checked >= 1
    assert snow_checked >= 1


def test_flood_truth_over_time(sample_archive: Path) -> None:
    truth = _truth(sample_archive)
    flood = next(e for e in truth["events"] if e["type"] == "flood")
    assert flood["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert flood["area_km2"] > 0.5
    assert flood["scenes"]
    shares = [
        (s["datetime"], s["events"].get(flood["id"], 0.0)) for s in truth["scenes"] if s["place"] == flood["place"]
    ]
    before = [v for t, v in shares if t < flood["start_datetime"]]
    during = [v for t, v in shares if flood["start_datetime"] <= t <= flood["end_datetime"]]
    assert before
    assert all(v == 0 for v in before)
    assert max(during) > 0.1
    with rasterio.open(sample_archive / "truth" / flood["extent"]) as src:
        extent = src.read(1).astype(bool)
    for scene in truth["scenes"]:
        if scene["events"].get(flood["id"]):
            assert not (_state(sample_archive, scene) == 4)[~extent].any()  # flood water only inside the extent


def test_sar_encoding_and_backscatter(sample_archive: Path) -> None:
    scenes = {s["item_id"]: s for s in _truth(sample_archive)["scenes"]}
    for item in _items(sample_archive, "sentinel-1-grd"):
        rb = item["assets"]["vv"]["raster:bands"][0]
        assert (rb["data_type"], rb["nodata"], rb["scale"], rb["offset"]) == ("int16", -32768, 0.01, 0)
        assert item["properties"]["sar:polarizations"] == ["VV", "VH"]
        vv = _read(item, "vv").astype(np.float64) * rb["scale"] + rb["offset"]
        vh = _read(item, "vh").astype(np.float64) * rb["scale"]
        state = _state(sample_archive, scenes[item["id"]])[::2, ::2]
        water = np.isin(state, (3, 4))
        land = np.isin(state, (1, 2))
        if water.sum() > 10:  # water is dark (specular), 20 m pixels at the shore mix
            assert np.median(vv[land]) > np.median(vv[water]) + 4
        assert -30 < np.median(vh) < np.median(vv) < 5


def test_manifest_covers_every_item(sample_archive: Path) -> None:
    truth = _truth(sample_archive)
    ids = {i["id"] for c in ("sentinel-2-l2a", "sentinel-1-grd") for i in _items(sample_archive, c)}
    assert {s["item_id"] for s in truth["scenes"]} == ids
    for scene in truth["scenes"]:
        assert json.loads((sample_archive / scene["item"]).read_text())["id"] == scene["item_id"]
    for place in truth["places"]:
        with rasterio.open(sample_archive / "truth" / place["landcover"]) as src:
            cover = src.read(1)
            assert list(src.shape) == place["shape"]
            assert src.crs.to_epsg() == place["epsg"]
        assert cover.min() >= 1
        assert sum(place["landcover_fractions"].values()) == pytest.approx(1, abs=1e-4)
    for event in truth["events"]:
        assert event["scenes"]
