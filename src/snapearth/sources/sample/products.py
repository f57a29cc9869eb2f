"""Products in the real formats: COG writing, PNG thumbnails, and the STAC items and collections describing them."""

from __future__ import annotations

import datetime as dt
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.shutil import copy

from snapearth.sources.sample.geo import Grid, Pass

STAC_VERSION = "1.0.0"
EXT = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.2.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "grid": "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "mgrs": "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "s2": "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "s1": "https://stac-extensions.github.io/sentinel-1/v0.2.0/schema.json",
    "classification": "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
    "item_assets": "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
LICENSE_URL = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"

# Sentinel-2 MSI bands: (common name, description, centre wavelength um, FWHM um, native resolution m)
S2_BANDS: dict[str, tuple[str, str, float, float, int]] = {
    "B02": ("blue", "Band 2 - Blue", 0.49, 0.098, 10),
    "B03": ("green", "Band 3 - Green", 0.56, 0.045, 10),
    "B04": ("red", "Band 4 - Red", 0.665, 0.038, 10),
    "B05": ("rededge", "Band 5 - Vegetation red edge 1", 0.704, 0.019, 20),
    "B08": ("nir", "Band 8 - NIR", 0.842, 0.145, 10),
    "B8A": ("nir08", "Band 8A - Vegetation red edge 4", 0.865, 0.033, 20),
    "B11": ("swir16", "Band 11 - SWIR (1.6)", 1.61, 0.143, 20),
    "B12": ("swir22", "Band 12 - SWIR (2.2)", 2.19, 0.242, 20),
}
SCL_CLASSES = (
    (0, "no_data", "No data"),
    (1, "saturated_or_defective", "Saturated or defective"),
    (2, "dark_area_pixels", "Dark area pixels"),
    (3, "cloud_shadows", "Cloud shadows"),
    (4, "vegetation", "Vegetation"),
    (5, "not_vegetated", "Not vegetated"),
    (6, "water", "Water"),
    (7, "unclassified", "Unclassified"),
    (8, "cloud_medium_probability", "Cloud medium probability"),
    (9, "cloud_high_probability", "Cloud high probability"),
    (10, "thin_cirrus", "Thin cirrus"),
    (11, "snow", "Snow or ice"),
)
PLATFORM_DESIGNATOR = {
    "sentinel-2a": "2015-028A",
    "sentinel-2b": "2017-013A",
    "sentinel-2c": "2024-157A",
    "sentinel-1a": "2014-016A",
    "sentinel-1b": "2016-025A",
    "sentinel-1c": "2024-235A",
}
# Sentinel-2 processing baselines by first day of use; BOA_ADD_OFFSET = -1000 from 04.00 (2022-01-25) on.
BASELINES = (
    (dt.date(2021, 6, 30), "03.00"),
    (dt.date(2021, 11, 22), "03.01"),
    (dt.date(2022, 1, 25), "04.00"),
    (dt.date(2022, 12, 6), "05.09"),
    (dt.date(2023, 12, 13), "05.10"),
    (dt.date(2024, 7, 23), "05.11"),
)
OFFSET_FROM = dt.date(2022, 1, 25)
S2_SCALE = 0.0001
S1_SCALE = 0.01
S1_NODATA = -32768


def processing_baseline(day: dt.date) -> str:
    baseline = "02.14"
    for since, name in BASELINES:
        if day >= since:
            baseline = name
    return baseline


def boa_offset(day: dt.date) -> float:
    """Reflectance offset of the L2A product of ``day`` (raster:bands offset): -0.1 from baseline 04.00 on."""
    return -0.1 if day >= OFFSET_FROM else 0.0


def write_cog(path: Path, data: np.ndarray, grid: Grid, factor: int, nodata: float | None, resampling: str) -> None:
    """A Cloud-Optimized GeoTIFF: 128 px tiles, DEFLATE, overviews down to ~32 px stored before the full image.

    Built in memory with its overviews, then copied once with COPY_SRC_OVERVIEWS (the layout GDAL's COG driver
    writes, at less cost for many small files).
    """
    bands = data if data.ndim == 3 else data[None]
    count, h, w = bands.shape
    levels = [2**k for k in range(1, 8) if max(h, w) / 2**k >= 32] or [2]
    with (
        MemoryFile() as mem,
        mem.open(
            driver="MEM",
            width=w,
            height=h,
            count=count,
            dtype=bands.dtype.name,
            crs=f"EPSG:{grid.epsg}",
            transform=grid.transform(factor),
            nodata=nodata,
        ) as src,
    ):
        src.write(bands)
        src.build_overviews(levels, Resampling[resampling])
        copy(
            src,
            path,
            driver="GTiff",
            tiled=True,
            blockxsize=128,
            blockysize=128,
            compress="DEFLATE",
            zlevel=1,  # a few % larger than the default level 6, markedly faster on many small files
            predictor=2 if bands.dtype.kind in "iu" else 1,
            interleave="pixel" if count > 1 else "band",
            copy_src_overviews=True,
        )


