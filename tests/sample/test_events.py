"""Every kind of scripted event, rendered on small grids (no files): the truth and the pixels agree over time."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from snapearth.sources.sample.build import place_model
from snapearth.sources.sample.geo import sun_angles
from snapearth.sources.sample.landscape import Cover
from snapearth.sources.sample.scenario import Scenario, parse_scenario
from snapearth.sources.sample.scene import BANDS, State, render_optical, surface_on

B = {name: i for i, name in enumerate(BANDS)}

SCENARIO = """\
name: events
seed: 3
size_km: 3.84
resolution_m: 40
places:
  - {id: evros, name: Dadia, country: GR, lon: 26.0542, lat: 40.9833, landscape: mediterranean_hills,
     elevation_m: 250, period: {start: 2023-07-01, end: 2024-09-30}}
  - {id: rondonia, name: Machadinho, country: BR, lon: -62.0, lat: -9.44, landscape: tropical_forest,
     elevation_m: 150, period: {start: 2023-05-01, end: 2024-10-31}}
  - {id: niamey, name: Niamey, country: NE, lon: 2.1098, lat: 13.5116, landscape: sahel, elevation_m: 210,
     period: {start: 2024-06-01, end: 2024-10-31}}
  - {id: beauce, name: Beauce, country: FR, lon: 1.58, lat: 48.36, landscape: cropland_plain, elevation_m: 150,
     period: {start: 2023-06-01, end: 2023-08-31}}
  - {id: chamonix, name: Chamonix, country: FR, lon: 6.8694, lat: 45.9237, landscape: alpine, elevation_m: 1035,
     period: {start: 2023-11-01, end: 2024-06-30}}
events:
  - {id: fire, type: wildfire, place: evros, start: 2023-08-19, end: 2023-09-03, radius_km: 1.5}
  - {id: clearing, type: deforestation, place: rondonia, start: 2023-05-01, end: 2024-10-31, radius_km: 1.8}
  - {id: drought, type: drought, place: niamey, start: 2024-07-01, end: 2024-10-31, severity: 0.5}
  - {id: harvest, type: harvest, place: beauce, crop: wheat, start: 2023-07-05, end: 2023-07-25}
  - {id: snow, type: snow, place: chamonix, start: 2023-11-10, end: 2024-06-20, snowline_m: 1200}
