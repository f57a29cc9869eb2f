"""Realistic Sentinel-2 L2A item metadata at any count, streamed (benchmarks, load tests, demos at scale).

What makes it realistic rather than random:

- **Tiles**: the real MGRS / Sentinel-2 tiling grid. A tile is 109.8 km square in its UTM zone, its upper-left
  corner on the north-west corner of its 100 km MGRS square (so it overlaps its east and south neighbours by
  9.8 km), named after that square (``20QRF``). Only tiles that touch land between 56°S and 84°N are acquired
  (land mask: ``global-land-mask``).
- **Orbits**: 143 relative orbits in a 10-day repeat cycle, one every 100.7 minutes, each ground track 25.17° west
  of the previous one; Sentinel-2A and 2B fly the same tracks 5 days apart (5-day revisit), Sentinel-2C replaces 2A
  from 21 January 2025. The track geometry (98.62° inclination, descending pass at 10:30 local time, 290 km swath)
  is anchored on real acquisitions (R139 over 20QRF on 2023-11-07 14:47:31 UTC; R013 over 07HFE on 2019-02-12).
  An item's ``datetime`` is the start of its datatake, as in real product ids; tiles at the swath edge are only
  partly covered (``s2:nodata_pixel_percentage``).
- **Clouds**: ``eo:cloud_cover`` is U-shaped (many clear scenes, many overcast ones), and the ``s2:*`` scene
  classification percentages add up with it.
- **Fields**: the properties and assets Planetary Computer / Earth Search items carry: ``s2:*``, ``view:*``,
  ``proj:*``, ``mgrs:*``, ``grid:code``, ``sat:*``, ``processing:*``, ``eo:bands`` and ``raster:bands`` (scale
  0.0001, offset -0.1 from processing baseline 04.00) on B01..B12, AOT, WVP, SCL, visual, thumbnail. The
  processing baseline is ``processing:version`` and ``s2:processing_baseline``, as in real items
  (``processing:baseline`` is no field of the processing extension: its schema refuses it).

Deterministic for a seed. Items are rendered from a JSON template (``generate_ndjson``), fast enough that loads
are never generator-bound; ``generate_items`` parses them into dicts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from snapearth.errors import InvalidInputError

COLLECTION = "sentinel-2-l2a"
ORBITS = 143
CYCLE = timedelta(days=10)
PERIOD_S = CYCLE.total_seconds() / ORBITS  # 100.7 minutes between consecutive passes of one satellite
TRACK_SHIFT_DEG = 360.0 * 10 / ORBITS  # each pass is 25.17° west of the previous one
INCLINATION = math.radians(98.62)
EARTH_ROTATION_PER_PERIOD_DEG = 360.0 / 86164.1 * PERIOD_S
HALF_SWATH_KM = 145.0
TILE_SIZE = 109_800.0
MIN_LAT, MAX_LAT = -56.0, 84.0
MIN_SUN_ELEVATION = 5.0

# Anchor (a real acquisition): Sentinel-2A, relative orbit 139, descending node crossing on 2023-11-07 at 14:52:45
# UTC at 64.82°W (its datatake over 20QRF started 14:47:31, 18.5°N), absolute orbit 43751.
ANCHOR_ORBIT = 139
ANCHOR_NODE_TIME = datetime(2023, 11, 7, 14, 52, 45, tzinfo=UTC)
ANCHOR_NODE_LON = -64.82

# (first day in service, platform, absolute orbit at the anchor-phase pass nearest that day, phase in days)
_A_PHASE, _B_PHASE = 0.0, 5.0
SATELLITES = (
    (datetime(2015, 7, 4, tzinfo=UTC), datetime(2025, 1, 21, tzinfo=UTC), "sentinel-2a", "S2A", _A_PHASE, 43751),
    (datetime(2017, 3, 17, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "sentinel-2b", "S2B", _B_PHASE, 34834),
    (datetime(2025, 1, 21, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "sentinel-2c", "S2C", _A_PHASE, 2181),
)

# Processing baselines by date (ESA); from 04.00 reflectance carries a -1000 DN offset (raster:bands offset -0.1).
BASELINES = (
    (datetime(2015, 1, 1, tzinfo=UTC), "02.07"),
    (datetime(2018, 11, 6, tzinfo=UTC), "02.10"),
    (datetime(2019, 7, 8, tzinfo=UTC), "02.13"),
    (datetime(2020, 1, 28, tzinfo=UTC), "02.14"),
    (datetime(2021, 3, 30, tzinfo=UTC), "03.00"),
    (datetime(2021, 6, 30, tzinfo=UTC), "03.01"),
    (datetime(2022, 1, 25, tzinfo=UTC), "04.00"),
    (datetime(2022, 12, 6, tzinfo=UTC), "05.09"),
    (datetime(2023, 12, 13, tzinfo=UTC), "05.10"),
    (datetime(2024, 7, 23, tzinfo=UTC), "05.11"),
)

# (asset key, band name, common name, description, centre wavelength µm, FWHM µm, resolution m)
BANDS = (
    ("B01", "B01", "coastal", "Band 1 - Coastal aerosol", 0.443, 0.027, 60),
    ("B02", "B02", "blue", "Band 2 - Blue", 0.490, 0.098, 10),
    ("B03", "B03", "green", "Band 3 - Green", 0.560, 0.045, 10),
    ("B04", "B04", "red", "Band 4 - Red", 0.665, 0.038, 10),
    ("B05", "B05", "rededge", "Band 5 - Vegetation red edge 1", 0.704, 0.019, 20),
    ("B06", "B06", "rededge", "Band 6 - Vegetation red edge 2", 0.740, 0.018, 20),
    ("B07", "B07", "rededge", "Band 7 - Vegetation red edge 3", 0.783, 0.028, 20),
    ("B08", "B08", "nir", "Band 8 - NIR", 0.842, 0.145, 10),
    ("B8A", "B8A", "nir08", "Band 8A - Vegetation red edge 4", 0.865, 0.033, 20),
    ("B09", "B09", "nir09", "Band 9 - Water vapor", 0.945, 0.026, 60),
    ("B11", "B11", "swir16", "Band 11 - SWIR (1.6)", 1.610, 0.143, 20),
    ("B12", "B12", "swir22", "Band 12 - SWIR (2.2)", 2.190, 0.242, 20),
)
HREF_ROOT = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/product/v0.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
]


@dataclass(frozen=True, slots=True, eq=False)
class Tile:
    """One Sentinel-2 tile of the MGRS grid (hashed by identity: there is one object per tile)."""

    code: str  # "20QRF"
    zone: int
    band: str  # latitude band letter
    square: str  # 100 km square letters
    epsg: int
    ulx: float
    uly: float
    lon: float  # centre
    lat: float
    land: float  # fraction of land samples
    geometry: dict[str, Any]
    bbox: list[float]


def _utm_epsg(zone: int, north: bool) -> int:
    return (32600 if north else 32700) + zone


def _split_antimeridian(ring: list[list[float]]) -> dict[str, Any]:
    """A footprint that crosses ±180° as the STAC MultiPolygon split at the antimeridian."""
    from shapely.geometry import Polygon, box

    shifted = [[lon + 360.0 if lon < 0 else lon, lat] for lon, lat in ring]
    polygon = Polygon(shifted)
    east = polygon.intersection(box(0, -90, 180, 90))
    west = polygon.intersection(box(180, -90, 360, 90))
    west_coords = [[round(x - 360.0, 7), round(y, 7)] for x, y in west.exterior.coords]
    east_coords = [[round(x, 7), round(y, 7)] for x, y in east.exterior.coords]
    return {"type": "MultiPolygon", "coordinates": [[east_coords], [west_coords]]}


TILE_TABLE = Path(__file__).with_name("s2_land_tiles.csv")


def build_tile_table(path: Path = TILE_TABLE, samples: int = 9) -> int:
    """Write the table of land tiles (``code,land fraction``) from the MGRS grid and ``global-land-mask``.

    Run once to refresh the shipped table (``python -m snapearth.sources.itemgen``): the land mask takes a
    gigabyte and ten seconds to load, which no generator run should pay.
    """
    import warnings

    import mgrs
    from global_land_mask import globe
    from pyproj import Transformer

    namer = mgrs.MGRS()
    offsets = np.linspace(0.0, TILE_SIZE, samples)
    sx, sy = np.meshgrid(offsets, -offsets)
    rows: list[str] = []
    for zone in range(1, 61):
        west_edge = -180.0 + 6.0 * (zone - 1)
        for north in (True, False):
            to_lonlat = Transformer.from_crs(_utm_epsg(zone, north), 4326, always_xy=True)
            e0 = np.arange(100_000, 900_000, 100_000, dtype=float)
            n0 = np.arange(0, 9_400_000, 100_000, dtype=float) if north else np.arange(1_000_000, 10_000_000, 100_000.0)
            ee, nn = (a.ravel() for a in np.meshgrid(e0, n0))
            clon, clat = to_lonlat.transform(ee + 50_000, nn + 50_000)
            keep = (clat >= MIN_LAT) & (clat <= MAX_LAT) & ((clat >= 0) if north else (clat < 0))
            keep &= (clon >= west_edge) & (clon < west_edge + 6.0)
            ee, nn, clon, clat = ee[keep], nn[keep], clon[keep], clat[keep]
            if ee.size == 0:
                continue
            px = (ee[:, None] + sx.ravel()[None, :]).ravel()
            py = (nn[:, None] + 100_000 + sy.ravel()[None, :]).ravel()
            plon, plat = to_lonlat.transform(px, py)
            plon = (np.asarray(plon) + 180.0) % 360.0 - 180.0
            land = globe.is_land(np.clip(plat, -89.999, 89.999), plon).reshape(len(ee), -1).mean(axis=1)
            for i in np.flatnonzero(land > 0):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    name = namer.toMGRS(float(clat[i]), float(clon[i]), MGRSPrecision=0)
                if int(name[:2]) == zone:  # Norway/Svalbard exceptions: the square belongs to another zone
                    rows.append(f"{zone:02d}{name[2:]},{land[i]:.2f}")
    path.write_text("code,land\n" + "\n".join(rows) + "\n")
    return len(rows)


@lru_cache(maxsize=1)
def land_tiles() -> tuple[Tile, ...]:
    """Every Sentinel-2 tile touching land between 56°S and 84°N (the shipped table), with its footprint."""
    import warnings

    import mgrs
    from pyproj import Transformer

    namer = mgrs.MGRS()
    groups: dict[int, list[tuple[str, float, float, float]]] = {}
    for line in TILE_TABLE.read_text().splitlines()[1:]:
        code, land_text = line.split(",")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mgrs warns about squares straddling a band edge
            zone, hemisphere, easting, northing = namer.MGRSToUTM(code + "0000000000")
        epsg = _utm_epsg(zone, hemisphere == "N")
        groups.setdefault(epsg, []).append(
            (code, math.floor(easting), math.floor(northing) + 100_000, float(land_text))
        )
    tiles: list[Tile] = []
    for epsg, rows in sorted(groups.items()):
        to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
        ulx = np.array([r[1] for r in rows], dtype=float)
        uly = np.array([r[2] for r in rows], dtype=float)
        clon, clat = to_lonlat.transform(ulx + TILE_SIZE / 2, uly - TILE_SIZE / 2)
        corners_x = np.stack([ulx, ulx + TILE_SIZE, ulx + TILE_SIZE, ulx, ulx], axis=1)
        corners_y = np.stack([uly, uly, uly - TILE_SIZE, uly - TILE_SIZE, uly], axis=1)
        glon, glat = to_lonlat.transform(corners_x.ravel(), corners_y.ravel())
        glon = np.round(np.asarray(glon), 7).reshape(-1, 5).tolist()
        glat = np.round(np.asarray(glat), 7).reshape(-1, 5).tolist()
        for i, (code, x, y, land) in enumerate(rows):
            ring = [[lon, lat] for lon, lat in zip(glon[i], glat[i], strict=True)]
            lons, lats = glon[i], glat[i]
            if max(lons) - min(lons) > 180.0:
                geometry = _split_antimeridian(ring)
                bbox = [min(v for v in lons if v > 0), min(lats), max(v for v in lons if v <= 0), max(lats)]
            else:
                geometry = {"type": "Polygon", "coordinates": [ring]}
                bbox = [min(lons), min(lats), max(lons), max(lats)]
            tiles.append(
                Tile(
                    code=code,
                    zone=int(code[:2]),
                    band=code[2],
                    square=code[3:5],
                    epsg=epsg,
                    ulx=float(x),
                    uly=float(y),
                    lon=float(clon[i]),
                    lat=float(clat[i]),
                    land=land,
                    geometry=geometry,
                    bbox=bbox,
                )
            )
    return tuple(tiles)


# --- orbits ------------------------------------------------------------------------------------------------------


def _descending_offsets(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(longitude offset east of the descending node in degrees, seconds after the node) at ``lat``."""
    sin_u = np.clip(np.sin(np.radians(lat)) / math.sin(INCLINATION), -1.0, 1.0)
    u = math.pi - np.arcsin(sin_u)  # argument of latitude on the descending half of the orbit
    geometric = np.degrees(np.arctan2(math.cos(INCLINATION) * np.sin(u), np.cos(u))) - 180.0
    geometric = (geometric + 180.0) % 360.0 - 180.0
    seconds = (np.degrees(u) - 180.0) / 360.0 * PERIOD_S
    return geometric - EARTH_ROTATION_PER_PERIOD_DEG * seconds / PERIOD_S, seconds


