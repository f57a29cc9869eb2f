"""Band access for one item: scale/offset/nodata from its ``raster:bands``, checked, read window by window.

Every band of an item is read onto one analysis grid (the coarsest of the bands needed, 20 m for Sentinel-2
L2A, as Sen2Cor itself works), strip by strip, so memory stays bounded whatever the image size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from snapearth.errors import InvalidInputError

Item = dict[str, Any]

# Sentinel-2 L2A reflectance bands the signature needs, and the L1C set s2cloudless needs.
S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
S1_BANDS = ("vv", "vh")

# DN*scale for Sentinel-2 reflectance is ~1e-4; anything far from it is a wrong raster:bands scale.
_REFLECTANCE_SCALE_RANGE = (2e-5, 5e-4)
_DB_SCALE_RANGE = (1e-4, 1.0)


class SignatureInputError(InvalidInputError):
    """An item cannot get a signature: a missing, corrupt or mis-described asset, or an empty image."""


@dataclass(frozen=True)
class BandSpec:
    key: str
    href: str
    scale: float
    offset: float
    nodata: float | None


def asset_href(item: Item, key: str) -> str:
    asset = item.get("assets", {}).get(key)
    if not isinstance(asset, dict) or not asset.get("href"):
        raise SignatureInputError(f"assets.{key}: missing from the item", field=f"assets.{key}")
    href = str(asset["href"])
    return href[len("file://") :] if href.startswith("file://") else href


def has_assets(item: Item, keys: Sequence[str]) -> bool:
    assets = item.get("assets", {})
    return all(isinstance(assets.get(k), dict) and assets[k].get("href") for k in keys)


def processing_baseline(item: Item) -> float | None:
    """The S2 processing baseline (``05.09`` -> 5.09) from ``s2:processing_baseline`` or ``processing:version``."""
    props = item.get("properties", {})
    for name in ("s2:processing_baseline", "processing:version"):
        value = props.get(name)
        if value is None:
            continue
        try:
            return float(str(value))
        except ValueError:
            continue
    return None


def band_spec(item: Item, key: str, *, kind: str) -> BandSpec:
    """Scale, offset and nodata of asset ``key`` from the item, refusing implausible ones.

    ``kind`` is ``reflectance`` (S2 L2A/L1C DN) or ``db`` (S1 sigma0 in dB), used for the plausibility check.
    """
    href = asset_href(item, key)
    field = f"assets.{key}.raster:bands"
    bands = item["assets"][key].get("raster:bands")
    if not isinstance(bands, list) or not bands or not isinstance(bands[0], dict):
        raise SignatureInputError(f"{field}: missing; scale, offset and nodata must come from the item", field=field)
    band = bands[0]
    scale = float(band.get("scale", 1.0))
    offset = float(band.get("offset", 0.0))
    nodata = band.get("nodata")
    nodata_value = None if nodata is None else float(nodata)
    if not math.isfinite(scale) or not math.isfinite(offset):
        raise SignatureInputError(f"{field}: scale {scale} / offset {offset} are not finite numbers", field=field)
    low, high = _REFLECTANCE_SCALE_RANGE if kind == "reflectance" else _DB_SCALE_RANGE
    if not low <= abs(scale) <= high:
        raise SignatureInputError(
            f"{field}: scale {scale} is implausible for {kind} (expected within [{low}, {high}])", field=field
        )
    if kind == "reflectance":
        baseline = processing_baseline(item)
        if baseline is not None and key != "SCL":
            expected = -1000 * scale if baseline >= 4.0 else 0.0
            if not math.isclose(offset, expected, abs_tol=1e-6):
                raise SignatureInputError(
                    f"{field}: offset {offset} contradicts processing baseline {baseline:05.2f} "
                    f"(expected {expected:g}: -1000 DN from baseline 04.00, 0 before)",
                    field=field,
                )
    return BandSpec(key=key, href=href, scale=scale, offset=offset, nodata=nodata_value)


@dataclass(frozen=True)
class Grid:
    """The analysis grid: shape, transform and CRS every band is read onto."""

    height: int
    width: int
    transform: Any
    crs: Any

    @property
    def pixel_area_m2(self) -> float:
        return float(abs(self.transform.a * self.transform.e))


class BandReader:
    """Opens the bands of one item and reads them strip by strip onto the coarsest band's grid."""

    def __init__(self, hrefs: dict[str, str], *, strip_rows: int = 256) -> None:
        self._stack = ExitStack()
        self.datasets: dict[str, Any] = {}
        try:
            for key, href in hrefs.items():
                try:
                    self.datasets[key] = self._stack.enter_context(rasterio.open(href))
                except (RasterioError, OSError) as exc:
                    raise SignatureInputError(
                        f"assets.{key}: cannot open {href}: {exc}", field=f"assets.{key}"
                    ) from exc
            coarse_key = min(self.datasets, key=lambda k: self.datasets[k].width)
            coarse = self.datasets[coarse_key]
            self.grid = Grid(coarse.height, coarse.width, coarse.transform, coarse.crs)
            self._check_alignment()
        except BaseException:
            self._stack.close()
            raise
        self.strip_rows = strip_rows

    def _check_alignment(self) -> None:
        ref = self.grid
        tolerance = abs(ref.transform.a) / 2
        ref_bounds = rasterio.transform.array_bounds(ref.height, ref.width, ref.transform)
        for key, ds in self.datasets.items():
            if ds.crs != ref.crs:
                raise SignatureInputError(f"assets.{key}: CRS {ds.crs} differs from {ref.crs}", field=f"assets.{key}")
            if any(abs(a - b) > tolerance for a, b in zip(ds.bounds, ref_bounds, strict=True)):
                raise SignatureInputError(
                    f"assets.{key}: extent {tuple(ds.bounds)} differs from the other bands' {ref_bounds}",
                    field=f"assets.{key}",
                )

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> BandReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def windows(self) -> Iterator[Window]:
        for row in range(0, self.grid.height, self.strip_rows):
            yield Window(0, row, self.grid.width, min(self.strip_rows, self.grid.height - row))

    def read(self, key: str, window: Window, *, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Band ``key`` over ``window`` of the analysis grid, raw DN (nearest resampling for finer bands)."""
        ds = self.datasets[key]
        fy = ds.height / self.grid.height
        fx = ds.width / self.grid.width
        src = Window(window.col_off * fx, window.row_off * fy, window.width * fx, window.height * fy)
        shape = out_shape or (int(window.height), int(window.width))
        try:
            data: np.ndarray = ds.read(1, window=src, out_shape=shape, resampling=Resampling.nearest)
        except (RasterioError, OSError) as exc:
            raise SignatureInputError(f"assets.{key}: unreadable ({exc})", field=f"assets.{key}") from exc
        return data

    def overview(self, key: str, max_pixels: int = 1_000_000) -> np.ndarray:
        """A decimated whole-image read of ``key`` (served from COG overviews when present)."""
        ds = self.datasets[key]
        factor = max(1.0, math.sqrt(ds.width * ds.height / max_pixels))
        shape = (max(1, int(ds.height / factor)), max(1, int(ds.width / factor)))
        try:
            data: np.ndarray = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        except (RasterioError, OSError) as exc:
            raise SignatureInputError(f"assets.{key}: unreadable ({exc})", field=f"assets.{key}") from exc
        return data


def to_physical(dn: np.ndarray, spec: BandSpec) -> tuple[np.ndarray, np.ndarray]:
    """(values as float32 = DN*scale+offset, valid mask) for one band."""
    if dn.dtype.kind == "f":
        valid = np.isfinite(dn)
        if spec.nodata is not None:
            valid &= dn != spec.nodata
    elif spec.nodata is not None:
        valid = dn != spec.nodata
    else:
        valid = np.ones(dn.shape, dtype=bool)
    values = np.empty(dn.shape, dtype=np.float32)
    np.multiply(dn, np.float32(spec.scale), out=values, casting="unsafe")  # no float32 copy of the DN first
    values += np.float32(spec.offset)
    return values, valid