def write_geotiff(path: Path, data: np.ndarray, epsg: int, transform: Affine, nodata: float | None = None) -> None:
    """A plain compressed GeoTIFF (truth maps)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=nodata,
        compress="DEFLATE",
        tiled=True,
        blockxsize=256 if data.shape[1] > 256 else 16 * max(1, data.shape[1] // 16),
        blockysize=256 if data.shape[0] > 256 else 16 * max(1, data.shape[0] // 16),
    ) as dst:
        dst.write(data, 1)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG (the thumbnail), written with zlib alone."""
    h, w = rgb.shape[1:]
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb.transpose(1, 2, 0)))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _proj(grid: Grid, factor: int) -> dict[str, Any]:
    h, w = grid.shape(factor)
    return {
        "proj:shape": [h, w],
        "proj:transform": [round(v, 6) for v in list(grid.transform(factor))[:6]],
        "gsd": grid.resolution * factor,
    }


def _geometry(grid: Grid) -> tuple[dict[str, Any], list[float]]:
    ring = grid.footprint_lonlat()
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}, [min(lons), min(lats), max(lons), max(lats)]


def _links() -> list[dict[str, str]]:
    return [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json", "title": "SnapEarth sample archive"},
        {"rel": "parent", "href": "../collection.json", "type": "application/json"},
        {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        {"rel": "license", "href": LICENSE_URL, "title": "Legal notice on the use of Copernicus Sentinel Data"},
    ]


def s2_item_id(p: Pass, grid: Grid) -> tuple[str, str, dt.datetime]:
    """(item id, SAFE product name, generation time) as the real archive names them."""
    sat = p.platform[-2:].upper().replace("-", "")  # "2A"
    stamp = p.datetime.strftime("%Y%m%dT%H%M%S")
    generated = p.datetime.replace(microsecond=0) + dt.timedelta(minutes=95 + p.absolute_orbit % 60)
    gen = generated.strftime("%Y%m%dT%H%M%S")
    baseline = processing_baseline(p.datetime.date()).replace(".", "")
    item_id = f"S{sat}_MSIL2A_{stamp}_R{p.relative_orbit:03d}_T{grid.mgrs_tile}_{gen}"
    product = f"S{sat}_MSIL2A_{stamp}_N{baseline}_R{p.relative_orbit:03d}_T{grid.mgrs_tile}_{gen}.SAFE"
    return item_id, product, generated


S2_EXTENSIONS = ("eo", "proj", "view", "sat", "raster", "grid", "mgrs", "processing", "s2", "classification")


def _sun_earth_factor(day: dt.date) -> float:
    """The L2A reflectance conversion factor: (1 / d^2), d the Sun-Earth distance in AU."""
    return round(1 + 0.0334 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 4) / 365.25), 8)


