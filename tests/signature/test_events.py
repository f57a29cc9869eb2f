"""Events across time on small painted time series: flood (optical + radar), wildfire, harvest, snow."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shapely.geometry import shape

from snapearth.signature import compute_signature
from snapearth.signature.events import clean, detect_events, severity
from tests.signature.scenes import cover_map, s1_item, s2_item

SHAPE = (120, 120)
LAKE = {"water": (slice(0, 25), slice(0, 120))}
FLOODED = {"water": (slice(0, 60), slice(0, 120))}
FIELD = {"crop": (slice(80, 120), slice(0, 50))}


def _series(folder: Path) -> list[dict[str, Any]]:
    optical = [
        ("o1", datetime(2023, 5, 1), {**LAKE, **FIELD}),
        ("o2", datetime(2023, 5, 11), {**LAKE, **FIELD}),
        ("o3", datetime(2023, 5, 21), {**FLOODED, **FIELD}),
        ("o4", datetime(2023, 5, 31), {**FLOODED, **FIELD, "cloud": (slice(60, 80), slice(60, 120))}),
        ("o5", datetime(2023, 6, 10), {**LAKE, **FIELD, "burned": (slice(60, 100), slice(70, 110))}),
        (
            "o6",
            datetime(2023, 6, 15),
            {**LAKE, "bare": (slice(80, 120), slice(0, 50)), "burned": (slice(60, 100), slice(70, 110))},
        ),
        (
            "o7",
            datetime(2023, 7, 30),
            {**LAKE, "bare": (slice(80, 120), slice(0, 50)), "burned": (slice(60, 100), slice(70, 110))},
        ),
    ]
    items = []
    for name, when, layout in optical:
        item = s2_item(folder / name, name, cover_map(layout, SHAPE), when=when)
        items.append(compute_signature(item).apply(item))
    lake = np.zeros(SHAPE, bool)
    lake[:25] = True
    flooded = np.zeros(SHAPE, bool)
    flooded[:60] = True
    for name, when, water in (
        ("r1", datetime(2023, 5, 5), lake),
        ("r2", datetime(2023, 5, 17), lake),
        ("r3", datetime(2023, 5, 29), flooded),
        ("r4", datetime(2023, 6, 22), lake),
    ):
        item = s1_item(folder / name, name, water, when=when)
        items.append(compute_signature(item).apply(item))
    return items


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _series(tmp_path_factory.mktemp("series"))


def _by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        out.setdefault(ev["properties"]["signature:event_type"], []).append(ev)
    return out


def test_flood_seen_by_both_sensors_is_one_event(series: list[dict[str, Any]]) -> None:
    result = detect_events(series)
    floods = _by_type(result.events)["flood"]
    assert len(floods) == 1
    p = floods[0]["properties"]
    assert p["start_datetime"] == "2023-05-21T00:00:00Z"  # the first image showing it
    assert p["end_datetime"] == "2023-05-31T00:00:00Z"  # the last one (the radar of 29 May and o4 of 31 May)
    assert p["signature:evidence"] == ["optical", "radar"]
    assert p["signature:status"] == "closed"  # o5 saw the land dry again
    # 35 rows x 120 columns of 20 m pixels flooded: 1.68 km2
    assert p["signature:area_km2"] == pytest.approx(35 * 120 * 0.0004, rel=0.1)
    assert p["signature:before"] == "o2"
    assert {"o3", "r3", "o4"} <= set(p["signature:after"])
    rels = [link["rel"] for link in floods[0]["links"]]
    assert rels.count("before") == 1
    assert "after" in rels
    geometry = shape(floods[0]["geometry"])
    assert geometry.is_valid
    footprint = shape(series[0]["geometry"])
    assert footprint.intersection(geometry).area == pytest.approx(geometry.area, rel=0.01)
    assert p["signature:confidence"] >= 0.9


def test_wildfire_severity_and_harvest(series: list[dict[str, Any]]) -> None:
    kinds = _by_type(detect_events(series).events)
    (fire,) = kinds["wildfire"]
    p = fire["properties"]
    assert p["start_datetime"].startswith("2023-06-10")
    # NBR forest 0.63 -> burned -0.43: dNBR > 0.66, USGS "high"
    assert p["signature:severity"] == "high"
    assert p["signature:severity_value"] > 0.66
    assert p["signature:area_km2"] == pytest.approx(40 * 40 * 0.0004, rel=0.15)
    assert p["signature:status"] == "closed"  # no growth for more than 30 days at o7
    (harvest,) = kinds["harvest"]
    assert harvest["properties"]["start_datetime"].startswith("2023-06-15")
    assert "deforestation" not in kinds  # the field was green for 45 days only, never a standing forest
    assert "snow" not in kinds


def test_temporal_properties(series: list[dict[str, Any]]) -> None:
    updates = detect_events(series).item_updates
    assert updates["o3"]["signature:previous"] == "o2"
    assert updates["o3"]["signature:ndvi_change"] < -0.2  # a third of the scene turned to water
    assert updates["r3"]["signature:previous"] == "r2"  # same relative orbit
    assert updates["r3"]["signature:vv_change_db"] < -2
    assert updates["o5"]["signature:dnbr_mean"] > 0.1


def test_reruns_are_idempotent_and_new_images_extend_events(series: list[dict[str, Any]]) -> None:
    first = detect_events(series).events
    again = detect_events(list(reversed(series))).events
    assert sorted(e["id"] for e in first) == sorted(e["id"] for e in again)
    assert [e["geometry"] for e in sorted(first, key=lambda e: e["id"])] == [
        e["geometry"] for e in sorted(again, key=lambda e: e["id"])
    ]
    # without the last images, the flood is still open: the new images close it
    early = [i for i in series if i["properties"]["datetime"] < "2023-06-01"]
    (open_flood,) = _by_type(detect_events(early).events)["flood"]
    assert open_flood["properties"]["signature:status"] == "open"
    assert open_flood["id"] in {e["id"] for e in first}


def test_snow_season(tmp_path: Path) -> None:
    items = []
    for i, (when, layout) in enumerate(
        [
            (datetime(2023, 11, 1), {}),
            (datetime(2023, 11, 11), {"snow": (slice(0, 70), slice(0, 120))}),
            (datetime(2023, 12, 1), {"snow": (slice(0, 90), slice(0, 120))}),
            (datetime(2024, 4, 1), {}),
        ]
    ):
        item = s2_item(tmp_path / f"s{i}", f"s{i}", cover_map(layout, SHAPE), when=when)
        items.append(compute_signature(item).apply(item))
    (snow,) = _by_type(detect_events(items).events)["snow"]
    p = snow["properties"]
    assert (p["start_datetime"][:10], p["end_datetime"][:10]) == ("2023-11-11", "2023-12-01")
    assert p["signature:area_km2"] == pytest.approx(90 * 120 * 0.0004, rel=0.05)
    assert p["signature:status"] == "closed"


def test_clean_drops_specks_and_small_patches() -> None:
    mask = np.zeros((50, 50), bool)
    mask[5, 5] = True  # a speck
    mask[10:13, 10:13] = True  # 9 pixels
    mask[20:40, 20:40] = True
    out = clean(mask, min_pixels=10)
    assert not out[5, 5]
    assert not out[10:13, 10:13].any()
    assert out[20:40, 20:40].all()


def test_severity_classes() -> None:
    assert severity("wildfire", [0.2], 0.1) == ("low", 0.2)
    assert severity("wildfire", [0.5], 0.1)[0] == "moderate-high"
    assert severity("drought", [15.0], 0.5)[0] == "severe"
    assert severity("flood", [1.0], 0.3)[0] == "major"
