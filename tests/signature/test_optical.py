"""The per-pixel pass: single-image burn evidence, and the fused kernel's statistics against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from snapearth.signature.optical import (
    BURNED,
    CLOUD,
    KERNEL_BANDS,
    MASK_NAMES,
    N_CLASSES,
    NODATA,
    SHADOW,
    SNOW,
    STAT_INDICES,
    WATER,
    OpticalAccumulator,
    classify_strip,
)

BANDS = ("B02", "B03", "B04", "B05", "B08", "B8A", "B11", "B12")
CHAR = np.array([0.04, 0.05, 0.06, 0.07, 0.09, 0.10, 0.17, 0.17])
FOREST = np.array([0.025, 0.05, 0.03, 0.09, 0.33, 0.35, 0.17, 0.08])
SOIL = np.array([0.08, 0.11, 0.15, 0.18, 0.22, 0.24, 0.32, 0.28])


def _classes(*spectra: np.ndarray) -> np.ndarray:
    stack = np.stack(spectra, axis=1)[:, None, :].astype(np.float32)  # (band, 1, n)
    refl = {b: stack[i] for i, b in enumerate(BANDS)}
    valid = np.ones(stack.shape[1:], bool)
    return classify_strip(refl, valid).classes[0]


def test_fresh_scar_with_scorched_canopy_is_burned_dark_soil_is_not() -> None:
    scar = 0.9 * CHAR + 0.1 * FOREST  # NDVI ~0.33: a fresh forest scar keeps some canopy
    classes = _classes(CHAR, scar, SOIL, 0.85 * SOIL)  # soil in light shade: NBR -0.12, NIR 0.19
    assert classes[0] == BURNED
    assert classes[1] == BURNED
    assert classes[2] != BURNED
    assert classes[3] != BURNED


def _reference_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.abs(s) > 1e-4, (a - b) / s, 0).astype(np.float32)
    return np.clip(r, -1, 1)


def test_fused_pass_statistics_match_numpy() -> None:
    """The kernel's bookkeeping (chip counts, histograms, sums, texture, masks, index bytes, implausible count)
    against plain numpy on its own class codes, with nodata, SCL no-data and a last chip wider than the others."""
    rng = np.random.default_rng(7)
    height, width, chip_px = 100, 130, 50  # 2 x 3 chips, the last column of chips 30 px wide
    scale, offset = 1e-4, -0.1
    dn = [rng.integers(1000, 6000, (height, width)).astype(np.uint16) for _ in KERNEL_BANDS]
    dn[3][rng.random((height, width)) < 0.3] = rng.integers(3000, 9000)  # some vegetation
    dn[0][5, :40] = 0  # nodata in B02
    dn[4][7, 3] = 20000  # reflectance 1.9: implausible
    scl = rng.choice(np.array([0, 3, 4, 5, 6, 8, 9, 11], dtype=np.uint8), (height, width), p=[0.02] + [0.14] * 7)
    acc = OpticalAccumulator(2, 3, chip_px)
    strips = [
        acc.add_strip([d[r : r + chip_px] for d in dn], [scale] * 6, [offset] * 6, [0] * 6, r, scl=scl[r : r + chip_px])
        for r in (0, chip_px)
    ]
    classes = np.concatenate([s.classes for s in strips])
    refl = {
        k: d.astype(np.float32) * np.float32(scale) + np.float32(offset) for k, d in zip(KERNEL_BANDS, dn, strict=True)
    }
    valid = np.all([d != 0 for d in dn], axis=0)
    assert (classes[~valid] == NODATA).all()
    assert (classes[np.isin(scl, (0, 1))] == NODATA).all()
    assert (classes[valid & np.isin(scl, (8, 9, 10))] == CLOUD).all()
    clear = classes > SHADOW
    index = {
        "ndvi": _reference_ratio(refl["B08"], refl["B04"]),
        "ndwi": _reference_ratio(refl["B03"], refl["B08"]),
        "mndwi": _reference_ratio(refl["B03"], refl["B11"]),
        "nbr": _reference_ratio(refl["B08"], refl["B12"]),
    }
    chip_of_col = np.minimum(np.arange(width) // chip_px, 2)
    for r in range(2):
        rows = slice(r * chip_px, (r + 1) * chip_px)
        for c in range(3):
            block = classes[rows][:, chip_of_col == c]
            assert (acc.chip_counts[r, c] == np.bincount(block.ravel(), minlength=N_CLASSES)).all()
            ndvi = index["ndvi"][rows][:, chip_of_col == c][clear[rows][:, chip_of_col == c]].astype(np.float64)
            assert acc.chip_sums[r, c, 0] == pytest.approx(ndvi.sum(), rel=1e-9, abs=1e-9)
            assert acc.chip_ndvi_sumsq[r, c] == pytest.approx((ndvi * ndvi).sum(), rel=1e-9, abs=1e-9)
    for k, name in enumerate(STAT_INDICES):
        values = index[name][clear]
        bins = ((values + np.float32(1)) * np.float32(200)).astype(np.int64)
        assert (acc.hist[k, :400] == np.bincount(bins[bins < 400], minlength=400)).all()
        assert acc.sums[k] == pytest.approx(values.astype(np.float64).sum(), rel=1e-9)
        assert acc.sumsq[k] == pytest.approx((values.astype(np.float64) ** 2).sum(), rel=1e-9)
    pair = clear[:, 1:] & clear[:, :-1]
    grad = np.abs(np.diff(index["ndvi"], axis=1)).astype(np.float64) * pair
    assert acc.texture[1] == pair.sum()
    assert acc.texture[0] == pytest.approx(grad.sum(), rel=1e-9)
    for c in range(3):  # a pair belongs to the chip of its left pixel
        left = chip_of_col[:-1] == c
        assert acc.chip_texture[:, c, 1].sum() == pair[:, left].sum()
    masks = np.concatenate([s.masks for s in strips], axis=1)
    assert MASK_NAMES == ("cloud", "water", "snow", "burn")
    expected_cloud = np.select([classes == NODATA, classes == CLOUD, classes == SHADOW], [255, 1, 2], 0)
    assert (masks[0] == expected_cloud).all()
    for k, code in ((1, WATER), (2, SNOW), (3, BURNED)):
        assert (masks[k] == np.where(clear, (classes == code).astype(np.uint8), 255)).all()
    index_bytes = np.concatenate([s.index_bytes for s in strips], axis=1)
    for k, name in enumerate(("ndvi", "nbr")):
        expected = np.where(clear, np.rint((index[name] + 1.0) * 127.0) + 1, 0).astype(np.uint8)
        assert (index_bytes[k] == expected).all()
    assert sum(s.implausible for s in strips) == sum(int(((v > 1.5) & valid).sum()) for v in refl.values())
    assert sum(s.implausible for s in strips) == 1
