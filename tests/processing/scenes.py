"""Small real Sentinel-2 L2A-like scenes for the processing tests: COGs + STAC items as docs/ARCHITECTURE.md says.

Each scene has B04/B08 (uint16, nodata 0, scale 0.0001, offset -0.1 from baseline 04.00 and 0 before), SCL
(uint8, 20 m) and an EarthSignature cloud mask (role ``signature-cloud``: 0 clear, 1 cloud, 255 no data).
Reflectances are known constants per scene so the expected NDVI is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

EPSG = 32631
ORIGIN_X, ORIGIN_Y = 500_000.0, 4_800_000.0
SIZE = 64  # pixels at 10 m


@dataclass(frozen=True)
class Scene:
    item_id: str
    datetime: str
    red: float
    nir: float
    baseline: str  # "04.00" and later carry offset -0.1
    cloud_rows: int = 0  # the top rows are cloudy (SCL 9, signature mask 1)
    cloud_cover: float = 0.0

    @property
    def offset(self) -> float:
        return -0.1 if self.baseline >= "04.00" else 0.0

    @property
    def ndvi(self) -> float:
        return (self.nir - self.red) / (self.nir + self.red)


SCENES = [
    Scene("S2A_T31TCJ_20220110", "2022-01-10T10:30:00Z", 0.05, 0.35, "03.01", cloud_cover=5.0),
    Scene("S2B_T31TCJ_20220130", "2022-01-30T10:30:00Z", 0.10, 0.30, "04.00", cloud_rows=16, cloud_cover=25.0),
    Scene("S2A_T31TCJ_20220209", "2022-02-09T10:30:00Z", 0.04, 0.36, "04.00", cloud_cover=2.0),
    Scene("S2B_T31TCJ_20220219", "2022-02-19T10:30:00Z", 0.08, 0.32, "04.00", cloud_cover=60.0, cloud_rows=64),
]


def _write(path: Path, data: np.ndarray, res: float, nodata: float | None) -> None:
    profile = {
        "driver": "COG",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": f"EPSG:{EPSG}",
        "transform": from_origin(ORIGIN_X, ORIGIN_Y, res, res),
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def bbox_4326() -> list[float]:
    t = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    west, south, east, north = t.transform_bounds(ORIGIN_X, ORIGIN_Y - SIZE * 10, ORIGIN_X + SIZE * 10, ORIGIN_Y)
    return [west, south, east, north]


def _band(key: str, common: str, wavelength: float, offset: float) -> dict[str, Any]:
    return {
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "eo:bands": [{"name": key, "common_name": common, "center_wavelength": wavelength}],
        "raster:bands": [
            {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": offset, "spatial_resolution": 10}
        ],
    }


def write_scene(scene: Scene, folder: Path) -> dict[str, Any]:
    """Write the COGs of one scene and return its STAC item (absolute hrefs)."""
    folder.mkdir(parents=True, exist_ok=True)
    dn_red = round((scene.red - scene.offset) / 0.0001)
    dn_nir = round((scene.nir - scene.offset) / 0.0001)
    red = np.full((SIZE, SIZE), dn_red, dtype="uint16")
    nir = np.full((SIZE, SIZE), dn_nir, dtype="uint16")
    red[-1, :] = 0  # a nodata row at the bottom
    nir[-1, :] = 0
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype="uint8")
    scl[: scene.cloud_rows // 2, :] = 9
    cloud = np.zeros((SIZE, SIZE), dtype="uint8")
    cloud[: scene.cloud_rows, :] = 1
    paths = {k: folder / f"{scene.item_id}_{k}.tif" for k in ("B04", "B08", "SCL", "cloud")}
    _write(paths["B04"], red, 10, 0)
    _write(paths["B08"], nir, 10, 0)
    _write(paths["SCL"], scl, 20, 0)
    _write(paths["cloud"], cloud, 10, 255)
    west, south, east, north = bbox_4326()
    assets = {
        "B04": _band("B04", "red", 0.665, scene.offset),
        "B08": _band("B08", "nir", 0.842, scene.offset),
        "SCL": {
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        },
        "cloud_mask": {
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["signature-cloud"],
            "raster:bands": [{"nodata": 255, "data_type": "uint8", "spatial_resolution": 10}],
        },
    }
    for key, path in zip(("B04", "B08", "SCL", "cloud_mask"), paths.values(), strict=True):
        assets[key]["href"] = str(path)
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": scene.item_id,
        "collection": "sentinel-2-l2a",
        "bbox": [west, south, east, north],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "properties": {
            "datetime": scene.datetime,
            "platform": "sentinel-2a" if scene.item_id.startswith("S2A") else "sentinel-2b",
            "constellation": "sentinel-2",
            "eo:cloud_cover": scene.cloud_cover,
            "signature:cloud_fraction": scene.cloud_rows / SIZE,
            "proj:epsg": EPSG,
            "proj:shape": [SIZE, SIZE],
            "proj:transform": [10.0, 0.0, ORIGIN_X, 0.0, -10.0, ORIGIN_Y],
            "grid:code": "MGRS-31TCJ",
            "s2:processing_baseline": scene.baseline,
        },
        "assets": assets,
        "links": [],
    }


def collection() -> dict[str, Any]:
    west, south, east, north = bbox_4326()
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "sentinel-2-l2a",
        "title": "Sentinel-2 Level-2A",
        "description": "Sentinel-2 L2A surface reflectance (test scenes).",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[west, south, east, north]]},
            "temporal": {"interval": [["2022-01-01T00:00:00Z", "2022-03-01T00:00:00Z"]]},
        },
        "summaries": {"platform": ["sentinel-2a", "sentinel-2b"]},
        "item_assets": {
            "B04": _band("B04", "red", 0.665, -0.1),
            "B08": _band("B08", "nir", 0.842, -0.1),
        },
        "links": [],
    }


def build(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return collection(), [write_scene(s, folder) for s in SCENES]
