"""Sentinel-1 water: a minimum-error threshold on the VV backscatter histogram, with a fixed fallback.

Open water is a specular reflector (VV sigma0 around -20 dB and below), land a diffuse one (-15..-5 dB). But the
darkest land is not far from water: dry sand and wet snow sit around -17 dB, and a scene's water is often a small
share of it. Otsu's threshold (equal-variance classes, biased towards the larger one) then splits the land's own
modes or lands inside the sand/snow mode; so the threshold is Kittler & Illingworth's minimum-error threshold (two
Gaussian classes of their own sizes and variances), computed on the darker half of the image (the pixels below its
median backscatter: the water and the darkest land, not the bright land modes), then on the whole histogram if
that gives no valley. It is kept when it falls between open water (about -23 dB and below) and land (about -16 dB
and up; a valley above that is taken at -16 dB when no pixel lies in between) and both classes are real (water at
least 0.5 % of the pixels, class means more than 5 dB apart); otherwise the fixed threshold applies: -20 dB on VV
(water stays below it at C band; the -18 dB often used takes half of the sand and wet snow for water).

GRD products are already multi-looked (ENL ~4.4); a further boxcar or median filter would erase rivers and paddies
a pixel or two wide (on the sample archive a 3x3 boxcar loses almost all of Beauce's water), so the speckle is
handled by hysteresis instead (``water_mask``): the pixels below the threshold are grouped into 4-connected regions,
and a region is water only if it holds at least one confident seed, a pixel ``SEED_MARGIN_DB`` (2.5 dB) below the
threshold (region growing from seeds, as in Martinis et al. 2009 / 2015 and the hysteresis step of Canny). A speckle
excursion of the darkest land (dry sand, wet snow: one pixel, a few dB under its class mean) rarely reaches the
seed level, and then only as a small isolated region; water regions, even one pixel wide, hold pixels well below it
and keep all their pixels down to the threshold, edges included. Wet snow and slopes facing away from the radar are
as dark as water over whole slopes, seeds included: VV (and VH, darkened alike by the terrain) cannot tell them
apart in one image.

That is the single-image mask ``compute`` writes. The events stage, which sees every acquisition of the place,
then rewrites it with ``water_with_context`` (see there): wet snow is excluded where an optical view close in time
saw snow (the exclusion layer of operational services such as Copernicus GFM), and water that persists over the
orbit's last acquisitions is recognised in their mean intensity (a multi-temporal multi-look), which recovers the
mixed shore and paddy pixels one speckled, wind-roughened date leaves above the threshold. Either input may be
missing (no optical view within ``SNOW_CONTEXT_DAYS``, the first acquisition of an orbit): the rule then falls back
to the single-image one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

FALLBACK_VV_THRESHOLD_DB = -20.0
THRESHOLD_RANGE_DB = (-23.0, -16.0)  # between open water (-23 dB and below) and land (-16 dB and up)
_HIST_RANGE = (-35.0, 5.0)
_BINS = 400
_MIN_CLASS = 20  # pixels in each class for a variance to mean something
SEED_MARGIN_DB = 2.5  # a water region must hold a pixel this far below the threshold


def minimum_error_threshold(values: np.ndarray) -> float | None:
    """Kittler & Illingworth's minimum-error threshold of ``values`` (dB), or None (too few values, no valley)."""
    finite = values[np.isfinite(values)]
    if finite.size < 100:
        return None
    hist, edges = np.histogram(np.clip(finite, *_HIST_RANGE), bins=_BINS, range=_HIST_RANGE)
    centers = (edges[:-1] + edges[1:]) / 2
    h = hist.astype(np.float64)
    n0 = np.cumsum(h)
    total = n0[-1]
    n1 = total - n0
    s0 = np.cumsum(h * centers)
    q0 = np.cumsum(h * centers**2)
    ok = (n0 >= _MIN_CLASS) & (n1 >= _MIN_CLASS)
    if not ok.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = s0 / n0
        m1 = (s0[-1] - s0) / n1
        v0 = q0 / n0 - m0**2
        v1 = (q0[-1] - q0) / n1 - m1**2
        p0, p1 = n0 / total, n1 / total
        # J(t) = 1 + 2 [P0 ln s0 + P1 ln s1] - 2 [P0 ln P0 + P1 ln P1]  (variances floored at a bin width)
        floor = ((_HIST_RANGE[1] - _HIST_RANGE[0]) / _BINS) ** 2
        cost = p0 * np.log(np.maximum(v0, floor)) + p1 * np.log(np.maximum(v1, floor))
        cost -= 2 * (p0 * np.log(p0) + p1 * np.log(p1))
    cost = np.where(ok & np.isfinite(cost), cost, np.inf)
    best = int(np.argmin(cost))
    if not np.isfinite(cost[best]):
        return None
    return float(edges[best + 1])