@dataclass(frozen=True)
class OrbitPlan:
    """For each relative orbit: the tiles it images, north to south, with their datatake start offsets."""

    tiles: tuple[Tile, ...]
    lat: np.ndarray  # tile centres
    lon: np.ndarray
    by_orbit: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # tile indices, start offset s, nodata %


@lru_cache(maxsize=1)
def orbit_plan() -> OrbitPlan:
    tiles = land_tiles()
    lat = np.array([t.lat for t in tiles])
    lon = np.array([t.lon for t in tiles])
    offset_deg, seconds = _descending_offsets(lat)
    by_orbit: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    km_per_deg = 111.32 * np.cos(np.radians(lat))
    for orbit in range(1, ORBITS + 1):
        node_lon = ANCHOR_NODE_LON - (orbit - ANCHOR_ORBIT) * TRACK_SHIFT_DEG
        track = node_lon + offset_deg
        distance = np.abs((lon - track + 180.0) % 360.0 - 180.0) * km_per_deg
        hit = np.flatnonzero(distance <= HALF_SWATH_KM + 30.0)
        if hit.size == 0:
            continue
        hit = hit[np.argsort(seconds[hit], kind="stable")]
        # Datatakes: imaging runs over land and stops over open sea; a gap of more than 6 minutes of flight
        # (about 20° of latitude) between consecutive tiles starts a new datatake.
        t = seconds[hit]
        new_take = np.concatenate([[True], np.diff(t) > 360.0])
        starts = np.maximum.accumulate(np.where(new_take, np.arange(t.size), 0))
        start_offset = t[starts] - 3.0
        nodata = np.clip((distance[hit] - (HALF_SWATH_KM - 55.0)) / 110.0, 0.0, 0.95) * 100.0
        by_orbit[orbit] = (hit, start_offset, nodata)
    return OrbitPlan(tiles=tiles, lat=lat, lon=lon, by_orbit=by_orbit)