"""


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "events.yaml")


def _index(refl: np.ndarray, a: str, b: str) -> np.ndarray:
    return (refl[B[a]] - refl[B[b]]) / (refl[B[a]] + refl[B[b]])


def test_wildfire_scar_spreads_persists_and_regrows(scenario: Scenario) -> None:
    model = place_model(scenario, "evros")
    extent = model.events[0].area
    assert extent.sum() > 100
    before = surface_on(model, dt.date(2023, 8, 10))
    during = surface_on(model, dt.date(2023, 8, 25))
    after = surface_on(model, dt.date(2023, 9, 10))
    year_later = surface_on(model, dt.date(2024, 9, 10))
    assert before.events["fire"] == 0 if "fire" in before.events else True
    assert 0 < during.events["fire"] < after.events["fire"]
    burned = after.state == State.BURNED
    assert not burned[~extent].any()
    nbr_before = _index(before.reflectance, "B08", "B12")[burned]
    nbr_after = _index(after.reflectance, "B08", "B12")[burned]
    assert np.median(nbr_before) > 0.2
    assert np.median(nbr_after) < -0.1
    assert np.median(nbr_before) - np.median(nbr_after) > 0.44  # high severity (Key & Benson dNBR)
    nbr_later = _index(year_later.reflectance, "B08", "B12")[burned]
    assert np.median(nbr_after) < np.median(nbr_later) < np.median(nbr_before)  # regrowing, not healed
    assert year_later.events["fire"] > 0


def test_forest_clearing_is_progressive_and_permanent(scenario: Scenario) -> None:
    model = place_model(scenario, "rondonia")
    days = [dt.date(2023, 5, 2), dt.date(2023, 9, 1), dt.date(2024, 2, 1), dt.date(2024, 10, 31)]
    shares = [surface_on(model, d).events.get("clearing", 0.0) for d in days]
    assert shares == sorted(shares)
    assert shares[-1] > 0.03
    assert shares[-1] == pytest.approx(model.events[0].area.mean(), abs=1e-6)
    first, last = surface_on(model, days[0]), surface_on(model, days[-1])
    cleared = model.events[0].area
    assert np.median(_index(first.reflectance, "B08", "B04")[cleared]) > 0.7
    assert np.median(_index(last.reflectance, "B08", "B04")[cleared]) < 0.4


def test_drought_is_a_vegetation_deficit(scenario: Scenario) -> None:
    model = place_model(scenario, "niamey")
    without = parse_scenario(SCENARIO.split("events:")[0], "no-events.yaml")
    normal = place_model(without, "niamey")
    day = dt.date(2024, 9, 1)
    dry, wet = surface_on(model, day), surface_on(normal, day)
    veg = model.events[0].area
    assert dry.green[veg].mean() == pytest.approx(0.5 * wet.green[veg].mean(), rel=0.02)
    assert dry.events["drought"] == pytest.approx(0.5)
    assert np.mean(_index(dry.reflectance, "B08", "B04")[veg]) < np.mean(_index(wet.reflectance, "B08", "B04")[veg])


def test_harvest_on_scripted_dates(scenario: Scenario) -> None:
    model = place_model(scenario, "beauce")
    harvest = model.events[0]
    dates = sorted(harvest.parcel_dates.values())
    assert dates[0] >= dt.date(2023, 7, 5)
    assert dates[-1] <= dt.date(2023, 7, 25)
    shares = [surface_on(model, dt.date(2023, 7, d)).events.get("harvest", 0.0) for d in (1, 10, 20, 26)]
    assert shares[0] == 0
    assert shares == sorted(shares)
    assert shares[-1] == pytest.approx(harvest.area.mean(), abs=1e-6)
    before, after = surface_on(model, dt.date(2023, 7, 1)), surface_on(model, dt.date(2023, 7, 26))
    for band, drop in (("B08", 0.03), ("B11", 0.02)):  # the straw is gone: stubble and soil are darker
        gap = before.reflectance[B[band]] - after.reflectance[B[band]]
        assert np.median(gap[harvest.area]) > drop, band


def test_snow_follows_the_season_and_elevation(scenario: Scenario) -> None:
    model = place_model(scenario, "chamonix")
    shares = {d: surface_on(model, d).events["snow"] for d in (dt.date(2023, 11, 15), dt.date(2024, 2, 20),
                                                                dt.date(2024, 6, 15))}  # fmt: skip
    early, mid, late = shares.values()
    assert mid > early
    assert mid > late
    winter = surface_on(model, dt.date(2024, 2, 20))
    snow = winter.state == State.SNOW
    assert model.ground.elevation[snow].mean() > model.ground.elevation[~snow].mean()
    assert np.median(_index(winter.reflectance, "B03", "B11")[snow]) > 0.4


def test_cloud_shadows_fall_away_from_the_sun(scenario: Scenario) -> None:
    model = place_model(scenario, "beauce")
    checked = 0
    for day in range(1, 31):
        when = dt.datetime(2023, 6, day, 10, 50, tzinfo=dt.UTC)
        az, el = sun_angles(when, 1.58, 48.36)
        scene = render_optical(model, when, az, el, f"shadow-test-{day}")
        cloud = scene.opacity >= 0.35
        if not (0.05 < cloud.mean() < 0.4) or scene.shadow.sum() < 20:
            continue
        # correlating the cloud mask with the shadow mask peaks at the shadow displacement
        f = np.fft.fft2(cloud.astype(float))
        g = np.fft.fft2(scene.shadow.astype(float))
        corr = np.fft.ifft2(np.conj(f) * g).real
        dy, dx = np.unravel_index(np.argmax(corr), corr.shape)
        n = cloud.shape[0]
        dy, dx = (dy + n // 2) % n - n // 2, (dx + n // 2) % n - n // 2
        east, north = dx, -dy
        shadow_dir = math.degrees(math.atan2(east, north)) % 360
        anti_sun = (az + 180) % 360
        assert abs((shadow_dir - anti_sun + 180) % 360 - 180) < 25, (day, shadow_dir, anti_sun)
        checked += 1
    assert checked >= 2


def test_crop_calendar_harvests_are_in_the_truth(scenario: Scenario, tmp_path: Path) -> None:
    """Every crop is harvested every year by its phenology curve: the truth lists those harvests too (except
    the crop and year a scripted harvest already covers), and the pixels really show them."""
    from snapearth.sources.sample.build import _seasonal_harvests, grid_of

    model = place_model(scenario, "beauce")
    place = next(p for p in scenario.places if p.id == "beauce")
    (tmp_path / "truth" / "events").mkdir(parents=True)
    events = _seasonal_harvests(place, model, grid_of(scenario, "beauce"), [], tmp_path)
    ids = {e["id"] for e in events}
    assert "beauce-harvest-wheat-2023-calendar" not in ids  # scripted: recorded as itself
    assert "beauce-harvest-maize-2023-calendar" not in ids  # September-October: outside the period
    assert "beauce-harvest-rapeseed-2023-calendar" in ids  # June-July
    for ev in events:
        assert (tmp_path / "truth" / ev["extent"]).exists()
        area = model.ground.cover == Cover[ev["parameters"]["crop"].upper()]
        start = dt.date.fromisoformat(ev["start_datetime"][:10])
        end = dt.date.fromisoformat(ev["end_datetime"][:10])
        before = surface_on(model, start - dt.timedelta(days=10)).green[area].mean()
        after = surface_on(model, end + dt.timedelta(days=3)).green[area].mean()
        assert before > 0.1 > after, ev["id"]


def test_a_paddy_is_water_in_the_truth_where_the_water_shows(scenario: Scenario) -> None:
    model = place_model(scenario, "niamey")
    rice = model.ground.cover == Cover.RICE
    assert rice.sum() > 20
    # January: paddies ~60 % under water between bright sand, they reflect like dim sand; late April: ~90 %
    for day, shows in ((dt.date(2024, 1, 1), False), (dt.date(2024, 4, 30), True)):
        surface = surface_on(model, day)
        mndwi = _index(surface.reflectance, "B03", "B11")[rice]
        water = surface.state[rice] == State.WATER
        if shows:
            assert water.mean() > 0.9
            assert np.median(mndwi) > 0
        else:
            assert water.mean() < 0.1
            assert np.median(mndwi) < -0.1
        # the backscatter model renders a paddy at least half under water as open water: so does the radar truth
        assert (surface.sar_class[rice] == 0).mean() > 0.9
        assert (surface.radar_state[rice] == State.WATER).mean() > 0.9
