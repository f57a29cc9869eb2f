"""Sentinel-1 water: hysteresis (regions below the threshold that hold a seed) against speckle, and strip halos."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from snapearth.signature import compute_signature
from snapearth.signature.events import detect_events
from snapearth.signature.radar import (
    HISTORY_MARGIN_DB,
    SEED_MARGIN_DB,
    WaterRegions,
    temporal_mean_db,
    water_mask,
    water_threshold,
    water_with_context,
)
from tests.signature.scenes import cover_map, s1_item, s2_item, write_cog


def _speckled(mean: np.ndarray, seed: int) -> np.ndarray:
    """sigma0 dB of a 4-look product: gamma(4.4) intensity speckle, in dB."""
    rng = np.random.default_rng(seed)
    return (mean + 10 * np.log10(rng.gamma(4.4, 1 / 4.4, mean.shape))).astype(np.float32)


def test_speckle_of_dark_land_is_dropped_and_narrow_water_kept() -> None:
    shape = (200, 200)
    river = np.zeros(shape, bool)
    river[:, 100] = True  # one pixel wide
    river[50:53, :] = True  # a canal, three pixels wide
    vv = _speckled(np.where(river, -23.0, -17.0), seed=3)  # water beside dry sand / wet snow
    ok = np.ones(shape, bool)
    threshold = -20.0
    plain = vv < threshold
    mask = water_mask(vv, ok, threshold)
    false_plain, false_mask = int((plain & ~river).sum()), int((mask & ~river).sum())
    assert false_plain > 500  # the speckle tail of the sand crosses the threshold
    assert false_mask < false_plain / 3  # what is left touches the water (mixed edges) or is a rare deep excursion
    # water pixels above the seed level are kept when their region reaches it: nothing below the threshold is lost
    assert int((mask & river).sum()) >= 0.97 * int((plain & river).sum())
    assert (vv[mask] < threshold).all()
    # every kept region holds a seed; invalid pixels are never water
    ok[:, :10] = False
    assert not water_mask(vv, ok, threshold)[:, :10].any()
    only_shallow = np.full(shape, threshold - SEED_MARGIN_DB / 2, np.float32)
    assert not water_mask(only_shallow, np.ones(shape, bool), threshold).any()
    only_shallow[5, 5] = threshold - SEED_MARGIN_DB - 0.1
    assert water_mask(only_shallow, np.ones(shape, bool), threshold).all()


def test_regions_crossing_strips_find_their_seeds(tmp_path: Path) -> None:
    # a long lake just below the threshold whose only seeds lie in its first rows (first strip): every strip must
    # keep its part of the lake, as the whole image read at once does
    water = np.zeros((200, 200), bool)
    water[20:180, 40:60] = True
    item = s1_item(tmp_path / "a", "S1-HALO", water, when=datetime(2023, 7, 1, 6))
    rng = np.random.default_rng(5)
    vv = np.where(water, -17.5, -9.0) + rng.normal(0, 0.2, water.shape)
    vv[20:24, 40:60] = -30.0
    write_cog(
        Path(item["assets"]["vv"]["href"]), np.rint(vv / 0.01).astype(np.int16), res=20.0, nodata=-32768, dtype="int16"
    )
    masks = []
    for chip in (16, 256):
        sig = compute_signature(item, out_dir=tmp_path / f"out{chip}", chip_pixels=chip)
        threshold = sig.properties["signature:water_threshold_db"]
        assert threshold - SEED_MARGIN_DB < -18 < -17 < threshold  # the body (-17.5 +- 0.2 dB) is water, but no seed
        with rasterio.open(sig.assets["signature-water"]["href"]) as ds:
            masks.append(ds.read(1))
    assert (masks[1] == 1)[water].mean() > 0.99
    assert (masks[1] == 1)[~water].mean() < 0.001
    assert (masks[0] == masks[1]).all()


def test_strip_by_strip_equals_the_whole_image() -> None:
    # speckled sand with a U-shaped lake (its arms meet only in the last strip; the seeds are in one arm)
    shape = (120, 90)
    lake = np.zeros(shape, bool)
    lake[5:110, 10:14] = True
    lake[5:110, 60:64] = True
    lake[106:110, 10:64] = True
    mean = np.where(lake, -18.5, -15.0)
    mean[5:8, 60:64] = -30.0
    vv = _speckled(mean, seed=11)
    ok = np.ones(shape, bool)
    ok[40:44, :] = False  # a row of no data cuts nothing that the lake's bottom does not join again
    whole = water_mask(vv, ok, -17.0)
    assert whole[lake & ok].mean() > 0.6  # the seedless arm is kept through the bottom of the U
    for rows in (1, 7, 32, 120):
        regions = WaterRegions(-17.0)
        strips = [slice(r, min(r + rows, shape[0])) for r in range(0, shape[0], rows)]
        for s in strips:
            regions.add(vv[s], ok[s])
        regions.finish()
        stitched = np.concatenate([regions.mask(i, vv[s], ok[s]) for i, s in enumerate(strips)])
        assert (stitched == whole).all(), rows


def test_context_excludes_snow_and_keeps_persistent_water() -> None:
    shape = (200, 200)
    ok = np.ones(shape, bool)
    lake = np.zeros(shape, bool)
    lake[150:190, 20:180] = True
    snow = np.zeros(shape, bool)
    snow[0:60, :] = True  # a wet snow slope turned away from the radar: as dark as the lake
    edge = np.zeros(shape, bool)
    edge[140:150, 20:180] = True  # the lake's shore band, mixed pixels
    drained = np.zeros(shape, bool)
    drained[100:120, 20:100] = True  # a paddy drained since the previous dates
    today = _speckled(np.select([lake, snow, drained], [-23.0, -24.0, -10.0], -10.0), seed=21)
    alone, threshold, _ = water_with_context(today, ok)
    assert threshold == water_threshold(today)[0]  # no context: the single-image rule
    assert (alone == water_mask(today, ok, threshold)).all()
    assert alone[snow].mean() > 0.9  # one image cannot tell wet snow from water

    masked, masked_threshold, method = water_with_context(today, ok, exclude=snow)
    assert not masked[snow].any()
    assert masked[lake].mean() > 0.95
    assert method == "minimum-error"
    assert masked_threshold != threshold  # the snow left the histogram

    # the shore band sits above the threshold today (wind, mixed pixels), below it on the previous dates
    shore = np.where(edge, -16.5, today).astype(np.float32)
    before = _speckled(np.where(lake | edge | drained, -23.0, -10.0), seed=22)
    before2 = _speckled(np.where(lake | edge | drained, -23.0, -10.0), seed=23)
    single, t1, _ = water_with_context(shore, ok, exclude=snow)
    assert t1 < -16.5 < t1 + HISTORY_MARGIN_DB
    assert not single[edge].any()
    history = temporal_mean_db([shore, before, before2])
    with_history, t2, _ = water_with_context(shore, ok, exclude=snow, history_db=history)
    assert t1 == t2
    assert with_history[edge].mean() > 0.9  # persistent water, and today does not contradict it
    assert with_history[drained].mean() < 0.02  # land level today: drained, whatever the past says
    assert not with_history[snow].any()
    assert (with_history | ~single).all()  # history only adds


def test_temporal_mean_is_the_mean_intensity() -> None:
    a = np.array([[-10.0, -20.0]], np.float32)
    b = np.array([[-20.0, np.nan]], np.float32)
    out = temporal_mean_db([a, b])
    assert out[0, 0] == pytest.approx(10 * np.log10((0.1 + 0.01) / 2), abs=1e-5)
    assert np.isnan(out[0, 1])  # a pixel not valid on every date has no mean


def _vv_item(folder: Path, item_id: str, mean: np.ndarray, when: datetime, seed: int) -> dict[str, Any]:
    item = s1_item(folder, item_id, np.zeros(mean.shape, bool), when=when)
    vv = _speckled(mean, seed)
    write_cog(
        Path(item["assets"]["vv"]["href"]), np.rint(vv / 0.01).astype(np.int16), res=20.0, nodata=-32768, dtype="int16"
    )
    return compute_signature(item).apply(item)


def _radar_mask(item: dict[str, Any]) -> np.ndarray:
    with rasterio.open(item["assets"]["signature-water"]["href"]) as ds:
        out: np.ndarray = ds.read(1)
        return out


def test_events_stage_rewrites_radar_water_with_optical_snow(tmp_path: Path) -> None:
    shape = (120, 120)
    snow = np.zeros(shape, bool)
    snow[0:50, :] = True
    lake = np.zeros(shape, bool)
    lake[95:115, 10:110] = True
    radar = _vv_item(tmp_path / "r", "R1", np.select([lake, snow], [-23.0, -24.0], -10.0), datetime(2024, 1, 14), 31)
    assert (_radar_mask(radar)[snow] == 1).mean() > 0.9  # the single-image mask: wet snow is water

    # no optical view of the place: the mask stays what one image says (no exclusion, no history)
    alone = detect_events([radar])
    assert (_radar_mask(radar)[snow] == 1).mean() > 0.9
    assert alone.item_updates["R1"]["signature:water_context"] == []

    # a clear optical view 4 days before saw the snow
    optical = s2_item(
        tmp_path / "o", "O1", cover_map({"snow": (slice(0, 50), slice(0, 120))}, shape), when=datetime(2024, 1, 10)
    )
    optical = compute_signature(optical).apply(optical)
    with_optical = detect_events([optical, radar])
    mask = _radar_mask(radar)
    assert (mask[snow] == 1).mean() < 0.01
    assert (mask[lake] == 1).mean() > 0.95
    props = with_optical.item_updates["R1"]
    assert props["signature:water_context"] == ["optical-snow"]
    assert props["signature:water_excluded_fraction"] == pytest.approx(snow.mean(), abs=0.02)
    assert props["signature:water_fraction"] == pytest.approx(float((mask == 1).mean()), abs=1e-6)

    # a view 90 days away says nothing about today's snow; the rewrite is undone from the VV
    far = s2_item(
        tmp_path / "f", "F1", cover_map({"snow": (slice(0, 50), slice(0, 120))}, shape), when=datetime(2023, 10, 16)
    )
    detect_events([compute_signature(far).apply(far), radar])
    assert (_radar_mask(radar)[snow] == 1).mean() > 0.9