def s2_item(
    p: Pass,
    grid: Grid,
    sun: tuple[float, float],
    scl_percentages: dict[str, float],
    cloud_cover: float,
    snow_cover: float,
) -> dict[str, Any]:
    """A Sentinel-2 L2A item in the shape of Planetary Computer / Earth Search items, assets beside it."""
    day = p.datetime.date()
    item_id, product, generated = s2_item_id(p, grid)
    baseline = processing_baseline(day)
    sat = p.platform[-2:].upper()
    stamp = p.datetime.strftime("%Y%m%dT%H%M%S")
    gen = generated.strftime("%Y%m%dT%H%M%S")
    geometry, bbox = _geometry(grid)
    offset = boa_offset(day)
    assets: dict[str, Any] = {}
    for band, (common, desc, centre, fwhm, native) in S2_BANDS.items():
        factor = 1 if native == 10 else 2
        assets[band] = {
            "href": f"./{band}.tif",
            "type": COG_TYPE,
            "title": f"{desc} - {native}m",
            "roles": ["data", "reflectance"],
            **_proj(grid, factor),
            "eo:bands": [
                {"name": band, "common_name": common, "description": desc, "center_wavelength": centre,
                 "full_width_half_max": fwhm}
            ],
            "raster:bands": [
                {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                 "spatial_resolution": grid.resolution * factor, "scale": S2_SCALE, "offset": offset}
            ],
        }  # fmt: skip
    assets["SCL"] = {
        "href": "./SCL.tif",
        "type": COG_TYPE,
        "title": "Scene classification map (SCL)",
        "roles": ["data"],
        **_proj(grid, 2),
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": grid.resolution * 2}],
        "classification:classes": [{"value": v, "name": n, "description": d} for v, n, d in SCL_CLASSES],
    }
    assets["visual"] = {
        "href": "./visual.tif",
        "type": COG_TYPE,
        "title": "True color image",
        "roles": ["visual"],
        **_proj(grid, 1),
        "eo:bands": [
            {"name": b, "common_name": S2_BANDS[b][0], "description": S2_BANDS[b][1],
             "center_wavelength": S2_BANDS[b][2], "full_width_half_max": S2_BANDS[b][3]}
            for b in ("B04", "B03", "B02")
        ],
        "raster:bands": [
            {"nodata": 0, "data_type": "uint8", "spatial_resolution": grid.resolution} for _ in range(3)
        ],
    }  # fmt: skip
    assets["thumbnail"] = {"href": "./thumbnail.png", "type": "image/png", "title": "Thumbnail", "roles": ["thumbnail"]}
    h, w = grid.shape(1)
    props: dict[str, Any] = {
        "datetime": iso(p.datetime),
        "platform": p.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": grid.resolution,
        "eo:cloud_cover": round(cloud_cover, 4),
        "eo:snow_cover": round(snow_cover, 4),
        "proj:epsg": grid.epsg,
        "proj:code": f"EPSG:{grid.epsg}",
        "proj:shape": [h, w],
        "proj:transform": [round(v, 6) for v in list(grid.transform(1))[:6]],
        "proj:bbox": list(grid.proj_bbox),
        "grid:code": f"MGRS-{grid.mgrs_tile}",
        "mgrs:utm_zone": grid.utm_zone,
        "mgrs:latitude_band": grid.latitude_band,
        "mgrs:grid_square": grid.grid_square,
        "view:sun_azimuth": round(sun[0], 4),
        "view:sun_elevation": round(sun[1], 4),
        "sat:orbit_state": p.orbit_state,
        "sat:relative_orbit": p.relative_orbit,
        "sat:absolute_orbit": p.absolute_orbit,
        "sat:platform_international_designator": PLATFORM_DESIGNATOR[p.platform],
        "processing:level": "L2A",
        "processing:facility": "ESA",
        "processing:version": baseline,
        "processing:datetime": iso(generated),
        "processing:software": {"sen2cor": "02.12" if baseline >= "05.10" else "02.11"},
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": baseline,
        "s2:product_uri": product,
        "s2:generation_time": iso(generated),
        "s2:datatake_id": f"GS{sat}_{stamp}_{p.absolute_orbit:06d}_N{baseline}",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": f"S{sat}_OPER_MSI_L2A_DS_2APS_{gen}_S{stamp}_N{baseline}",
        "s2:granule_id": f"S{sat}_OPER_MSI_L2A_TL_2APS_{gen}_A{p.absolute_orbit:06d}_T{grid.mgrs_tile}_N{baseline}",
        "s2:tile_id": f"S{sat}_OPER_MSI_L2A_TL_2APS_{gen}_A{p.absolute_orbit:06d}_T{grid.mgrs_tile}_N{baseline}",
        "s2:reflectance_conversion_factor": _sun_earth_factor(day),
        "s2:degraded_msi_data_percentage": 0,
        "s2:nodata_pixel_percentage": 0,
        "s2:saturated_defective_pixel_percentage": 0,
        **{k: round(v, 4) for k, v in scl_percentages.items()},
    }  # fmt: skip
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[k] for k in S2_EXTENSIONS],
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": _links(),
        "assets": assets,
    }  # fmt: skip


