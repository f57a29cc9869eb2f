"""Result writers: Cloud-Optimized GeoTIFF (one per time label), netCDF (the whole cube), JSON (small results).

Writers take computed (in-memory) results; the runner computes on Dask first so that metering sees the work.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from snapearth.processing.errors import OpenEOError

MEDIA_TYPES = {
    "GTiff": "image/tiff; application=geotiff; profile=cloud-optimized",
    "netCDF": "application/x-netcdf",
    "JSON": "application/json",
}


@dataclass
class OutputFile:
    path: Path
    media_type: str
    datetime: str | None = None
    bbox: list[float] | None = None
    epsg: int | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def write_result(data: Any, fmt: str, out_dir: Path, options: dict[str, Any] | None = None) -> list[OutputFile]:
    """Write a computed result in ``fmt`` under ``out_dir``; return the files (one or more)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    options = options or {}
    if fmt == "JSON":
        return [_write_json(data, out_dir / "result.json")]
    if not isinstance(data, xr.DataArray):
        raise OpenEOError(
            "FormatUnsupported", f"save_result format: {fmt} needs a raster data cube; use JSON for this result"
        )
    if fmt == "netCDF":
        return [_write_netcdf(data, out_dir / "result.nc")]
    if fmt == "GTiff":
        return _write_gtiffs(data, out_dir, options)
    raise OpenEOError("FormatUnsupported", f"save_result format: {fmt!r} is not supported", field="format")


def to_jsonable(data: Any) -> Any:
    if isinstance(data, xr.DataArray):
        return {
            "dims": list(data.dims),
            "coords": {name: to_jsonable(data.coords[name].values) for name in data.dims if name in data.coords},
            "attrs": {k: v for k, v in data.attrs.items() if isinstance(v, str | int | float)},
            "data": to_jsonable(data.values),
        }
    if isinstance(data, np.ndarray):
        if np.issubdtype(data.dtype, np.datetime64):
            return [str(np.datetime_as_string(v, unit="s")) + "Z" for v in data.ravel()]
        if np.issubdtype(data.dtype, np.floating):
            return [to_jsonable(v) for v in data.tolist()] if data.ndim else to_jsonable(float(data))
        return data.tolist()
    if isinstance(data, np.generic):
        return to_jsonable(data.item())
    if isinstance(data, float):
        return None if math.isnan(data) or math.isinf(data) else data
    if isinstance(data, list | tuple):
        return [to_jsonable(v) for v in data]
    if isinstance(data, dict):
        return {str(k): to_jsonable(v) for k, v in data.items()}
    if isinstance(data, datetime):
        return data.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return data


def _write_json(data: Any, path: Path) -> OutputFile:
    path.write_text(json.dumps(to_jsonable(data)))
    return OutputFile(path, MEDIA_TYPES["JSON"])


def _spatial(data: xr.DataArray) -> tuple[list[float] | None, int | None]:
    epsg = data.rio.crs.to_epsg() if data.rio.crs else None
    bbox = None
    if data.rio.crs and "x" in data.dims and "y" in data.dims:
        from pyproj import Transformer

        left, bottom, right, top = data.rio.bounds()
        t = Transformer.from_crs(data.rio.crs, "EPSG:4326", always_xy=True)
        west, south, east, north = t.transform_bounds(left, bottom, right, top)
        bbox = [round(v, 7) for v in (west, south, east, north)]
    return bbox, epsg


def _write_netcdf(data: xr.DataArray, path: Path) -> OutputFile:
    bbox, epsg = _spatial(data)
    cube = data.copy()
    cube.attrs = {k: v for k, v in data.attrs.items() if isinstance(v, str | int | float)}
    dataset = cube.to_dataset(dim="bands") if "bands" in cube.dims else cube.to_dataset(name=str(cube.name or "data"))
    dataset = dataset.drop_vars([c for c in dataset.coords if dataset[c].dtype == object], errors="ignore")
    if "spatial_ref" in data.coords:
        dataset = dataset.assign_coords(spatial_ref=data.coords["spatial_ref"])
    dataset.to_netcdf(path, engine="netcdf4")
    return OutputFile(path, MEDIA_TYPES["netCDF"], bbox=bbox, epsg=epsg)


def _label(value: Any) -> str:
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="s")) + "Z"
    return str(value)


def _write_gtiffs(data: xr.DataArray, out_dir: Path, options: dict[str, Any]) -> list[OutputFile]:
    extra = [d for d in data.dims if d not in ("x", "y", "bands", "t")]
    if extra or "x" not in data.dims or "y" not in data.dims:
        raise OpenEOError(
            "FormatUnsupported",
            "save_result format: GTiff needs a cube with x and y (and optionally t, bands); "
            f"got dims {list(data.dims)}",
            field="format",
        )
    if "t" in data.dims:
        slices = [(data.t.values[i], data.isel(t=i)) for i in range(data.sizes["t"])]
    else:
        slices = [(None, data)]
    files = []
    for when, layer in slices:
        stamp = _label(when) if when is not None else None
        name = "result" if stamp is None else "result-" + re.sub(r"[^0-9A-Za-z]", "", stamp)[:15]
        files.append(_write_cog(layer, out_dir / f"{name}.tif", stamp))
    return files


def _write_cog(layer: xr.DataArray, path: Path, stamp: str | None) -> OutputFile:
    import rasterio
    from rasterio.transform import Affine

    if "bands" in layer.dims:
        layer = layer.transpose("bands", "y", "x")
        values = np.asarray(layer.values)
        descriptions = [str(b) for b in layer.bands.values]
    else:
        values = np.asarray(layer.transpose("y", "x").values)[np.newaxis]
        descriptions = [str(layer.name or "data")]
    if values.dtype.kind == "f":
        values = values.astype("float32")
        nodata: float | None = float("nan")
    else:
        nodata = None
    transform: Affine = layer.rio.transform()
    crs = layer.rio.crs
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": values.shape[2],
        "height": values.shape[1],
        "count": values.shape[0],
        "dtype": values.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": 512,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        for index, description in enumerate(descriptions, start=1):
            dst.set_band_description(index, description)
        if stamp:
            dst.update_tags(datetime=stamp)
    bbox, epsg = _spatial(layer)
    return OutputFile(path, MEDIA_TYPES["GTiff"], datetime=stamp, bbox=bbox, epsg=epsg)
