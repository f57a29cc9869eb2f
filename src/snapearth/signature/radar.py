"""Sentinel-1 water: Otsu's threshold on the VV backscatter histogram, with a fixed fallback.

Open water is a specular reflector (VV sigma0 around -20 dB and below), land a diffuse one (-15..-5 dB).
GRD products are already multi-looked (ENL ~4.4); a further boxcar would erase rivers and paddies a pixel or
two wide, so pixels are thresholded as they are. Wet snow and slopes facing away from the radar are as dark
as water: VV alone cannot tell them apart (``events`` never takes radar water on snow for a flood).
Otsu's threshold is kept only when the histogram really is bimodal in that range; otherwise the commonly
used fixed threshold applies (e.g. UN-SPIDER's recommended practice uses about -18 dB on VV).
"""

from __future__ import annotations

import numpy as np

FALLBACK_VV_THRESHOLD_DB = -18.0
OTSU_RANGE_DB = (-24.0, -15.0)
_HIST_RANGE = (-35.0, 5.0)
_BINS = 400


def otsu_threshold(values: np.ndarray) -> float | None:
    """Otsu's threshold of ``values`` (dB), or None when there are too few values."""
    finite = values[np.isfinite(values)]
    if finite.size < 100:
        return None
    hist, edges = np.histogram(np.clip(finite, *_HIST_RANGE), bins=_BINS, range=_HIST_RANGE)
    centers = (edges[:-1] + edges[1:]) / 2
    weight = hist.astype(np.float64)
    w0 = np.cumsum(weight)
    w1 = w0[-1] - w0
    m0 = np.cumsum(weight * centers)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def water_threshold(vv_db: np.ndarray) -> tuple[float, str]:
    """(threshold in dB, method): Otsu when it falls in the plausible water/land valley, else the fallback."""
    finite = vv_db[np.isfinite(vv_db)]
    threshold = otsu_threshold(finite)
    if threshold is not None and OTSU_RANGE_DB[0] <= threshold <= OTSU_RANGE_DB[1]:
        low = finite[finite < threshold]
        high = finite[finite >= threshold]
        # Both modes must be real: a water class of at least 0.5% and well separated means (> 5 dB).
        if low.size >= 0.005 * finite.size and high.size and float(high.mean() - low.mean()) > 5.0:
            return threshold, "otsu"
    return FALLBACK_VV_THRESHOLD_DB, "fixed"