def water_threshold(vv_db: np.ndarray) -> tuple[float, str]:
    """(threshold in dB, method): the minimum-error threshold when it separates real classes, else the fallback."""
    finite = vv_db[np.isfinite(vv_db)]
    if finite.size < 100:
        return FALLBACK_VV_THRESHOLD_DB, "fixed"
    darker = finite[finite < np.median(finite)]
    for sample in (darker, finite):
        threshold = minimum_error_threshold(sample)
        if threshold is not None and threshold > THRESHOLD_RANGE_DB[1]:
            # a valley above the range is kept (at the range's top) when it is empty down to there
            gap = (finite >= THRESHOLD_RANGE_DB[1]) & (finite < threshold)
            threshold = THRESHOLD_RANGE_DB[1] if gap.mean() < 0.005 else None
        if threshold is None or threshold < THRESHOLD_RANGE_DB[0]:
            continue
        low = finite[finite < threshold]
        high = finite[finite >= threshold]
        if low.size >= 0.005 * finite.size and high.size and float(high.mean() - low.mean()) > 5.0:
            return threshold, "minimum-error"
    return FALLBACK_VV_THRESHOLD_DB, "fixed"


def _regions(vv_db: np.ndarray, ok: np.ndarray, threshold: float) -> tuple[np.ndarray, int, np.ndarray]:
    """(labels of the 4-connected regions below ``threshold``, their count, which hold a seed; index 0 = none)."""
    with np.errstate(invalid="ignore"):
        candidate = ok & (vv_db < threshold)
        seeds = candidate & (vv_db < threshold - SEED_MARGIN_DB)
    labels, count = ndimage.label(candidate)
    seeded = np.zeros(count + 1, dtype=bool)
    seeded[labels[seeds]] = True
    seeded[0] = False
    return labels, int(count), seeded


def water_mask(vv_db: np.ndarray, ok: np.ndarray, threshold: float) -> np.ndarray:
    """Water (bool) of a whole image: the 4-connected regions of valid pixels below ``threshold`` that hold a seed
    (a pixel at least ``SEED_MARGIN_DB`` below it)."""
    labels, _, seeded = _regions(vv_db, ok, threshold)
    out: np.ndarray = seeded[labels]
    return out


