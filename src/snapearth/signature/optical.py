"""Sentinel-2 per-pixel classification and its streaming statistics (numpy + numexpr, one strip at a time).

Rules (published thresholds, see ../shared/NOTES.md):
- clouds/shadows from SCL (8, 9, 10 / 3) when the product has it, else s2cloudless on L1C TOA bands, else a
  brightness/SWIR test (clouds are bright in blue *and* SWIR; snow is bright in blue but dark in SWIR);
- snow/ice: SNOMAP, NDSI > 0.4 with NIR > 0.11 and green > 0.1 (Hall et al.), or green > 0.12 (shaded snow);
- water: MNDWI > 0 (Xu) confirmed by NDWI > 0 (McFeeters) or a dark NIR, and not snow;
- burned: NBR < -0.1 with a very dark NIR (< 0.15: char; bare soils with the same NBR are twice as bright) and
  NDVI < 0.4 (a fresh scar keeps some standing, scorched canopy), the single-image evidence; dNBR classes
  (Key & Benson) are applied across time in ``events``;
- vegetation by NDVI (dense >= 0.6, moderate >= 0.4, sparse >= 0.2); built-up vs bare soil among the rest by
  NDBI > 0 and a grey visible spectrum (bare soils are much redder than blue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numexpr as ne
import numpy as np

# Class codes of the per-pixel classification (the order is the land-cover breakdown's order).
NODATA, CLOUD, SHADOW, WATER, SNOW, BURNED, BUILT_UP, BARE_SOIL, SPARSE_VEG, MODERATE_VEG, DENSE_VEG = range(11)
N_CLASSES = 11
LAND_COVER = {
    "water": WATER,
    "snow_ice": SNOW,
    "burned": BURNED,
    "built_up": BUILT_UP,
    "bare_soil": BARE_SOIL,
    "sparse_vegetation": SPARSE_VEG,
    "moderate_vegetation": MODERATE_VEG,
    "dense_vegetation": DENSE_VEG,
}
SURFACE_CLASSES = tuple(LAND_COVER.values())

SCL_CLOUD = (8, 9, 10)
SCL_SHADOW = 3
SCL_NODATA = (0, 1)  # no data, saturated/defective

INDICES = ("ndvi", "ndwi", "mndwi", "ndsi", "nbr")
# NDSI and MNDWI share one formula, (green - SWIR1) / (green + SWIR1): statistics are computed once.
STAT_INDICES = ("ndvi", "ndwi", "mndwi", "nbr")
_HIST_BINS = 400  # 0.005 wide over [-1, 1]
MASK_NODATA = 255


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = ne.evaluate("where(abs(a + b) > 1e-4, (a - b) / (a + b), 0)").astype(np.float32)
    np.clip(out, -1.0, 1.0, out=out)
    return out


@dataclass
class StripResult:
    """One strip classified: class codes, indices and the masks written as assets."""

    classes: np.ndarray  # uint8 class codes
    indices: dict[str, np.ndarray]
    clear: np.ndarray


def classify_strip(
    refl: dict[str, np.ndarray],
    valid: np.ndarray,
    *,
    scl: np.ndarray | None = None,
    cloud_probability_mask: np.ndarray | None = None,
) -> StripResult:
    """Classify one strip of surface (or TOA) reflectance; ``valid`` marks pixels with data in every band."""
    b02, b04, b08, b11 = refl["B02"], refl["B04"], refl["B08"], refl["B11"]
    ndvi = _ratio(b08, b04)
    ndwi = _ratio(refl["B03"], b08)
    mndwi = _ratio(refl["B03"], b11)
    nbr = _ratio(b08, refl["B12"])
    env: dict[str, np.ndarray] = {"b02": b02, "b03": refl["B03"], "b04": b04, "b08": b08, "b11": b11}
    env.update(ndvi=ndvi, ndwi=ndwi, mndwi=mndwi, nbr=nbr)

    def rule(expression: str) -> np.ndarray:
        result: np.ndarray = ne.evaluate(expression, local_dict=env)
        return result

    # SNOMAP; snow in deep shade keeps a green reflectance no water body has (> 0.12) while its NIR drops
    snow = rule("(mndwi > 0.4) & (b03 > 0.1) & ((b08 > 0.11) | (b03 > 0.12))")
    env["snow"] = snow
    if scl is not None:
        valid = valid & ~np.isin(scl, SCL_NODATA)
        cloud = np.isin(scl, SCL_CLOUD)
        shadow = scl == SCL_SHADOW
    else:
        if cloud_probability_mask is not None:
            cloud = cloud_probability_mask.astype(bool)
        else:
            cloud = rule("(b02 > 0.2) & ((b02 + b03 + b04) > 0.6) & (b11 > 0.12) & ~snow")
        env["cloud"] = cloud
        shadow = rule("(b08 < 0.1) & (b11 < 0.07) & (mndwi < 0) & ~cloud")

    classes = np.full(valid.shape, BARE_SOIL, dtype=np.uint8)
    built = rule("(ndvi < 0.2) & ((b11 - b08) > 0) & ((b04 - b02) < 0.15 * (b04 + b02))")
    classes[built] = BUILT_UP
    classes[ndvi >= 0.2] = SPARSE_VEG
    classes[ndvi >= 0.4] = MODERATE_VEG
    classes[ndvi >= 0.6] = DENSE_VEG
    classes[rule("(nbr < -0.1) & (ndvi < 0.4) & (b08 < 0.15)")] = BURNED
    classes[rule("(mndwi > 0) & ((ndwi > 0) | (b08 < 0.1)) & ~snow")] = WATER
    classes[snow] = SNOW
    classes[shadow] = SHADOW
    classes[cloud] = CLOUD
    classes[~valid] = NODATA
    clear = classes > SHADOW
    return StripResult(
        classes=classes,
        indices={"ndvi": ndvi, "ndwi": ndwi, "mndwi": mndwi, "ndsi": mndwi, "nbr": nbr},
        clear=clear,
    )


def masks_of(strip: StripResult) -> dict[str, np.ndarray]:
    """The uint8 mask assets of a strip: cloud (1 cloud, 2 shadow), water/snow/burn (1 yes; 255 not clear)."""
    c = strip.classes
    cloud = np.zeros(c.shape, dtype=np.uint8)
    cloud[c == CLOUD] = 1
    cloud[c == SHADOW] = 2
    cloud[c == NODATA] = MASK_NODATA
    out = {"cloud": cloud}
    for name, code in (("water", WATER), ("snow", SNOW), ("burn", BURNED)):
        m = (c == code).astype(np.uint8)
        m[~strip.clear] = MASK_NODATA
        out[name] = m
    return out


def indices_raster(strip: StripResult) -> np.ndarray:
    """uint8 (NDVI, NBR) where not clear is 0, else 1 + round((index + 1) * 127) (steps of 0.008): what
    ``events`` compares across time, compact enough to cost little to write and read back."""
    stack = np.stack([strip.indices["ndvi"], strip.indices["nbr"]])
    out = (np.rint((stack + 1.0) * 127.0) + 1).astype(np.uint8)
    out[:, ~strip.clear] = 0
    return out


def decode_index(raw: np.ndarray) -> np.ndarray:
    """The inverse of ``indices_raster`` (NaN where 0)."""
    out: np.ndarray = np.where(raw > 0, (raw.astype(np.float32) - 1) / 127.0 - 1.0, np.nan).astype(np.float32)
    return out


@dataclass
class OpticalAccumulator:
    """Streaming counts, histograms and sums over strips: whole-image and per-chip statistics."""

    chip_rows: int
    chip_cols: int
    chip_px: int
    counts: np.ndarray = field(init=False)
    hist: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)
    sumsq: np.ndarray = field(init=False)
    texture: np.ndarray = field(init=False)  # [sum |dNDVI|, pairs]
    chip_counts: np.ndarray = field(init=False)
    chip_sums: np.ndarray = field(init=False)
    chip_ndvi_sumsq: np.ndarray = field(init=False)
    chip_texture: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(N_CLASSES, dtype=np.int64)
        self.hist = np.zeros((len(STAT_INDICES), _HIST_BINS + 1), dtype=np.int64)
        self.sums = np.zeros(len(STAT_INDICES), dtype=np.float64)
        self.sumsq = np.zeros(len(STAT_INDICES), dtype=np.float64)
        self.texture = np.zeros(2, dtype=np.float64)
        self.chip_counts = np.zeros((self.chip_rows, self.chip_cols, N_CLASSES), dtype=np.int64)
        self.chip_sums = np.zeros((self.chip_rows, self.chip_cols, len(STAT_INDICES)), dtype=np.float64)
        self.chip_ndvi_sumsq = np.zeros((self.chip_rows, self.chip_cols), dtype=np.float64)
        self.chip_texture = np.zeros((self.chip_rows, self.chip_cols, 2), dtype=np.float64)

    def add(self, strip: StripResult, row_off: int) -> None:
        chip_row = min(row_off // self.chip_px, self.chip_rows - 1)
        clear = strip.clear
        width = clear.shape[1]
        starts = np.arange(0, width, self.chip_px)[: self.chip_cols]
        col_chip = np.minimum(np.arange(width) // self.chip_px, self.chip_cols - 1)
        keyed = strip.classes.astype(np.int32) + N_CLASSES * col_chip[None, :]
        per_chip = np.bincount(keyed.ravel(), minlength=N_CLASSES * self.chip_cols).reshape(self.chip_cols, N_CLASSES)
        self.chip_counts[chip_row] += per_chip
        self.counts += per_chip.sum(axis=0)
        clear_f = clear.astype(np.float32)
        for i, name in enumerate(STAT_INDICES):
            values = strip.indices[name]
            q = ne.evaluate("where(clear, (values + 1) * 200, 400)").astype(np.int32)
            np.clip(q, 0, _HIST_BINS, out=q)
            delta = np.bincount(q.ravel(), minlength=_HIST_BINS + 1)
            delta[_HIST_BINS] = 0  # the sink bin of the pixels that are not clear
            self.hist[i] += delta
            masked = values * clear_f
            col_sums = masked.sum(axis=0, dtype=np.float64)
            self.sums[i] += col_sums.sum()
            self.sumsq[i] += np.einsum("ij,ij->", masked, values, dtype=np.float64)
            self.chip_sums[chip_row, :, i] += np.add.reduceat(col_sums, starts)
            if name == "ndvi":
                self.chip_ndvi_sumsq[chip_row] += np.add.reduceat((masked * values).sum(axis=0), starts)
                pair = clear[:, 1:] & clear[:, :-1]
                grad = np.abs(np.diff(values, axis=1)) * pair
                gcols = grad.sum(axis=0, dtype=np.float64)
                pcols = pair.sum(axis=0)
                self.texture += (gcols.sum(), pcols.sum())
                pstarts = starts[starts < width - 1]
                if len(pstarts):
                    self.chip_texture[chip_row, : len(pstarts), 0] += np.add.reduceat(gcols, pstarts)
                    self.chip_texture[chip_row, : len(pstarts), 1] += np.add.reduceat(pcols, pstarts)

    # -- results -------------------------------------------------------------------------------------------
    @property
    def valid_pixels(self) -> int:
        return int(self.counts.sum() - self.counts[NODATA])

    @property
    def clear_pixels(self) -> int:
        return int(sum(self.counts[c] for c in SURFACE_CLASSES))

    def percentile(self, index: int, q: float) -> float:
        hist = self.hist[index, :_HIST_BINS]
        total = hist.sum()
        if total == 0:
            return float("nan")
        cum = np.cumsum(hist)
        pos = int(np.searchsorted(cum, q * total, side="left"))
        return float(-1.0 + (pos + 0.5) / 200.0)
