"""Real MGRS tiles and UTM grids, sun angles, and the satellites' acquisition plans."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from shapely.geometry import Point, Polygon

from snapearth.sources.sample.geo import acquisitions, place_grid, sun_angles


@pytest.mark.parametrize(
    ("lon", "lat", "tile", "epsg"),
    [
        (1.4442, 43.6047, "31TCJ", 32631),  # Toulouse
        (-0.3763, 39.4699, "30SYJ", 32630),  # Valencia
        (6.8694, 45.9237, "32TLR", 32632),  # Chamonix
        (-62.0, -9.44, "20LPQ", 32720),  # Rondonia, southern hemisphere
    ],
)
def test_place_grid_is_the_real_tile(lon: float, lat: float, tile: str, epsg: int) -> None:
    grid = place_grid(lon, lat, 10.24, 40)
    assert (grid.mgrs_tile, grid.epsg) == (tile, epsg)
    assert grid.shape(1) == (256, 256)
    assert grid.shape(2) == (128, 128)
    west, _south, east, north = grid.proj_bbox
    # on the tile's pixel grid, inside the 109.8 km tile (upper-left = 100 km corner + 100 020 m north)
    assert west % 80 == 0
    assert (north - 20) % 80 == 0
    corner_x = west - west % 100_000
    assert corner_x <= west
    assert east <= corner_x + 109_800
    assert Polygon(grid.footprint_lonlat()).contains(Point(lon, lat))


def test_sun_angles() -> None:
    # Toulouse, summer solstice, at the Sentinel-2 overpass: high sun in the south-east
    az, el = sun_angles(dt.datetime(2023, 6, 21, 10, 45, tzinfo=dt.UTC), 1.44, 43.6)
    assert 60 < el < 70
    assert 120 < az < 170
    # winter: low sun
    assert sun_angles(dt.datetime(2023, 12, 21, 10, 45, tzinfo=dt.UTC), 1.44, 43.6)[1] < 25


def _gaps(days: list[dt.date]) -> set[int]:
    return {(b - a).days for a, b in itertools.pairwise(days)}


def test_sentinel2_plan() -> None:
    passes = acquisitions("sentinel-2", 1.44, 43.6, dt.date(2023, 1, 1), dt.date(2023, 3, 31))
    assert _gaps([p.datetime.date() for p in passes]) == {5}
    assert {p.platform for p in passes} == {"sentinel-2a", "sentinel-2b"}
    assert {p.orbit_state for p in passes} == {"descending"}
    assert len({p.relative_orbit for p in passes}) == 1
    local = {(p.datetime + dt.timedelta(hours=1.44 / 15)).hour for p in passes}
    assert local <= {10, 11}  # 10:30 local solar time
    a_orbits = [p.absolute_orbit for p in passes if p.platform == "sentinel-2a"]
    assert {b - a for a, b in itertools.pairwise(a_orbits)} == {143}  # 143 orbits per 10-day cycle
    later = acquisitions("sentinel-2", 1.44, 43.6, dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert {p.platform for p in later} == {"sentinel-2b", "sentinel-2c"}  # 2C took 2A's place


def test_sentinel1_plan() -> None:
    passes = acquisitions("sentinel-1", 1.44, 43.6, dt.date(2023, 1, 1), dt.date(2023, 6, 30))
    for state in ("ascending", "descending"):
        mine = [p for p in passes if p.orbit_state == state]
        assert _gaps([p.datetime.date() for p in mine]) == {12}  # Sentinel-1A alone
        assert len({p.relative_orbit for p in mine}) == 1
    hours = {p.orbit_state: (p.datetime + dt.timedelta(hours=1.44 / 15)).hour for p in passes}
    assert 4 <= hours["descending"] <= 7
    assert 16 <= hours["ascending"] <= 19
    both = acquisitions("sentinel-1", 1.44, 43.6, dt.date(2025, 7, 1), dt.date(2025, 8, 31))
    desc = [p.datetime.date() for p in both if p.orbit_state == "descending"]
    assert _gaps(desc) == {6}  # Sentinel-1A + 1C
    assert {p.platform for p in both} == {"sentinel-1a", "sentinel-1c"}