def _baseline(when: datetime) -> str:
    version = BASELINES[0][1]
    for since, name in BASELINES:
        if when >= since:
            version = name
    return version


def _sun_angles(lat: np.ndarray, lon: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solar azimuth and elevation (degrees) at ``when`` (epoch seconds): NOAA's low-precision formulas."""
    days = when / 86400.0
    doy = (days % 365.2422) + 1
    gamma = 2 * np.pi / 365.0 * (doy - 1)
    decl = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    minutes = (when % 86400.0) / 60.0
    hour_angle = np.radians((minutes + eqtime + 4 * lon) / 4.0 - 180.0)
    phi = np.radians(lat)
    cos_zenith = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    zenith = np.arccos(np.clip(cos_zenith, -1, 1))
    azimuth = np.degrees(np.arctan2(np.sin(hour_angle), np.cos(hour_angle) * np.sin(phi) - np.tan(decl) * np.cos(phi)))
    return (azimuth + 180.0) % 360.0, 90.0 - np.degrees(zenith)


# --- items -------------------------------------------------------------------------------------------------------


def _band_asset_parts(offset: float) -> dict[str, dict[str, Any]]:
    """Every asset as JSON with ``@@slot@@`` / ``"##slot##"`` markers where items differ (href, transform)."""
    assets: dict[str, dict[str, Any]] = {}
    for key, name, common, description, centre, fwhm, res in BANDS:
        size = int(TILE_SIZE // res)
        assets[key] = {
            "href": f"@@folder@@IMG_DATA/R{res}m/@@prefix@@_{key}_{res}m.tif",
            "type": COG,
            "roles": ["data", "reflectance"],
            "title": f"{description} - {res}m",
            "gsd": res,
            "proj:shape": [size, size],
            "proj:transform": f"##transform{res}##",
            "eo:bands": [
                {
                    "name": name,
                    "common_name": common,
                    "description": description,
                    "center_wavelength": centre,
                    "full_width_half_max": fwhm,
                }
            ],
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "bits_per_sample": 15,
                    "spatial_resolution": res,
                    "scale": 0.0001,
                    "offset": offset,
                }
            ],
        }
    for key, title, res, data_type in (
        ("AOT", "Aerosol optical thickness (AOT)", 10, "uint16"),
        ("WVP", "Water vapour (WVP)", 10, "uint16"),
        ("SCL", "Scene classification map (SCL)", 20, "uint8"),
    ):
        size = int(TILE_SIZE // res)
        assets[key] = {
            "href": f"@@folder@@IMG_DATA/R{res}m/@@prefix@@_{key}_{res}m.tif",
            "type": COG,
            "roles": ["data"],
            "title": title,
            "gsd": res,
            "proj:shape": [size, size],
            "proj:transform": f"##transform{res}##",
            "raster:bands": [{"nodata": 0, "data_type": data_type, "spatial_resolution": res}],
        }
    assets["visual"] = {
        "href": "@@folder@@IMG_DATA/R10m/@@prefix@@_TCI_10m.tif",
        "type": COG,
        "roles": ["visual"],
        "title": "True color image",
        "gsd": 10,
        "proj:shape": [10980, 10980],
        "proj:transform": "##transform10##",
        "eo:bands": [assets[b]["eo:bands"][0] for b in ("B04", "B03", "B02")],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 10}] * 3,
    }
    assets["thumbnail"] = {
        "href": "@@folder@@QI_DATA/@@prefix@@_PVI.jpg",
        "type": "image/jpeg",
        "roles": ["thumbnail"],
        "title": "Thumbnail",
    }
    return assets


