"""Single-image burn evidence: char with scorched canopy is burned, dark bare soil is not."""

from __future__ import annotations

import numpy as np

from snapearth.signature.optical import BURNED, classify_strip

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
