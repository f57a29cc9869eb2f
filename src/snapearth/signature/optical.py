"""Sentinel-2 per-pixel classification and its streaming statistics: one fused pass per strip (numba).

Rules (published thresholds, see ../shared/NOTES.md), all in ``_surface_class`` / ``_cloud_shadow``:
- clouds/shadows from SCL (8, 9, 10 / 3) when the product has it, else s2cloudless on L1C TOA bands, else a
  brightness/SWIR test (clouds are bright in blue *and* SWIR; snow is bright in blue but dark in SWIR);
- snow/ice: SNOMAP, NDSI > 0.4 with NIR > 0.11 and green > 0.1 (Hall et al.), or green > 0.12 (shaded snow);
- water: MNDWI > -0.1 (Xu's 0 keeps only pixels >= 80 % water against sand or soil; a pixel whose green reflectance
  is half water's has an MNDWI of -0.27 (forest) to +0.03 (rock) by its background, every land surface stays below
  -0.28) confirmed by NDWI > 0 (McFeeters) or a dark NIR, and not snow;
- burned: NBR < -0.15 (char about -0.3, a fresh scar keeping a tenth of scorched canopy -0.17; bare soils -0.12,
  whatever their brightness), a dark NIR (< 0.2: char is below 0.1, up to 1.6x that on slopes facing the sun: an
  illumination-proof margin, not a brightness test) and NDVI < 0.4 (a fresh scar keeps some standing, scorched
  canopy), the single-image evidence; dNBR classes (Key & Benson) are applied across time in ``events``;
- vegetation by NDVI (dense >= 0.6, moderate >= 0.4, sparse >= 0.2); built-up vs bare soil among the rest by
  NDBI > 0 and a grey visible spectrum (bare soils are much redder than blue).

One compiled loop per strip reads the raw DN of the six bands (any dtype), applies the item's scale/offset/nodata,
computes the four indices, classifies, and accumulates everything the signature needs (class counts per chip,
index histograms, sums, NDVI texture) while writing the class codes and the uint8 indices raster: no float32
reflectance or index planes, no boolean temporaries. Arithmetic is float32 like the numpy/numexpr version it
replaced (reflectance = float32(DN) * scale + offset, indices (a - b) / (a + b)), comparisons against the
thresholds in float64. ``cache=True`` keeps the machine code under ``__pycache__``: a fresh environment compiles
once (a few seconds), every later process (Dask workers included) loads it in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

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

# The bands the kernel reads, in this order.
KERNEL_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
INDICES = ("ndvi", "ndwi", "mndwi", "ndsi", "nbr")
# NDSI and MNDWI share one formula, (green - SWIR1) / (green + SWIR1): statistics are computed once.
STAT_INDICES = ("ndvi", "ndwi", "mndwi", "nbr")
_HIST_BINS = 400  # 0.005 wide over [-1, 1]
MASK_NODATA = 255
IMPLAUSIBLE_REFLECTANCE = 1.5

# Mask assets as lookup tables over the class codes: cloud (1 cloud, 2 shadow, 255 no data), water/snow/burn
# (1 yes, 0 no, 255 not observed: no data, cloud or shadow).
_NOT_CLEAR = (NODATA, CLOUD, SHADOW)


def _mask_lut(code: int) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    lut[code] = 1
    lut[list(_NOT_CLEAR)] = MASK_NODATA
    return lut


_CLOUD_LUT = np.zeros(256, dtype=np.uint8)
_CLOUD_LUT[CLOUD], _CLOUD_LUT[SHADOW], _CLOUD_LUT[NODATA] = 1, 2, MASK_NODATA
MASK_LUTS = {"cloud": _CLOUD_LUT, "water": _mask_lut(WATER), "snow": _mask_lut(SNOW), "burn": _mask_lut(BURNED)}


# -- the per-pixel rules ----------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _ratio(a: np.float32, b: np.float32) -> np.float32:
    """(a - b) / (a + b) in float32, 0 where a + b is ~0, clipped to [-1, 1]."""
    s = a + b
    if abs(s) > 1e-4:
        r = (a - b) / s
        if r > 1.0:
            return np.float32(1.0)
        if r < -1.0:
            return np.float32(-1.0)
        return r
    return np.float32(0.0)


@njit(cache=True, inline="always")
def _is_snow(b03: np.float32, b08: np.float32, mndwi: np.float32) -> bool:
    # SNOMAP; snow in deep shade keeps a green reflectance no water body has (> 0.12) while its NIR drops
    return bool(mndwi > 0.4 and b03 > 0.1 and (b08 > 0.11 or b03 > 0.12))


@njit(cache=True, inline="always")
def _spectral_cloud(b02: np.float32, b03: np.float32, b04: np.float32, b11: np.float32, snow: bool) -> bool:
    return bool(b02 > 0.2 and (b02 + b03 + b04) > 0.6 and b11 > 0.12 and not snow)


@njit(cache=True, inline="always")
def _spectral_shadow(b08: np.float32, b11: np.float32, mndwi: np.float32) -> bool:
    return bool(b08 < 0.1 and b11 < 0.07 and mndwi < 0)


@njit(cache=True, inline="always")
def _surface_class(
    b02: np.float32,
    b04: np.float32,
    b08: np.float32,
    b11: np.float32,
    ndvi: np.float32,
    ndwi: np.float32,
    mndwi: np.float32,
    nbr: np.float32,
    snow: bool,
) -> int:
    """The class of a clear pixel (by priority: snow, water, burned, vegetation, built-up, bare soil)."""
    if snow:
        return SNOW
    if mndwi > -0.1 and (ndwi > 0 or b08 < 0.1):
        return WATER
    if nbr < -0.15 and ndvi < 0.4 and b08 < 0.2:
        return BURNED
    if ndvi >= 0.6:
        return DENSE_VEG
    if ndvi >= 0.4:
        return MODERATE_VEG
    if ndvi >= 0.2:
        return SPARSE_VEG
    if (b11 - b08) > 0 and (b04 - b02) < 0.15 * (b04 + b02):
        return BUILT_UP
    return BARE_SOIL


@njit(cache=True, inline="always")
def _index_byte(value: np.float32) -> np.uint8:
    return np.uint8(np.rint((value + np.float32(1.0)) * np.float32(127.0)) + 1)


@njit(cache=True, inline="always")
def _reflectance(
    dn: float, scale: np.float32, offset: np.float32, nodata: float, has_nodata: bool
) -> tuple[np.float32, bool]:
    """float32(DN) * scale + offset, and whether the DN is data (not NaN, not the band's nodata)."""
    ok = not (dn != dn or (has_nodata and dn == nodata))
    return np.float32(dn) * scale + offset, ok


# -- the fused strip kernel ---------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _strip_kernel(  # one pass over everything, on purpose
    b02: np.ndarray,
    b03: np.ndarray,
    b04: np.ndarray,
    b08: np.ndarray,
    b11: np.ndarray,
    b12: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    nodata: np.ndarray,
    has_nodata: np.ndarray,
    invalid: np.ndarray,
    scl: np.ndarray,
    cloud: np.ndarray,
    chip_px: int,
    classes: np.ndarray,
    index_bytes: np.ndarray,
    chip_counts: np.ndarray,
    hist: np.ndarray,
    sums: np.ndarray,
    sumsq: np.ndarray,
    chip_sums: np.ndarray,
    chip_ndvi_sumsq: np.ndarray,
    texture: np.ndarray,
    chip_texture: np.ndarray,
) -> int:
    height, width = classes.shape
    n_chips = chip_counts.shape[0]
    use_invalid = invalid.shape[0] > 0
    use_scl = scl.shape[0] > 0
    use_cloud = cloud.shape[0] > 0
    limit = IMPLAUSIBLE_REFLECTANCE
    implausible = 0
    # scalars, not arrays, into the inlined helpers: array arguments would cost reference counting per pixel
    s02, s03, s04, s08, s11, s12 = scale[0], scale[1], scale[2], scale[3], scale[4], scale[5]
    o02, o03, o04, o08, o11, o12 = offset[0], offset[1], offset[2], offset[3], offset[4], offset[5]
    n02, n03, n04, n08, n11, n12 = nodata[0], nodata[1], nodata[2], nodata[3], nodata[4], nodata[5]
    h02, h03, h04, h08, h11, h12 = (
        has_nodata[0],
        has_nodata[1],
        has_nodata[2],
        has_nodata[3],
        has_nodata[4],
        has_nodata[5],
    )
    for i in range(height):
        prev_clear = False
        prev_ndvi = np.float32(0.0)
        for j in range(width):
            if j == 0:
                chip, chip_start = 0, 0
                chip_end = chip_px if n_chips > 1 else width
            elif j == chip_end:  # the last chip takes the rest of the row
                chip, chip_start = chip + 1, chip_end
                chip_end = chip_end + chip_px if chip < n_chips - 1 else width
            r02, ok02 = _reflectance(b02[i, j], s02, o02, n02, h02)
            r03, ok03 = _reflectance(b03[i, j], s03, o03, n03, h03)
            r04, ok04 = _reflectance(b04[i, j], s04, o04, n04, h04)
            r08, ok08 = _reflectance(b08[i, j], s08, o08, n08, h08)
            r11, ok11 = _reflectance(b11[i, j], s11, o11, n11, h11)
            r12, ok12 = _reflectance(b12[i, j], s12, o12, n12, h12)
            ok = ok02 and ok03 and ok04 and ok08 and ok11 and ok12 and not (use_invalid and invalid[i, j])
            if ok:
                implausible += int(
                    (r02 > limit) + (r03 > limit) + (r04 > limit) + (r08 > limit) + (r11 > limit) + (r12 > limit)
                )
            ndvi = _ratio(r08, r04)
            ndwi = _ratio(r03, r08)
            mndwi = _ratio(r03, r11)
            nbr = _ratio(r08, r12)
            cls = NODATA
            if ok:
                snow = _is_snow(r03, r08, mndwi)
                if use_scl:
                    s = scl[i, j]
                    if s == 0 or s == 1:
                        cls = NODATA
                    elif s == 8 or s == 9 or s == 10:
                        cls = CLOUD
                    elif s == SCL_SHADOW:
                        cls = SHADOW
                    else:
                        cls = _surface_class(r02, r04, r08, r11, ndvi, ndwi, mndwi, nbr, snow)
                else:
                    is_cloud = cloud[i, j] if use_cloud else _spectral_cloud(r02, r03, r04, r11, snow)
                    if is_cloud:
                        cls = CLOUD
                    elif _spectral_shadow(r08, r11, mndwi):
                        cls = SHADOW
                    else:
                        cls = _surface_class(r02, r04, r08, r11, ndvi, ndwi, mndwi, nbr, snow)
            classes[i, j] = cls
            chip_counts[chip, cls] += 1
            clear = cls > SHADOW
            if clear:
                index_bytes[0, i, j] = _index_byte(ndvi)
                index_bytes[1, i, j] = _index_byte(nbr)
                for k in range(4):  # STAT_INDICES order
                    value = ndvi if k == 0 else (ndwi if k == 1 else (mndwi if k == 2 else nbr))
                    q = int((value + np.float32(1.0)) * np.float32(200.0))
                    if q < _HIST_BINS:  # an index of exactly 1 falls in the sink bin, as it always did
                        hist[k, q] += 1
                    v = np.float64(value)
                    sums[k] += v
                    sumsq[k] += v * v
                    chip_sums[chip, k] += v
                chip_ndvi_sumsq[chip] += np.float64(ndvi) * np.float64(ndvi)
                if prev_clear:
                    g = np.float64(abs(ndvi - prev_ndvi))
                    left = chip - 1 if j == chip_start and chip > 0 else chip  # the chip of the pair's left pixel
                    texture[0] += g
                    texture[1] += 1.0
                    chip_texture[left, 0] += g
                    chip_texture[left, 1] += 1.0
            else:
                index_bytes[0, i, j] = 0
                index_bytes[1, i, j] = 0
            prev_clear = clear
            prev_ndvi = ndvi
    return implausible