_PERCENTAGES = (
    "dark_features",
    "cloud_shadow",
    "vegetation",
    "not_vegetated",
    "water",
    "unclassified",
    "medium_proba_clouds",
    "high_proba_clouds",
    "thin_cirrus",
    "snow_ice",
)


@dataclass(frozen=True)
class _Template:
    """An item's JSON text cut at its slots: ``pieces`` alternates literal text and a blank for ``names[i]``."""

    pieces: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", itemgetter(*self.names))

    def render(self, slots: dict[str, str]) -> str:
        buffer = list(self.pieces)
        buffer[1::2] = self._values(slots)  # type: ignore[attr-defined]
        return "".join(buffer)


@lru_cache(maxsize=4)
def _item_template(offset: float) -> _Template:
    """The JSON every item shares, cut where items differ.

    Filling a template is several times faster than building and serialising nested dicts, which is what
    keeps the generator well above the load rates it feeds.
    """
    properties: dict[str, Any] = {
        "datetime": "@@datetime@@",
        "platform": "@@platform@@",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": "##cloud##",
        "eo:snow_cover": "##snow_ice##",
        "proj:epsg": "##epsg##",
        "mgrs:utm_zone": "##zone##",
        "mgrs:latitude_band": "@@band@@",
        "mgrs:grid_square": "@@square@@",
        "grid:code": "MGRS-##zone##@@band@@@@square@@",
        "s2:mgrs_tile": "@@tile@@",
        "sat:orbit_state": "descending",
        "sat:relative_orbit": "##orbit##",
        "sat:absolute_orbit": "##absolute##",
        "view:sun_azimuth": "##azimuth##",
        "view:sun_elevation": "##elevation##",
        "processing:level": "L2",
        "processing:version": "@@baseline@@",
        "processing:datetime": "@@generated@@Z",
        "processing:software": {"Sen2Cor": "02.11"},
        "product:type": "S2MSI2A",
        "s2:product_type": "S2MSI2A",
        "s2:product_uri": "@@product@@.SAFE",
        "s2:processing_baseline": "@@baseline@@",
        "s2:generation_time": "@@generated@@Z",
        "s2:datatake_id": "G@@code@@_@@stamp@@_##absolute6##_N@@baseline@@",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": "@@code@@_OPER_MSI_L2A_DS_2BPS_@@gen@@_S@@stamp@@_N@@baseline@@",
        "s2:granule_id": "@@code@@_OPER_MSI_L2A_TL_2BPS_@@gen@@_A##absolute6##_T@@tile@@_N@@baseline@@",
        "s2:tile_id": "@@code@@_OPER_MSI_L2A_TL_2BPS_@@gen@@_A##absolute6##_T@@tile@@_N@@baseline@@",
        "s2:reflectance_conversion_factor": "##rcf##",
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:nodata_pixel_percentage": "##nodata##",
        "s2:saturated_defective_pixel_percentage": 0.0,
        **{f"s2:{name}_percentage": f"##{name}##" for name in _PERCENTAGES},
    }
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": "@@id@@",
        "collection": "@@collection@@",
        "geometry": "##geometry##",
        "bbox": "##bbox##",
        "properties": properties,
        "assets": _band_asset_parts(offset),
        "links": [],
    }
    # "##x##" as a whole JSON value is raw JSON (numbers, arrays, objects); inside a string it is text.
    parts = re.split(r'"##(\w+)##"|##(\w+)##|@@(\w+)@@', orjson.dumps(item).decode())
    pieces: list[str] = []
    names: list[str] = []
    for i in range(0, len(parts), 4):
        pieces.append(parts[i])
        if i + 3 < len(parts):
            names.append(next(g for g in parts[i + 1 : i + 4] if g))
            pieces.append("")
    return _Template(tuple(pieces), tuple(names))