def s1_item_id(p: Pass) -> str:
    sat = p.platform[-2:].upper()
    start = (p.datetime - dt.timedelta(seconds=12)).strftime("%Y%m%dT%H%M%S")
    stop = (p.datetime + dt.timedelta(seconds=13)).strftime("%Y%m%dT%H%M%S")
    datatake = (p.absolute_orbit * 7919) % 0xFFFFFF
    return f"S{sat}_IW_GRDH_1SDV_{start}_{stop}_{p.absolute_orbit:06d}_{datatake:06X}"


def s1_item(p: Pass, grid: Grid) -> dict[str, Any]:
    """A Sentinel-1 GRD IW item (dual VV+VH) in the shape of Planetary Computer items, with geocoded COGs."""
    item_id = s1_item_id(p)
    geometry, bbox = _geometry(grid)
    datatake = (p.absolute_orbit * 7919) % 0xFFFFFF
    assets: dict[str, Any] = {}
    for pol in ("vv", "vh"):
        up = pol.upper()
        assets[pol] = {
            "href": f"./{pol}.tif",
            "type": COG_TYPE,
            "title": f"{up}: {'vertical' if up[0] == 'V' else 'horizontal'} transmit, "
            f"{'vertical' if up[1] == 'V' else 'horizontal'} receive",
            "description": f"Sigma0 backscatter ({up}) in dB, terrain-geocoded: dB = DN * scale + offset.",
            "roles": ["data", "backscatter"],
            **_proj(grid, 2),
            "raster:bands": [
                {"nodata": S1_NODATA, "data_type": "int16", "spatial_resolution": grid.resolution * 2,
                 "scale": S1_SCALE, "offset": 0, "unit": "dB"}
            ],
            "sar:polarizations": [up],
        }  # fmt: skip
    assets["thumbnail"] = {
        "href": "./thumbnail.png",
        "type": "image/png",
        "title": "Preview Image",
        "roles": ["thumbnail"],
    }
    h, w = grid.shape(2)
    start = p.datetime - dt.timedelta(seconds=12)
    end = p.datetime + dt.timedelta(seconds=13)
    props: dict[str, Any] = {
        "datetime": iso(p.datetime),
        "start_datetime": iso(start),
        "end_datetime": iso(end),
        "platform": p.platform,
        "constellation": "sentinel-1",
        "instruments": ["c-sar"],
        "gsd": grid.resolution * 2,
        "proj:epsg": grid.epsg,
        "proj:code": f"EPSG:{grid.epsg}",
        "proj:shape": [h, w],
        "proj:transform": [round(v, 6) for v in list(grid.transform(2))[:6]],
        "proj:bbox": list(grid.proj_bbox),
        "sar:instrument_mode": "IW",
        "sar:frequency_band": "C",
        "sar:center_frequency": 5.405,
        "sar:polarizations": ["VV", "VH"],
        "sar:product_type": "GRD",
        "sar:resolution_range": 20,
        "sar:resolution_azimuth": 22,
        "sar:pixel_spacing_range": 10,
        "sar:pixel_spacing_azimuth": 10,
        "sar:looks_range": 5,
        "sar:looks_azimuth": 1,
        "sar:looks_equivalent_number": 4.4,
        "sar:observation_direction": "right",
        "sat:orbit_state": p.orbit_state,
        "sat:relative_orbit": p.relative_orbit,
        "sat:absolute_orbit": p.absolute_orbit,
        "sat:platform_international_designator": PLATFORM_DESIGNATOR[p.platform],
        "s1:datatake_id": str(datatake),
        "s1:instrument_configuration_ID": "7",
        "s1:orbit_source": "RESORB",
        "s1:product_timeliness": "Fast-24h",
        "s1:processing_level": "1",
        "s1:resolution": "high",
        "s1:slice_number": "1",
        "s1:total_slices": "1",
        "s1:shape": [w, h],
        "processing:level": "L1",
        "processing:facility": "ESA",
        "processing:software": {"Sentinel-1 IPF": "003.71"},
    }
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[k] for k in ("sar", "sat", "proj", "raster", "processing", "s1")],
        "id": item_id,
        "collection": "sentinel-1-grd",
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": _links(),
        "assets": assets,
    }


def dump_json(path: Path, obj: Any) -> None:
    """Stable JSON (key order as built, 2-space indent, trailing newline): byte-identical across runs."""
    path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