class WaterRegions:
    """``water_mask`` for an image read strip by strip, exactly: ``add`` every strip top to bottom (the regions are
    joined across strip edges with a union-find and the seeded ones are known once all are seen), ``finish``, then
    ``mask`` each strip again (the same strips, read again: labelling is deterministic)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._parent = np.zeros(1, dtype=np.int64)  # union-find over the image's region ids; 0 = no region
        self._seeded = np.zeros(1, dtype=bool)
        self._offsets: list[int] = []
        self._last_row: np.ndarray | None = None
        self._keep: np.ndarray | None = None

    def _find(self, x: int) -> int:
        parent = self._parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    def add(self, vv_db: np.ndarray, ok: np.ndarray) -> None:
        labels, count, seeded = _regions(vv_db, ok, self.threshold)
        offset = len(self._parent) - 1
        self._offsets.append(offset)
        self._parent = np.concatenate([self._parent, np.arange(offset + 1, offset + count + 1, dtype=np.int64)])
        self._seeded = np.concatenate([self._seeded, seeded[1:]])
        first = np.where(labels[0] > 0, labels[0] + offset, 0)
        if self._last_row is not None:
            touching = (self._last_row > 0) & (first > 0)
            for a, b in set(zip(self._last_row[touching].tolist(), first[touching].tolist(), strict=True)):
                ra, rb = self._find(a), self._find(b)
                if ra != rb:
                    self._parent[max(ra, rb)] = min(ra, rb)
        self._last_row = np.where(labels[-1] > 0, labels[-1] + offset, 0)

    def finish(self) -> None:
        root = self._parent
        while True:  # pointer jumping: every id to its root
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        seeded_root = np.zeros(len(root), dtype=bool)
        np.logical_or.at(seeded_root, root, self._seeded)
        self._keep = seeded_root[root]
        self._keep[0] = False

    def mask(self, index: int, vv_db: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Water (bool) of strip ``index`` (0-based, in the order of ``add``), given the same pixels again."""
        if self._keep is None:
            raise RuntimeError("WaterRegions.mask before finish")
        labels, _, _ = _regions(vv_db, ok, self.threshold)
        out: np.ndarray = self._keep[np.where(labels > 0, labels + self._offsets[index], 0)]
        return out


# -- context: optical snow and the orbit's time series (applied by the events stage, ``events.PlaceTracker``) ---
SNOW_CONTEXT_DAYS = 60  # an optical view of a pixel this close in time (before or after) says whether snow lies
HISTORY_ACQUISITIONS = 3  # the acquisition and the previous ones of its relative orbit averaged for persistence
HISTORY_MARGIN_DB = 2.0  # persistent water is kept when the acquisition itself is below threshold + this


def temporal_mean_db(stack: list[np.ndarray]) -> np.ndarray:
    """dB of the mean linear intensity of co-registered sigma0 images (dB, NaN where not valid): a multi-temporal
    multi-look. A pixel is NaN unless every image has it."""
    linear = np.zeros(stack[0].shape, np.float64)
    for db in stack:
        linear += np.power(10.0, db.astype(np.float64) / 10.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = (10.0 * np.log10(linear / len(stack))).astype(np.float32)
    return out


def water_with_context(
    vv_db: np.ndarray,
    ok: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    history_db: np.ndarray | None = None,
) -> tuple[np.ndarray, float, str]:
    """(water, threshold dB, method) of one image with what other acquisitions of the place say.

    ``exclude``: pixels where the nearest clear optical view (within ``SNOW_CONTEXT_DAYS``) saw snow or ice: wet
    snow is as dark as open water at C band (Nagler & Rott 2000), and snow-free slopes facing away from the radar
    darken it further; VV and VH cannot tell it from water in one image. Like the exclusion layer of Copernicus'
    Global Flood Monitoring, those pixels are not classified as water, and they do not enter the threshold's
    histogram (a scene that is mostly wet snow otherwise gets a valley inside the snow).
    ``history_db``: ``temporal_mean_db`` of this image and the previous ``HISTORY_ACQUISITIONS - 1`` of the same
    relative orbit (same geometry: the terrain darkens the same slopes alike). Speckle (ENL ~4.4 per product) and
    the wind's roughening of one date average out over the dates, so water that persists (rivers, lakes, a paddy
    for its season) stands out below the threshold where a single date leaves a third of its mixed edge pixels
    above it; such a pixel is water if this date does not contradict it (VV below threshold +
    ``HISTORY_MARGIN_DB``; a drained field is back at land level, >= 4 dB above). New water (a flood) needs no
    history: the single-image rule (``water_mask``) still finds it. Without either input, this is ``water_mask``
    with ``water_threshold``.
    """
    usable = ok if exclude is None else ok & ~exclude
    threshold, method = water_threshold(vv_db[usable])
    water = water_mask(vv_db, usable, threshold)
    if history_db is not None:
        with np.errstate(invalid="ignore"):
            water |= usable & (history_db < threshold) & (vv_db < threshold + HISTORY_MARGIN_DB)
    return water, threshold, method