@lru_cache(maxsize=32768)
def _tile_slots(tile: Tile) -> dict[str, str]:
    transforms = {f"transform{res}": f"[{res}.0,0.0,{tile.ulx},0.0,-{res}.0,{tile.uly}]" for res in (10, 20, 60)}
    return {
        "geometry": orjson.dumps(tile.geometry).decode(),
        "bbox": orjson.dumps(tile.bbox).decode(),
        "epsg": str(tile.epsg),
        "zone": str(tile.zone),
        "band": tile.band,
        "square": tile.square,
        "tile": tile.code,
        "zone_path": f"{tile.zone:02d}/{tile.band}/{tile.square}",
        **transforms,
    }


@dataclass
class _Satellite:
    platform: str
    code: str
    base: float  # epoch seconds of pass 0 (the anchor pass, shifted by the satellite's phase)
    until: float
    anchor_abs: int
    step: int  # the next pass, counted from the anchor pass

    @property
    def next_time(self) -> float:
        return self.base + self.step * PERIOD_S


def _passes(start: datetime) -> Iterator[tuple[float, int, str, str, int]]:
    """Every pass of the constellation from ``start`` in time order: (node time, orbit, platform, code, abs orbit)."""
    anchor = ANCHOR_NODE_TIME.timestamp()
    satellites = []
    for since, until, platform, code, phase, anchor_abs in SATELLITES:
        base = anchor + phase * 86400.0
        first = math.ceil((max(start.timestamp(), since.timestamp()) - base) / PERIOD_S)
        satellites.append(_Satellite(platform, code, base, until.timestamp(), anchor_abs, first))
    while True:
        flying = [s for s in satellites if s.next_time < s.until]
        if not flying:
            return
        sat = min(flying, key=lambda s: s.next_time)
        orbit = (ANCHOR_ORBIT - 1 + sat.step) % ORBITS + 1
        yield sat.next_time, orbit, sat.platform, sat.code, sat.anchor_abs + sat.step
        sat.step += 1


