"""Sentinel-1 water: hysteresis (regions below the threshold that hold a seed) against speckle, and strip halos."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio

from snapearth.signature import compute_signature
from snapearth.signature.radar import SEED_MARGIN_DB, WaterRegions, water_mask
from tests.signature.scenes import s1_item, write_cog


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
