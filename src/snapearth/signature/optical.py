"""Sentinel-2 per-pixel classification and its streaming statistics: one fused pass per strip (numba).

Rules (published thresholds, see ../shared/NOTES.md), in ``_is_snow``, ``_spectral_cloud``, ``_spectral_shadow``
and ``_surface_class``:
- clouds/shadows from SCL (8, 9, 10 / 3) when the product has it, else s2cloudless on L1C TOA bands, else a
  brightness/SWIR test (clouds are bright in blue *and* SWIR; snow is bright in blue but dark in SWIR);
- snow/ice: SNOMAP, NDSI > 0.4 with NIR > 0.11 and green > 0.1 (Hall et al.), or green > 0.12 (shaded snow);
- water: MNDWI > -0.2 (Xu's 0 keeps only pixels >= 80 % water against sand or soil; a pixel whose green reflectance
  is half water's has an MNDWI of -0.27 (forest) to +0.03 (rock) by its background, every dry land surface stays
  below -0.28; -0.1 lost shorelines and paddy edges mostly under water) confirmed by NDWI > 0 (McFeeters) or a dark
  NIR, and not snow;
- burned: NBR < -0.15 (char about -0.3, a fresh scar keeping a tenth of scorched canopy -0.17; bare soils -0.12,
  whatever their brightness), a dark NIR (< 0.2: char is below 0.1, up to 1.6x that on slopes facing the sun: an
  illumination-proof margin, not a brightness test) and NDVI < 0.4 (a fresh scar keeps some standing, scorched
  canopy), the single-image evidence; dNBR classes (Key & Benson) are applied across time in ``events``;
- vegetation by NDVI (dense >= 0.6, moderate >= 0.4, sparse >= 0.2); built-up vs bare soil among the rest by
  NDBI > 0 and a grey visible spectrum (bare soils are much redder than blue).

One compiled kernel per strip (numba) reads the raw DN of the six bands (any dtype), applies the item's
scale/offset/nodata, computes the four indices, classifies, writes the class codes, the mask and the indices-raster
bytes, and accumulates everything the signature needs (class counts per chip, index histograms, sums, NDVI texture):
no float32 reflectance planes, no boolean temporaries. Per row, the per-pixel work runs as short branch-free loops
that LLVM vectorises (few arrays each, so its runtime alias checks stay within bounds), then two scalar loops do
the statistics: the histogram counts (bins computed by a vectorised loop) and, chip by chip, the class counts, sums
and texture. Arithmetic is float32 like the numpy/numexpr version it replaced (reflectance =
float32(DN) * scale + offset, indices (a - b) / (a + b)), comparisons against the thresholds in float64: the same
classes, masks and statistics. ``cache=True`` keeps the machine code under ``__pycache__`` (or NUMBA_CACHE_DIR):
a fresh environment compiles once per input dtype (~4 s on 2 busy cores), every later process (Dask workers
included) loads it in ~0.6 s.
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

# The mask assets, in the order of ``StripResult.masks``: cloud (1 cloud, 2 shadow, 255 no data), water/snow/burn
# (1 yes, 0 no, 255 not observed: no data, cloud or shadow).
MASK_NAMES = ("cloud", "water", "snow", "burn")


# -- the per-pixel rules ------------------------------------------------------------------------------------------
# Written as branch-free boolean arithmetic (``&``, ``|``, conditional expressions that compile to selects) so that
# LLVM vectorises the per-pixel pass; the priority of the classes is the order of the selects in ``_surface_class``.
@njit(cache=True, inline="always", error_model="numpy")
def _ratio(a: np.float32, b: np.float32) -> np.float32:
    """(a - b) / (a + b) in float32, 0 where a + b is ~0, clipped to [-1, 1]."""
    s = a + b
    r = (a - b) / s
    r = np.float32(1.0) if r > 1.0 else r
    r = np.float32(-1.0) if r < -1.0 else r
    return r if abs(s) > 1e-4 else np.float32(0.0)


@njit(cache=True, inline="always")
def _is_snow(b03: np.float32, b08: np.float32, mndwi: np.float32) -> bool:
    # SNOMAP; snow in deep shade keeps a green reflectance no water body has (> 0.12) while its NIR drops
    return bool((mndwi > 0.4) & (b03 > 0.1) & ((b08 > 0.11) | (b03 > 0.12)))


@njit(cache=True, inline="always")
def _spectral_cloud(b02: np.float32, b03: np.float32, b04: np.float32, b11: np.float32, snow: bool) -> bool:
    return bool((b02 > 0.2) & ((b02 + b03 + b04) > 0.6) & (b11 > 0.12) & (snow == False))  # noqa: E712


@njit(cache=True, inline="always")
def _spectral_shadow(b08: np.float32, b11: np.float32, mndwi: np.float32) -> bool:
    return bool((b08 < 0.1) & (b11 < 0.07) & (mndwi < 0))


@njit(cache=True, inline="always")
def _surface_class(
    b02: np.float32,
    b03: np.float32,
    b04: np.float32,
    b08: np.float32,
    b11: np.float32,
    ndvi: np.float32,
    ndwi: np.float32,
    mndwi: np.float32,
    nbr: np.float32,
) -> int:
    """The class of a clear pixel (by priority: snow, water, burned, vegetation, built-up, bare soil)."""
    built = ((b11 - b08) > 0) & ((b04 - b02) < 0.15 * (b04 + b02))
    water = (mndwi > -0.2) & ((ndwi > 0) | (b08 < 0.1))
    burned = (nbr < -0.15) & (ndvi < 0.4) & (b08 < 0.2)
    c = BUILT_UP if built else BARE_SOIL
    c = SPARSE_VEG if ndvi >= 0.2 else c
    c = MODERATE_VEG if ndvi >= 0.4 else c
    c = DENSE_VEG if ndvi >= 0.6 else c
    c = BURNED if burned else c
    c = WATER if water else c
    return SNOW if _is_snow(b03, b08, mndwi) else c


@njit(cache=True, inline="always")
def _index_byte(value: np.float32) -> np.uint8:
    return np.uint8(np.rint((value + np.float32(1.0)) * np.float32(127.0)) + 1)


# -- the fused strip kernel ---------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def _strip_kernel(  # one pass over the pixels (vectorised), one over the statistics, per row
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
    has_invalid: int,
    scl: np.ndarray,
    cloud: np.ndarray,
    mode: int,
    chip_px: int,
    classes: np.ndarray,
    masks: np.ndarray,
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
    use_scl = mode == 0
    use_cloud = mode == 1
    use_invalid = has_invalid != 0
    limit = IMPLAUSIBLE_REFLECTANCE
    # scalars, not arrays, in the loops (and into inlined helpers: array arguments cost reference counting)
    s02, s03, s04, s08, s11, s12 = scale[0], scale[1], scale[2], scale[3], scale[4], scale[5]
    o02, o03, o04, o08, o11, o12 = offset[0], offset[1], offset[2], offset[3], offset[4], offset[5]
    n02, n03, n04, n08, n11, n12 = nodata[0], nodata[1], nodata[2], nodata[3], nodata[4], nodata[5]
    # a band without nodata: compare with NaN, never equal
    n02 = n02 if has_nodata[0] else np.nan
    n03 = n03 if has_nodata[1] else np.nan
    n04 = n04 if has_nodata[2] else np.nan
    n08 = n08 if has_nodata[3] else np.nan
    n11 = n11 if has_nodata[4] else np.nan
    n12 = n12 if has_nodata[5] else np.nan
    row_index = np.empty((4, width), dtype=np.float32)  # NDVI, NDWI, MNDWI, NBR of one row
    ok_buf = np.empty(width, dtype=np.uint8)
    # the strip's histograms, flat (index k's bins at k * stride; the last of each is the dump bin), added to
    # ``hist`` at the end
    dump = hist.shape[1]
    stride = dump + 1
    bins = np.empty((4, width), dtype=np.uint16)
    hist_counts = np.zeros(4 * stride, dtype=np.int64)
    implausible = 0
    for i in range(height):
        ndvi_row, ndwi_row, mndwi_row, nbr_row = row_index[0], row_index[1], row_index[2], row_index[3]
        # 1. per pixel, in short loops over the row that LLVM vectorises (few arrays each: its runtime alias
        # checks stay within bounds): data mask, indices, class, mask and index bytes
        x02, x03, x04, x08, x11, x12 = b02[i], b03[i], b04[i], b08[i], b11[i], b12[i]
        ok_row, class_row = ok_buf, classes[i]
        inv_row = invalid[i]
        for j in range(width):  # data: finite (d - d == 0: not NaN, not infinite), not the band's nodata
            d02, d03, d04, d08, d11, d12 = x02[j], x03[j], x04[j], x08[j], x11[j], x12[j]
            ok = (
                (d02 - d02 == 0) & (d03 - d03 == 0) & (d04 - d04 == 0) & (d08 - d08 == 0) & (d11 - d11 == 0)
                & (d12 - d12 == 0)
                & (d02 != n02) & (d03 != n03) & (d04 != n04) & (d08 != n08) & (d11 != n11) & (d12 != n12)
            )  # fmt: skip
            if use_invalid:
                ok = ok & (inv_row[j] == 0)
            ok_row[j] = ok
            # reflectances above 1.5 where every band has data: a wrong scale
            r02 = np.float32(d02) * s02 + o02
            r03 = np.float32(d03) * s03 + o03
            r04 = np.float32(d04) * s04 + o04
            r08 = np.float32(d08) * s08 + o08
            r11 = np.float32(d11) * s11 + o11
            r12 = np.float32(d12) * s12 + o12
            high = (r02 > limit) + (r03 > limit) + (r04 > limit) + (r08 > limit) + (r11 > limit) + (r12 > limit)
            implausible += high if ok else 0
        for j in range(width):  # the four indices and the class
            r02 = np.float32(x02[j]) * s02 + o02
            r03 = np.float32(x03[j]) * s03 + o03
            r04 = np.float32(x04[j]) * s04 + o04
            r08 = np.float32(x08[j]) * s08 + o08
            r11 = np.float32(x11[j]) * s11 + o11
            r12 = np.float32(x12[j]) * s12 + o12
            ndvi = _ratio(r08, r04)
            ndwi = _ratio(r03, r08)
            mndwi = _ratio(r03, r11)
            nbr = _ratio(r08, r12)
            ndvi_row[j] = ndvi
            ndwi_row[j] = ndwi
            mndwi_row[j] = mndwi
            nbr_row[j] = nbr
            class_row[j] = _surface_class(r02, r03, r04, r08, r11, ndvi, ndwi, mndwi, nbr)
        if use_scl:
            scl_row = scl[i]
            for j in range(width):
                sv = scl_row[j]
                c = class_row[j]
                c = SHADOW if sv == SCL_SHADOW else c
                c = CLOUD if (sv == 8) | (sv == 9) | (sv == 10) else c
                class_row[j] = NODATA if (sv == 0) | (sv == 1) | (ok_row[j] == 0) else c
        else:
            cloud_row = cloud[i]
            for j in range(width):
                r02 = np.float32(x02[j]) * s02 + o02
                r03 = np.float32(x03[j]) * s03 + o03
                r04 = np.float32(x04[j]) * s04 + o04
                r08 = np.float32(x08[j]) * s08 + o08
                r11 = np.float32(x11[j]) * s11 + o11
                mndwi = mndwi_row[j]
                snow = _is_snow(r03, r08, mndwi)
                is_cloud = (cloud_row[j] != 0) if use_cloud else _spectral_cloud(r02, r03, r04, r11, snow)
                c = class_row[j]
                c = SHADOW if _spectral_shadow(r08, r11, mndwi) else c
                c = CLOUD if is_cloud else c
                class_row[j] = NODATA if ok_row[j] == 0 else c
        for k in range(4):
            mask_row = masks[k, i]
            code = (CLOUD, WATER, SNOW, BURNED)[k]
            for j in range(width):
                c = class_row[j]
                if k == 0:
                    mask_row[j] = MASK_NODATA if c == NODATA else (1 if c == CLOUD else (2 if c == SHADOW else 0))
                else:
                    mask_row[j] = MASK_NODATA if c <= SHADOW else (1 if c == code else 0)
        ndvi_bytes, nbr_bytes = index_bytes[0, i], index_bytes[1, i]
        for j in range(width):
            ndvi_bytes[j] = _index_byte(ndvi_row[j]) if class_row[j] > SHADOW else 0
        for j in range(width):
            nbr_bytes[j] = _index_byte(nbr_row[j]) if class_row[j] > SHADOW else 0
        # 2. statistics. Histograms: the bins in a vectorised loop (pixels that are not clear: a dump bin), counted
        # in a branch-free one (inside the chip loop below, the same increments cost twice as much). An index of
        # exactly 1 falls in the sink bin (400), as it always did.
        for k in range(4):
            index_row, bin_row, base = row_index[k], bins[k], k * stride
            for j in range(width):
                bin_ = np.int32((index_row[j] + np.float32(1.0)) * np.float32(200.0))
                bin_row[j] = np.uint16(base + (bin_ if class_row[j] > SHADOW else dump))
        bin0, bin1, bin2, bin3 = bins[0], bins[1], bins[2], bins[3]
        for j in range(width):
            hist_counts[bin0[j]] += 1
            hist_counts[bin1[j]] += 1
            hist_counts[bin2[j]] += 1
            hist_counts[bin3[j]] += 1
        # sums, class counts and texture, chip by chip (the last chip takes the rest of the row)
        for chip in range(n_chips):
            j0 = chip * chip_px
            j1 = width if chip == n_chips - 1 else min(j0 + chip_px, width)
            a0 = a1 = a2 = a3 = q0 = q1 = q2 = q3 = 0.0
            grad = pairs = 0.0
            for j in range(j0, j1):
                c = classes[i, j]
                chip_counts[chip, c] += 1
                if c <= SHADOW:
                    continue
                v0, v1, v2, v3 = ndvi_row[j], ndwi_row[j], mndwi_row[j], nbr_row[j]
                w0, w1, w2, w3 = np.float64(v0), np.float64(v1), np.float64(v2), np.float64(v3)
                a0 += w0
                a1 += w1
                a2 += w2
                a3 += w3
                q0 += w0 * w0
                q1 += w1 * w1
                q2 += w2 * w2
                q3 += w3 * w3
                if j + 1 < width and classes[i, j + 1] > SHADOW:  # NDVI texture: pairs of clear neighbours
                    grad += np.float64(abs(ndvi_row[j + 1] - v0))
                    pairs += 1.0
            sums[0] += a0
            sums[1] += a1
            sums[2] += a2
            sums[3] += a3
            sumsq[0] += q0
            sumsq[1] += q1
            sumsq[2] += q2
            sumsq[3] += q3
            chip_sums[chip, 0] += a0
            chip_sums[chip, 1] += a1
            chip_sums[chip, 2] += a2
            chip_sums[chip, 3] += a3
            chip_ndvi_sumsq[chip] += q0
            texture[0] += grad
            texture[1] += pairs
            chip_texture[chip, 0] += grad
            chip_texture[chip, 1] += pairs
    for k in range(4):
        for b in range(dump):
            hist[k, b] += hist_counts[k * stride + b]
    return implausible


@dataclass
class StripResult:
    """One strip classified: class codes, the mask assets' and the indices raster's bytes, and the count of
    implausible reflectances (above 1.5 where every band has data)."""

    classes: np.ndarray  # uint8 class codes
    masks: np.ndarray  # (4, h, w) uint8, MASK_NAMES
    index_bytes: np.ndarray  # (2, h, w) uint8: NDVI, NBR as 1 + round((index + 1) * 127); 0 where not clear
    implausible: int = 0


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
        masks = np.empty((len(MASK_NAMES), *shape), dtype=np.uint8)
        index_bytes = np.empty((2, *shape), dtype=np.uint8)
        kernel: Any = _strip_kernel  # numba's Dispatcher type knows nothing of the signature
        implausible = kernel(
            *dn,
            np.asarray(scale, dtype=np.float32),
            np.asarray(offset, dtype=np.float32),
            np.asarray([0.0 if v is None else v for v in nodata], dtype=np.float64),
            np.asarray([v is not None for v in nodata], dtype=np.bool_),
            np.zeros(shape, np.uint8) if invalid is None else invalid.astype(np.uint8, copy=False),
            0 if invalid is None else 1,
            # placeholders (never read, so never touched: calloc'd pages cost nothing) when absent
            np.zeros(shape, np.uint8) if scl is None else scl.astype(np.uint8, copy=False),
            np.zeros(shape, np.uint8) if cloud_mask is None else cloud_mask.astype(np.uint8, copy=False),
            0 if scl is not None else (1 if cloud_mask is not None else 2),
            self.chip_px,
            classes,
            masks,
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
        return StripResult(classes=classes, masks=masks, index_bytes=index_bytes, implausible=int(implausible))

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
