"""Small real COG scenes for the signature tests: a class map painted with typical L2A spectra.

Spectra (B02, B03, B04, B08, B11, B12 surface reflectance) are typical published values for each cover,
so the tests exercise the thresholds the way real scenes do; DN follow the item's scale/offset.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
SPECTRA = {
    "water": (0.05, 0.06, 0.04, 0.02, 0.01, 0.008),
    "forest": (0.03, 0.06, 0.03, 0.35, 0.17, 0.08),
    "crop": (0.05, 0.08, 0.08, 0.25, 0.25, 0.15),
    "bare": (0.10, 0.14, 0.18, 0.25, 0.32, 0.26),
    "built": (0.12, 0.13, 0.14, 0.20, 0.24, 0.21),
    "snow": (0.85, 0.85, 0.82, 0.75, 0.08, 0.06),
    "cloud": (0.45, 0.45, 0.46, 0.50, 0.35, 0.25),
    "burned": (0.04, 0.05, 0.07, 0.08, 0.18, 0.20),
    "shadow": (0.02, 0.03, 0.02, 0.06, 0.04, 0.03),
}
SCL_OF = {"water": 6, "forest": 4, "crop": 4, "bare": 5, "built": 5, "snow": 11, "cloud": 9, "burned": 5, "shadow": 3}
EPSG = 32631
ORIGIN = (400000.0, 4900000.0)


def cover_map(layout: dict[str, tuple[slice, slice]], shape: tuple[int, int], base: str = "forest") -> np.ndarray:
    names = np.full(shape, base, dtype=object)
    for name, (rows, cols) in layout.items():
        names[rows, cols] = name
    return names


def write_cog(path: Path, data: np.ndarray, *, res: float, nodata: float | None, dtype: str) -> None:
    profile = {
        "driver": "COG",
        "height": data.shape[-2],
        "width": data.shape[-1],
        "count": 1,
        "dtype": dtype,
        "crs": f"EPSG:{EPSG}",
        "transform": from_origin(ORIGIN[0], ORIGIN[1], res, res),
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": 256,
    }
    tmp = path.with_suffix(".tmp.tif")
    gtiff = {k: v for k, v in profile.items() if k != "blocksize"} | {"driver": "GTiff"}
    with rasterio.open(tmp, "w", **gtiff) as dst:
        dst.write(data.astype(dtype), 1)
    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=256)
    tmp.unlink()


def s2_item(
    folder: Path,
    item_id: str,
    names: np.ndarray,
    *,
    when: datetime,
    res: float = 20.0,
    baseline: str = "05.09",
    with_scl: bool = True,
    nodata_mask: np.ndarray | None = None,
    scale: float = 0.0001,
    offset: float | None = None,
    noise: float = 0.005,
    tile: str = "31TCJ",
    extra_bands: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write an S2 L2A-like item (COGs + STAC dict) painting ``names`` (a 2-D array of cover names)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(item_id.encode()))
    if offset is None:
        offset = -0.1 if float(baseline) >= 4 else 0.0
    height, width = names.shape
    assets: dict[str, Any] = {}
    for i, band in enumerate(BANDS):
        refl = np.zeros(names.shape, np.float32)
        for name, spectrum in SPECTRA.items():
            refl[names == name] = spectrum[i]
        refl += rng.normal(0, noise, names.shape).astype(np.float32)
        dn = np.clip(np.rint((refl - offset) / 0.0001), 1, 65535).astype(np.uint16)
        if nodata_mask is not None:
            dn[nodata_mask] = 0
        path = folder / f"{item_id}_{band}.tif"
        write_cog(path, dn, res=res, nodata=0, dtype="uint16")
        assets[band] = _asset(path, band, scale=scale, offset=offset, res=res)
    if with_scl:
        scl = np.zeros(names.shape, np.uint8)
        for name, code in SCL_OF.items():
            scl[names == name] = code
        if nodata_mask is not None:
            scl[nodata_mask] = 0
        path = folder / f"{item_id}_SCL.tif"
        write_cog(path, scl, res=res, nodata=0, dtype="uint8")
        assets["SCL"] = {
            "href": str(path),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "raster:bands": [{"nodata": 0, "data_type": "uint8"}],
        }
    for band, dn in (extra_bands or {}).items():
        path = folder / f"{item_id}_{band}.tif"
        write_cog(path, dn, res=res, nodata=0, dtype="uint16")
        assets[band] = _asset(path, band, scale=scale, offset=offset, res=res)
    x0, y0 = ORIGIN
    bbox_utm = (x0, y0 - height * res, x0 + width * res, y0)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "geometry": _footprint(bbox_utm),
        "bbox": _wgs84_bbox(bbox_utm),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "grid:code": f"MGRS-{tile}",
            "proj:code": f"EPSG:{EPSG}",
            "processing:version": baseline,
            "eo:cloud_cover": float(np.mean(names == "cloud") * 100),
        },
        "assets": assets,
        "links": [],
    }


def _asset(path: Path, band: str, *, scale: float, offset: float, res: float) -> dict[str, Any]:
    return {
        "href": str(path),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "raster:bands": [
            {"nodata": 0, "data_type": "uint16", "scale": scale, "offset": offset, "spatial_resolution": res}
        ],
    }


def _wgs84_bbox(bbox_utm: tuple[float, float, float, float]) -> list[float]:
    from pyproj import Transformer

    t = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    west, south, east, north = bbox_utm
    xs, ys = t.transform([west, east, west, east], [south, south, north, north])
    return [min(xs), min(ys), max(xs), max(ys)]


def _footprint(bbox_utm: tuple[float, float, float, float]) -> dict[str, Any]:
    w, s, e, n = _wgs84_bbox(bbox_utm)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def s1_item(
    folder: Path,
    item_id: str,
    water: np.ndarray,
    *,
    when: datetime,
    orbit: int = 37,
    res: float = 20.0,
    scale: float = 0.01,
) -> dict[str, Any]:
    """An S1 GRD-like item: VV -22 dB on water, -9 dB on land (+ speckle), VH 7 dB lower; int16 dB*100."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(item_id.encode()))
    vv = np.where(water, -22.0, -9.0) + rng.normal(0, 1.5, water.shape)
    assets: dict[str, Any] = {}
    for band, db in (("vv", vv), ("vh", vv - 7.0)):
        dn = np.rint(db / scale).astype(np.int16)
        path = folder / f"{item_id}_{band}.tif"
        write_cog(path, dn, res=res, nodata=-32768, dtype="int16")
        assets[band] = {
            "href": str(path),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "raster:bands": [{"nodata": -32768, "data_type": "int16", "scale": scale, "offset": 0.0}],
        }
    height, width = water.shape
    x0, y0 = ORIGIN
    bbox_utm = (x0, y0 - height * res, x0 + width * res, y0)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "collection": "sentinel-1-grd",
        "geometry": _footprint(bbox_utm),
        "bbox": _wgs84_bbox(bbox_utm),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": "sentinel-1a",
            "constellation": "sentinel-1",
            "sat:relative_orbit": orbit,
            "sat:orbit_state": "ascending",
            "sar:instrument_mode": "IW",
            "sar:polarizations": ["VV", "VH"],
        },
        "assets": assets,
        "links": [],
    }