_NONE_BOOL = np.zeros((0, 0), dtype=np.bool_)
_NONE_U8 = np.zeros((0, 0), dtype=np.uint8)


@dataclass
class StripResult:
    """One strip classified: class codes, the uint8 indices raster, and the count of implausible reflectances."""

    classes: np.ndarray  # uint8 class codes
    index_bytes: np.ndarray  # (2, h, w) uint8: NDVI, NBR as 1 + round((index + 1) * 127); 0 where not clear
    implausible: int = 0

    @property
    def clear(self) -> np.ndarray:
        out: np.ndarray = self.classes > SHADOW
        return out


def masks_of(classes: np.ndarray) -> dict[str, np.ndarray]:
    """The uint8 mask assets of class codes: cloud (1 cloud, 2 shadow), water/snow/burn (1 yes; 255 not clear)."""
    return {name: lut[classes] for name, lut in MASK_LUTS.items()}


def decode_index(raw: np.ndarray) -> np.ndarray:
    """The inverse of the indices raster's encoding (NaN where 0)."""
    out: np.ndarray = np.where(raw > 0, (raw.astype(np.float32) - 1) / 127.0 - 1.0, np.nan).astype(np.float32)
    return out


@dataclass
class OpticalAccumulator:
    """Streaming counts, histograms and sums over strips: whole-image and per-chip statistics."""

    chip_rows: int
    chip_cols: int
    chip_px: int
    hist: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)
    sumsq: np.ndarray = field(init=False)
    texture: np.ndarray = field(init=False)  # [sum |dNDVI|, pairs]
    chip_counts: np.ndarray = field(init=False)
    chip_sums: np.ndarray = field(init=False)
    chip_ndvi_sumsq: np.ndarray = field(init=False)
    chip_texture: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.hist = np.zeros((len(STAT_INDICES), _HIST_BINS + 1), dtype=np.int64)
        self.sums = np.zeros(len(STAT_INDICES), dtype=np.float64)
        self.sumsq = np.zeros(len(STAT_INDICES), dtype=np.float64)
        self.texture = np.zeros(2, dtype=np.float64)
        self.chip_counts = np.zeros((self.chip_rows, self.chip_cols, N_CLASSES), dtype=np.int64)
        self.chip_sums = np.zeros((self.chip_rows, self.chip_cols, len(STAT_INDICES)), dtype=np.float64)
        self.chip_ndvi_sumsq = np.zeros((self.chip_rows, self.chip_cols), dtype=np.float64)
        self.chip_texture = np.zeros((self.chip_rows, self.chip_cols, 2), dtype=np.float64)

    def add_strip(
        self,
        dn: Sequence[np.ndarray],
        scale: Sequence[float],
        offset: Sequence[float],
        nodata: Sequence[float | None],
        row_off: int,
        *,
        invalid: np.ndarray | None = None,
        scl: np.ndarray | None = None,
        cloud_mask: np.ndarray | None = None,
    ) -> StripResult:
        """Classify one strip from the raw DN of ``KERNEL_BANDS`` (reflectance = DN * scale + offset, ``nodata``
        DN invalid) and add it to the statistics. ``invalid`` marks pixels without data in some other band,
        ``scl`` the Sentinel-2 scene classification, ``cloud_mask`` clouds found by another detector."""
        if len(dn) != len(KERNEL_BANDS):
            raise ValueError(f"dn: {len(dn)} bands, expected {len(KERNEL_BANDS)} ({', '.join(KERNEL_BANDS)})")
        shape = dn[0].shape
        chip_row = min(row_off // self.chip_px, self.chip_rows - 1)
        classes = np.empty(shape, dtype=np.uint8)
        index_bytes = np.empty((2, *shape), dtype=np.uint8)
        kernel: Any = _strip_kernel  # numba's Dispatcher type knows nothing of the signature
        implausible = kernel(
            *dn,
            np.asarray(scale, dtype=np.float32),
            np.asarray(offset, dtype=np.float32),
            np.asarray([0.0 if v is None else v for v in nodata], dtype=np.float64),
            np.asarray([v is not None for v in nodata], dtype=np.bool_),
            _NONE_BOOL if invalid is None else invalid.astype(np.bool_, copy=False),
            _NONE_U8 if scl is None else scl.astype(np.uint8, copy=False),
            _NONE_BOOL if cloud_mask is None else cloud_mask.astype(np.bool_, copy=False),
            self.chip_px,
            classes,
            index_bytes,
            self.chip_counts[chip_row],
            self.hist,
            self.sums,
            self.sumsq,
            self.chip_sums[chip_row],
            self.chip_ndvi_sumsq[chip_row],
            self.texture,
            self.chip_texture[chip_row],
        )
        return StripResult(classes=classes, index_bytes=index_bytes, implausible=int(implausible))

    # -- results -------------------------------------------------------------------------------------------
    @property
    def counts(self) -> np.ndarray:
        out: np.ndarray = self.chip_counts.sum(axis=(0, 1))
        return out

    @property
    def valid_pixels(self) -> int:
        counts = self.counts
        return int(counts.sum() - counts[NODATA])

    @property
    def clear_pixels(self) -> int:
        counts = self.counts
        return int(sum(counts[c] for c in SURFACE_CLASSES))

    def percentile(self, index: int, q: float) -> float:
        hist = self.hist[index, :_HIST_BINS]
        total = hist.sum()
        if total == 0:
            return float("nan")
        cum = np.cumsum(hist)
        pos = int(np.searchsorted(cum, q * total, side="left"))
        return float(-1.0 + (pos + 0.5) / 200.0)


def classify_strip(
    refl: dict[str, np.ndarray],
    valid: np.ndarray,
    *,
    scl: np.ndarray | None = None,
    cloud_probability_mask: np.ndarray | None = None,
) -> StripResult:
    """Classify one strip of surface (or TOA) reflectance; ``valid`` marks pixels with data in every band."""
    height, width = valid.shape
    acc = OpticalAccumulator(1, 1, max(height, width, 1))
    bands = [np.ascontiguousarray(refl[k], dtype=np.float32) for k in KERNEL_BANDS]
    return acc.add_strip(
        bands, [1.0] * 6, [0.0] * 6, [None] * 6, 0, invalid=~valid, scl=scl, cloud_mask=cloud_probability_mask
    )