def _check_collection_id(collection: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", collection):
        raise InvalidInputError(f"collection: {collection!r} is not a plain collection id", field="collection")


def generate_ndjson(
    count: int,
    *,
    seed: int = 0,
    start: datetime = datetime(2023, 1, 1, tzinfo=UTC),
    bbox: tuple[float, float, float, float] | None = None,
    collection: str = COLLECTION,
) -> Iterator[str]:
    """``count`` items as JSON text lines, in acquisition order from ``start``; ``bbox`` keeps the tiles it touches."""
    if count < 0:
        raise InvalidInputError(f"count: {count} must not be negative", field="count")
    if start.tzinfo is None:
        raise InvalidInputError("start: give a timezone-aware datetime", field="start")
    _check_collection_id(collection)
    plan = orbit_plan()
    keep: np.ndarray | None = None
    if bbox is not None:
        west, south, east, north = bbox
        boxes = np.array([t.bbox for t in plan.tiles])
        tile_west, tile_south, tile_east, tile_north = boxes.T
        crosses = tile_west > tile_east  # the tile straddles the antimeridian: [west, 180] + [-180, east]
        if west <= east:
            overlap = np.where(
                crosses, (east >= tile_west) | (west <= tile_east), (west <= tile_east) & (east >= tile_west)
            )
        else:
            overlap = crosses | (tile_east >= west) | (tile_west <= east)
        keep = overlap & (tile_south <= north) & (tile_north >= south)
        if not keep.any():
            raise InvalidInputError(f"bbox: {list(bbox)} holds no Sentinel-2 land tile", field="bbox")
    rng = np.random.default_rng(seed)
    produced = 0
    for node_time, orbit, platform, code, absolute in _passes(start):
        if produced >= count:
            return
        entry = plan.by_orbit.get(orbit)
        if entry is None:
            continue
        indices, start_offsets, nodata = entry
        if keep is not None:
            mask = keep[indices]
            if not mask.any():
                continue
            indices, start_offsets, nodata = indices[mask], start_offsets[mask], nodata[mask]
        # No imaging in the dark: tiles where the sun is under 5 degrees (polar night, winter high latitudes).
        lat = plan.lat[indices]
        azimuth, elevation = _sun_angles(lat, plan.lon[indices], node_time + start_offsets)
        lit = elevation >= MIN_SUN_ELEVATION
        if not lit.all():
            indices, start_offsets, nodata = indices[lit], start_offsets[lit], nodata[lit]
            azimuth, elevation = azimuth[lit], elevation[lit]
        n = min(len(indices), count - produced)
        if n == 0:
            continue
        produced += n
        pass_slots = {
            "collection": collection,
            "platform": platform,
            "code": code,
            "orbit": str(orbit),
            "absolute": str(absolute),
            "absolute6": f"{absolute:06d}",
        }
        yield from _render_pass(
            plan.tiles,
            rng,
            node_time,
            pass_slots,
            indices[:n],
            start_offsets[:n],
            nodata[:n],
            (azimuth[:n], elevation[:n]),
        )


def _render_pass(
    tiles: tuple[Tile, ...],
    rng: np.random.Generator,
    node_time: float,
    pass_slots: dict[str, str],
    indices: np.ndarray,
    start_offsets: np.ndarray,
    nodata: np.ndarray,
    sun: tuple[np.ndarray, np.ndarray],
) -> Iterator[str]:
    n = len(indices)
    sensing = datetime.fromtimestamp(node_time, UTC)
    baseline = _baseline(sensing)
    template = _item_template(-0.1 if baseline >= "04.00" else 0.0)
    doy = sensing.timetuple().tm_yday
    pass_slots = {
        **pass_slots,
        "baseline": baseline,
        "rcf": repr(1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2),
    }
    baseline_code = baseline.replace(".", "")
    lat = np.array([tiles[i].lat for i in indices])
    land = np.array([tiles[i].land for i in indices])
    starts = node_time + start_offsets
    # U-shaped cloud cover: Beta(0.35, 0.45) piles up near 0 and near 100.
    cloud = rng.beta(0.35, 0.45, n) * 100.0
    high = cloud * rng.uniform(0.2, 0.6, n)
    cirrus = (cloud - high) * rng.uniform(0.0, 0.4, n)
    medium = np.maximum(cloud - high - cirrus, 0.0)
    clear = 100.0 - cloud
    snow_share = np.where(np.abs(lat) > 55.0, rng.uniform(0.0, 0.6, n), rng.uniform(0.0, 0.02, n))
    snow = clear * snow_share
    rest = clear - snow
    water = rest * (1.0 - land) * rng.uniform(0.7, 1.0, n)
    ground = rest - water
    vegetation = ground * rng.uniform(0.1, 0.8, n)
    shadow = np.minimum(cloud, ground - vegetation) * rng.uniform(0.0, 0.15, n)
    dark = (ground - vegetation - shadow) * rng.uniform(0.0, 0.1, n)
    unclassified = (ground - vegetation - shadow - dark) * rng.uniform(0.0, 0.05, n)
    not_vegetated = np.maximum(ground - vegetation - shadow - dark - unclassified, 0.0)
    numbers = {
        "cloud": cloud,
        "snow_ice": snow,
        "water": water,
        "vegetation": vegetation,
        "cloud_shadow": shadow,
        "dark_features": dark,
        "unclassified": unclassified,
        "not_vegetated": not_vegetated,
        "medium_proba_clouds": medium,
        "high_proba_clouds": high,
        "thin_cirrus": cirrus,
        "nodata": nodata * rng.uniform(0.9, 1.0, n),
        "azimuth": sun[0],
        "elevation": sun[1],
    }
    # Shortest round-trip text of each number, converted per column (numpy) rather than per value.
    columns = [np.round(values, 6).astype(str).tolist() for values in numbers.values()]
    names = list(numbers)
    generated = np.datetime_as_string(
        (node_time + rng.uniform(2 * 3600, 10 * 3600, n)).astype("datetime64[s]"), unit="s"
    ).tolist()
    take_starts = np.datetime_as_string(starts.astype("datetime64[s]"), unit="s").tolist()
    code, orbit, absolute6 = pass_slots["code"], int(pass_slots["orbit"]), pass_slots["absolute6"]
    tile_indices = indices.tolist()
    for k, row in enumerate(zip(*columns, strict=True)):
        slots = dict(_tile_slots(tiles[tile_indices[k]]))
        slots.update(pass_slots)
        slots.update(zip(names, row, strict=True))
        tile_code = slots["tile"]
        started = take_starts[k]
        stamp = started.replace("-", "").replace(":", "")
        generated_at = generated[k]
        gen = generated_at.replace("-", "").replace(":", "")
        product = f"{code}_MSIL2A_{stamp}_N{baseline_code}_R{orbit:03d}_T{tile_code}_{gen}"
        slots["id"] = f"{code}_MSIL2A_{stamp}_R{orbit:03d}_T{tile_code}_{gen}"
        slots["datetime"] = f"{started}.024000Z"
        slots["stamp"] = stamp
        slots["gen"] = gen
        slots["generated"] = generated_at
        slots["product"] = product
        slots["prefix"] = f"T{tile_code}_{stamp}"
        slots["folder"] = (
            f"{HREF_ROOT}/{slots['zone_path']}/{started[:4]}/{started[5:7]}/{started[8:10]}/"
            f"{product}.SAFE/GRANULE/L2A_T{tile_code}_A{absolute6}_{stamp}/"
        )
        yield template.render(slots)


def generate_items(count: int, *, seed: int = 0, **options: Any) -> Iterator[dict[str, Any]]:
    """``count`` items as STAC dicts (see ``generate_ndjson`` for the options)."""
    for line in generate_ndjson(count, seed=seed, **options):
        yield orjson.loads(line)


def collection_document(collection: str = COLLECTION) -> dict[str, Any]:
    """A STAC collection for the generated items (the fields Planetary Computer's sentinel-2-l2a carries)."""
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection,
        "title": "Sentinel-2 Level-2A (generated)",
        "description": "Sentinel-2 L2A item metadata generated on the real MGRS grid and orbit geometry.",
        "license": "proprietary",
        "keywords": ["Sentinel-2", "Copernicus", "ESA", "Satellite", "Reflectance"],
        "providers": [{"name": "ESA", "roles": ["producer", "licensor"], "url": "https://sentinel.esa.int"}],
        "extent": {
            "spatial": {"bbox": [[-180.0, -56.0, 180.0, 84.0]]},
            "temporal": {"interval": [["2015-06-27T10:25:31Z", None]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b", "sentinel-2c"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
        },
        "links": [],
    }


def write_ndjson(path: Path, count: int, *, seed: int = 0, **options: Any) -> int:
    """Write ``count`` generated items to ``path`` as ndjson; returns the number written."""
    return write_lines(path, generate_ndjson(count, seed=seed, **options))


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write ndjson ``lines`` to ``path`` in buffered blocks; returns the number written."""
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            written += 1
            if len(buffer) >= 2000:
                out.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            out.write("\n".join(buffer) + "\n")
    return written


if __name__ == "__main__":
    print(f"{build_tile_table()} land tiles written to {TILE_TABLE}")
