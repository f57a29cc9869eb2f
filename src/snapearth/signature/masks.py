"""Mask assets: written strip by strip into a tiled GeoTIFF, then copied to a Cloud-Optimized GeoTIFF.

The scratch file is uncompressed and gets its (nearest) overviews built in place; the final copy only compresses
its blocks, in the COG layout (``COPY_SRC_OVERVIEWS``: overviews before the data, each level's tiles together),
which is what GDAL's COG driver writes too but at less than half the cost (it rebuilds the overviews through
another temporary file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from snapearth.signature.bands import Grid

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
BLOCK = 256


def overview_factors(height: int, width: int, block: int = BLOCK) -> list[int]:
    """Decimation factors 2, 4, ... until the overview fits one block (what the COG driver's AUTO does)."""
    factors: list[int] = []
    factor = 1
    while max(height, width) / factor > block:
        factor *= 2
        factors.append(factor)
    return factors


class RasterSink:
    """One output raster of the analysis grid, filled strip by strip; ``finish`` turns it into a COG."""

    def __init__(
        self, path: Path, grid: Grid, *, count: int, dtype: str, nodata: float, overviews: bool = True
    ) -> None:
        self.path = path
        self._factors = overview_factors(grid.height, grid.width) if overviews else []
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.tif")
        # Without overviews the blocks written in order already are a COG: compress them once, directly (strips
        # of whole block rows, as compute writes them). With overviews, an uncompressed scratch file, copied.
        direct = {"compress": "ZSTD", "zstd_level": 1, "interleave": "band"} if not self._factors else {}
        self._ds: Any = rasterio.open(
            self._tmp,
            "w" if direct else "w+",  # w+: finish copies from the open scratch dataset, no re-open
            driver="GTiff",
            height=grid.height,
            width=grid.width,
            count=count,
            dtype=dtype,
            crs=grid.crs,
            transform=grid.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=BLOCK,
            blockysize=BLOCK,
            **direct,
        )

    def write(self, data: np.ndarray, window: Window) -> None:
        if data.ndim == 2:
            self._ds.write(data, 1, window=window)
        else:
            self._ds.write(data, window=window)

    def finish(self) -> None:
        if not self._factors:
            self._ds.close()
            self._tmp.replace(self.path)
            return
        self._ds.build_overviews(self._factors, Resampling.nearest)
        rasterio.shutil.copy(
            self._ds,
            self.path,
            driver="GTiff",
            tiled=True,
            blockxsize=BLOCK,
            blockysize=BLOCK,
            compress="ZSTD",  # level 1: 2-5x faster than DEFLATE here, as small
            zstd_level=1,
            copy_src_overviews=True,
            interleave="band",  # multi-band: each band's tiles compress better alone, and faster
        )
        self._ds.close()
        self._tmp.unlink()

    def abort(self) -> None:
        if not self._ds.closed:
            self._ds.close()
        self._tmp.unlink(missing_ok=True)


def mask_asset(path: Path, role: str, title: str, description: str) -> dict[str, Any]:
    return {
        "href": str(path),
        "type": COG_MEDIA_TYPE,
        "title": title,
        "description": description,
        "roles": [role],
    }
