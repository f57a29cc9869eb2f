"""The Sentinel-2 item generator: real MGRS tiles, orbit geometry, cloud statistics, valid STAC, determinism."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from pyproj import Transformer
from shapely.geometry import Point, shape

from snapearth.catalog.validate import check_item
from snapearth.errors import InvalidInputError
from snapearth.sources import itemgen
from tests.fixtures.shared import STAC_ITEMS, offline_schemas

TOULOUSE = (1.444, 43.604)


def test_tiles_follow_the_mgrs_grid() -> None:
    tiles = {tile.code: tile for tile in itemgen.land_tiles()}
    assert len(tiles) > 15_000  # the land tiles of the real grid between 56°S and 84°N
    tile = tiles["31TCJ"]
    # 31TCJ's 100 km square starts at E 300000 / N 4800000 (UTM 31N); the S2 tile hangs from its NW corner.
    assert (tile.epsg, tile.ulx, tile.uly) == (32631, 300_000.0, 4_900_000.0)
    assert shape(tile.geometry).contains(Point(*TOULOUSE))
    to_utm = Transformer.from_crs(4326, 32631, always_xy=True)
    ring = tile.geometry["coordinates"][0]
    xs, ys = to_utm.transform([p[0] for p in ring], [p[1] for p in ring])
    assert max(xs) - min(xs) == pytest.approx(109_800, abs=1)
    assert max(ys) - min(ys) == pytest.approx(109_800, abs=1)
    assert "31TCJ" not in {t.code for t in itemgen.land_tiles() if t.land == 0}
    # open ocean has no tiles, the antimeridian splits the ones that cross it
    assert not [t for t in tiles.values() if -25 < t.lon < -15 and -30 < t.lat < -20]  # South Atlantic
    crossing = [t for t in tiles.values() if t.geometry["type"] == "MultiPolygon"]
    assert crossing
    for tile in crossing:
        east, west = tile.geometry["coordinates"]
        assert max(p[0] for p in east[0]) == pytest.approx(180.0)
        assert min(p[0] for p in west[0]) == pytest.approx(-180.0)


def test_revisit_both_satellites_and_real_orbits() -> None:
    items = list(itemgen.generate_items(40, bbox=TOULOUSE * 2, start=datetime(2023, 6, 1, tzinfo=UTC)))
    toulouse = [i for i in items if i["properties"]["s2:mgrs_tile"] == "31TCJ"]
    assert len(toulouse) >= 8
    times = [itemgen.datetime.fromisoformat(i["properties"]["datetime"]) for i in toulouse]
    gaps = {round((b - a).total_seconds() / 86400, 1) for a, b in itertools.pairwise(times)}
    assert gaps <= {2.0, 3.0, 5.0}  # two relative orbits, each revisited every 5 days by S2A and S2B in turn
    assert {i["properties"]["platform"] for i in toulouse} == {"sentinel-2a", "sentinel-2b"}
    assert {i["properties"]["sat:relative_orbit"] for i in toulouse} == {51, 94}  # the real orbits over Toulouse
    for item in toulouse:
        hour = int(item["properties"]["datetime"][11:13])
        assert hour == 10  # 10:30 local solar time, descending
        assert item["properties"]["view:sun_elevation"] > 45  # June to September, late morning
        assert item["id"].startswith(f"{item['id'][:3]}_MSIL2A_")
        assert f"_R{item['properties']['sat:relative_orbit']:03d}_T31TCJ_" in item["id"]
    # Sentinel-2C replaces 2A from 2025-01-21
    later = list(itemgen.generate_items(40, bbox=TOULOUSE * 2, start=datetime(2025, 6, 1, tzinfo=UTC)))
    assert {i["properties"]["platform"] for i in later} == {"sentinel-2b", "sentinel-2c"}


def test_items_are_valid_stac_with_the_fields_of_real_items() -> None:
    items = list(itemgen.generate_items(300, seed=3, start=datetime(2021, 7, 1, tzinfo=UTC)))
    real = orjson.loads((STAC_ITEMS / "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json").read_bytes())
    for item in items:
        check_item(item)
        assert set(real["properties"]) <= set(item["properties"])
        props = item["properties"]
        assert (
            props["grid:code"]
            == f"MGRS-{props['mgrs:utm_zone']}{props['mgrs:latitude_band']}{props['mgrs:grid_square']}"
        )
        parts = [props[f"s2:{name}_percentage"] for name in itemgen._PERCENTAGES if name != "snow_ice"]
        assert sum(parts) + props["s2:snow_ice_percentage"] == pytest.approx(100.0, abs=0.01)
        band = item["assets"]["B04"]
        assert band["raster:bands"][0]["scale"] == 0.0001
        assert band["raster:bands"][0]["offset"] == (-0.1 if props["processing:version"] >= "04.00" else 0.0)
        assert band["proj:transform"][2] % 100_000 == band["proj:transform"][5] % 100_000 == 0
        assert band["proj:shape"] == [10980, 10980]
        assert set(item["assets"]) >= {"B01", "B02", "B8A", "B12", "SCL", "visual", "thumbnail"}
    assert {i["properties"]["processing:version"] for i in items} == {"03.01"}  # July 2021: no offset yet
    after = next(itemgen.generate_items(1, start=datetime(2022, 2, 1, tzinfo=UTC)))
    assert after["properties"]["s2:processing_baseline"] == "04.00"
    assert after["assets"]["B04"]["raster:bands"][0]["offset"] == -0.1
    assert len({i["id"] for i in items}) == len(items)

    offline_schemas()  # answers schema URLs from ../shared/stac-schemas
    from stac_validator import stac_validator

    for item in items[:3]:
        validator = stac_validator.StacValidate(extensions=True)
        assert validator.validate_dict(item), validator.message


def test_cloud_cover_is_u_shaped_and_runs_are_deterministic() -> None:
    cover = np.array([i["properties"]["eo:cloud_cover"] for i in itemgen.generate_items(3000, seed=11)])
    counts, _ = np.histogram(cover, bins=10, range=(0, 100))
    assert counts[0] > 2 * counts[4]
    assert counts[-1] > 2 * counts[5]
    assert 0 <= cover.min() <= cover.max() <= 100
    first = list(itemgen.generate_ndjson(50, seed=5))
    assert first == list(itemgen.generate_ndjson(50, seed=5))
    assert first != list(itemgen.generate_ndjson(50, seed=6))
    counts_by_platform = Counter(orjson.loads(line)["properties"]["platform"] for line in first)
    assert sum(counts_by_platform.values()) == 50


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="bbox"):
        list(itemgen.generate_items(5, bbox=(-35.0, -20.0, -34.0, -19.0)))  # mid-Atlantic
    with pytest.raises(InvalidInputError, match="count"):
        list(itemgen.generate_items(-1))
    with pytest.raises(InvalidInputError, match="collection"):
        list(itemgen.generate_items(1, collection='bad"id'))
    assert itemgen.write_ndjson(tmp_path / "items.ndjson", 7, seed=1) == 7
    assert len((tmp_path / "items.ndjson").read_text().splitlines()) == 7
