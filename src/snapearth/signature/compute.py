"""The signature of one item: read its bands strip by strip, classify, write mask COGs, summarise.

``compute_signature(item)`` is a pure function of the item and its files (no catalog access), so the runner
can ship it to any Dask worker. It either returns a complete signature or raises ``SignatureInputError``
with the reason; nothing is written next to the item when it fails.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer
from rasterio.windows import Window

from snapearth.catalog.base import parse_rfc3339
from snapearth.signature import optical
from snapearth.signature.bands import (
    S1_BANDS,
    S2_BANDS,
    S2CLOUDLESS_BANDS,
    BandReader,
    BandSpec,
    Grid,
    SignatureInputError,
    asset_href,
    band_spec,
    has_assets,
    to_physical,
)
from snapearth.signature.embeddings import optical_vector, radar_vector, season
from snapearth.signature.masks import RasterSink, mask_asset
from snapearth.signature.radar import SEED_MARGIN_DB, WaterRegions, water_threshold

SIGNATURE_VERSION = "1.3"  # 1.1: signature-indices is 2-band uint8; 1.2: water rules (S2 MNDWI > -0.2, S1 hysteresis);
# 1.3: S1 water mask rewritten by the events stage with optical snow and the orbit's recent acquisitions
PREFIX = "signature:"
CHIP_PIXELS = 256
S2CLOUDLESS_RESOLUTION_M = 160.0
# More than this share of valid pixels with a reflectance above 1.5 means the scale/offset are wrong.
_MAX_IMPLAUSIBLE_SHARE = 0.02
_MIN_CLEAR_SHARE_OF_CHIP = 0.5

MASKS = {
    "cloud": ("Cloud and shadow mask", "1 cloud, 2 cloud shadow, 0 clear, 255 no data"),
    "water": ("Water mask", "1 water, 0 other, 255 not observed (no data, cloud or shadow)"),
    "snow": ("Snow/ice mask", "1 snow or ice, 0 other, 255 not observed"),
    "burn": ("Burned area mask", "1 burned (NBR char signature), 0 other, 255 not observed"),
}


@dataclass
class ItemSignature:
    """What ``compute_signature`` returns: the properties and assets to merge into the item, and vectors."""

    item_id: str
    collection: str | None
    properties: dict[str, Any]
    assets: dict[str, dict[str, Any]]
    vector: list[float]
    chips: list[dict[str, Any]] = field(default_factory=list)
    pixels: int = 0

    def apply(self, item: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``item`` with this signature merged in (old ``signature:*`` fields replaced)."""
        out = dict(item)
        props = {k: v for k, v in item.get("properties", {}).items() if not k.startswith(PREFIX)}
        props.update(self.properties)
        out["properties"] = props
        assets = {k: v for k, v in item.get("assets", {}).items() if not k.startswith("signature-")}
        assets.update(self.assets)
        out["assets"] = assets
        extensions = list(item.get("stac_extensions", []))
        out["stac_extensions"] = extensions
        return out


def output_dir(item: dict[str, Any], fallback: Path | None) -> Path:
    """Masks go next to the item's files when they are local, else under ``fallback``."""
    for asset in item.get("assets", {}).values():
        href = str(asset.get("href", ""))
        if href.startswith("file://"):
            href = href[len("file://") :]
        if href.startswith("/") and Path(href).parent.is_dir():
            return Path(href).parent
    if fallback is None:
        raise SignatureInputError("assets: not local files, and no output folder given for the masks", field="assets")
    path = fallback / str(item.get("collection", "items")) / str(item["id"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def compute_signature(
    item: dict[str, Any], *, out_dir: Path | None = None, chip_pixels: int = CHIP_PIXELS
) -> ItemSignature:
    if "id" not in item:
        raise SignatureInputError("id: missing", field="id")
    if has_assets(item, S2_BANDS):
        return _optical(item, out_dir=out_dir, chip_pixels=chip_pixels)
    if has_assets(item, S1_BANDS[:1]):
        return _radar(item, out_dir=out_dir, chip_pixels=chip_pixels)
    missing = [k for k in S2_BANDS if k not in item.get("assets", {})]
    raise SignatureInputError(
        f"assets: neither Sentinel-2 bands (missing {', '.join(missing)}) nor Sentinel-1 'vv'", field="assets"
    )


def _when(item: dict[str, Any]) -> Any:
    props = item.get("properties", {})
    value = props.get("datetime") or props.get("start_datetime")
    if not value:
        raise SignatureInputError("properties.datetime: missing", field="properties.datetime")
    return parse_rfc3339(str(value))


def _round(value: float, digits: int = 6) -> float | None:
    return None if not math.isfinite(value) else round(float(value), digits)


@functools.lru_cache(maxsize=32)
def _to_wgs84(crs_wkt: str) -> Transformer:
    """A grid CRS -> WGS84 transformer (building one costs ~1 ms; a catalog has few CRSs)."""
    return Transformer.from_crs(crs_wkt, "EPSG:4326", always_xy=True)


def _chips(
    grid: Grid, cells: list[tuple[int, int]], vectors: list[list[float]], chip_pixels: int, to_wgs84: Transformer
) -> list[dict[str, Any]]:
    """The chips (row, col) of ``cells`` with their vectors and WGS84 boxes: the corners of all, in one call of the
    transformer (a call costs ~20 us)."""
    t = grid.transform
    xs: list[float] = []
    ys: list[float] = []
    for row, col in cells:
        x0, y0 = t * (col * chip_pixels, row * chip_pixels)
        x1, y1 = t * (min((col + 1) * chip_pixels, grid.width), min((row + 1) * chip_pixels, grid.height))
        xs += [x0, x1, x0, x1]
        ys += [y0, y0, y1, y1]
    if not cells:
        return []
    lons, lats = to_wgs84.transform(xs, ys)
    chips = []
    for k, ((row, col), vector) in enumerate(zip(cells, vectors, strict=True)):
        lon, lat = lons[4 * k : 4 * k + 4], lats[4 * k : 4 * k + 4]
        box = [round(min(lon), 6), round(min(lat), 6), round(max(lon), 6), round(max(lat), 6)]
        chips.append({"row": row, "col": col, "bbox": box, "vector": vector})
    return chips


class _Sinks:
    """The output rasters of one item; all finished together, or all removed."""

    def __init__(self) -> None:
        self.sinks: dict[str, RasterSink] = {}

    def add(self, name: str, sink: RasterSink) -> RasterSink:
        self.sinks[name] = sink
        return sink

    def finish(self) -> None:
        for sink in self.sinks.values():
            sink.finish()

    def abort(self) -> None:
        for sink in self.sinks.values():
            sink.abort()

    def write_strip(self, strip: optical.StripResult, window: Window) -> None:
        """A classified Sentinel-2 strip: its masks and its indices-raster bytes (sinks of ``optical_sinks``)."""
        for name, mask in zip(optical.MASK_NAMES, strip.masks, strict=True):
            self.sinks[name].write(mask, window)
        self.sinks["indices"].write(strip.index_bytes, window)


def optical_sinks(paths: dict[str, Path], grid: Grid) -> _Sinks:
    """The rasters of a Sentinel-2 signature, keyed like ``paths`` (the names of ``MASKS``, and "indices"): the mask
    COGs (ZSTD, nearest overviews) and the indices raster, stored uncompressed: two bands of noisy bytes, which
    ZSTD-1 halves for ~9 ms of CPU per 1024 x 1024 scene, a sixth of the signature's time."""
    sinks = _Sinks()
    for name in MASKS:
        sinks.add(name, RasterSink(paths[name], grid, count=1, dtype="uint8", nodata=optical.MASK_NODATA))
    indices = RasterSink(paths["indices"], grid, count=2, dtype="uint8", nodata=0, overviews=False, compress=False)
    sinks.add("indices", indices)
    return sinks


# -- Sentinel-2 ---------------------------------------------------------------------------------------------
def _optical(item: dict[str, Any], *, out_dir: Path | None, chip_pixels: int) -> ItemSignature:
    item_id = str(item["id"])
    when = _when(item)
    specs: dict[str, BandSpec] = {k: band_spec(item, k, kind="reflectance") for k in S2_BANDS}
    hrefs = {k: s.href for k, s in specs.items()}
    use_scl = has_assets(item, ("SCL",))
    if use_scl:
        hrefs["SCL"] = asset_href(item, "SCL")
        method = "scl"
    elif has_assets(item, S2CLOUDLESS_BANDS):
        for key in S2CLOUDLESS_BANDS:
            specs.setdefault(key, band_spec(item, key, kind="reflectance"))
            hrefs.setdefault(key, specs[key].href)
        method = "s2cloudless"
    else:
        method = "spectral"
    folder = output_dir(item, out_dir)
    detector = _s2cloudless() if method == "s2cloudless" else None

    with BandReader(hrefs, strip_rows=chip_pixels) as reader:
        grid = reader.grid
        chip_rows = math.ceil(grid.height / chip_pixels)
        chip_cols = math.ceil(grid.width / chip_pixels)
        acc = optical.OpticalAccumulator(chip_rows, chip_cols, chip_pixels)
        paths = {name: folder / f"{item_id}_signature-{name}.tif" for name in (*MASKS, "indices")}
        sinks = optical_sinks(paths, grid)
        implausible = 0
        try:
            kernel_specs = [specs[k] for k in optical.KERNEL_BANDS]
            scale = [s.scale for s in kernel_specs]
            offset = [s.offset for s in kernel_specs]
            nodata = [s.nodata for s in kernel_specs]
            for window in reader.windows():
                dn = [reader.read(k, window) for k in optical.KERNEL_BANDS]
                scl = reader.read("SCL", window) if use_scl else None
                invalid = cloud_mask = None
                if detector is not None:  # s2cloudless: its other bands' data count for validity too
                    refl = {
                        k: to_physical(v, spec)[0]
                        for k, v, spec in zip(optical.KERNEL_BANDS, dn, kernel_specs, strict=True)
                        if k in S2CLOUDLESS_BANDS
                    }
                    valid = np.ones(dn[0].shape, dtype=bool)
                    for key in S2CLOUDLESS_BANDS:
                        if key not in refl:
                            refl[key], ok = to_physical(reader.read(key, window), specs[key])
                            valid &= ok
                    invalid = ~valid
                    cloud_mask = _s2cloudless_mask(detector, refl, grid)
                strip = acc.add_strip(
                    dn, scale, offset, nodata, int(window.row_off), invalid=invalid, scl=scl, cloud_mask=cloud_mask
                )
                implausible += strip.implausible
                sinks.write_strip(strip, window)
            valid_pixels = acc.valid_pixels
            if valid_pixels == 0:
                raise SignatureInputError("assets: empty image, no valid pixel in any band", field="assets")
            if implausible > _MAX_IMPLAUSIBLE_SHARE * valid_pixels * len(S2_BANDS):
                raise SignatureInputError(
                    f"raster:bands: {implausible} reflectances above 1.5 after scale/offset: wrong band scale",
                    field="raster:bands",
                )
            sinks.finish()
        except BaseException:
            sinks.abort()
            raise

    total = grid.height * grid.width
    props = _optical_properties(acc, total, method)
    props[PREFIX + "version"] = SIGNATURE_VERSION
    features = _optical_features(acc.counts, acc.sums, acc.sumsq, acc.texture, when)
    vector = optical_vector(features)
    to_wgs84 = _to_wgs84(grid.crs.to_wkt())
    cells: list[tuple[int, int]] = []
    vectors: list[list[float]] = []
    for r in range(chip_rows):
        for c in range(chip_cols):
            counts = acc.chip_counts[r, c]
            clear = sum(int(counts[k]) for k in optical.SURFACE_CLASSES)
            if clear < _MIN_CLEAR_SHARE_OF_CHIP * counts.sum() or clear == 0:
                continue
            sums = acc.chip_sums[r, c]
            sumsq = np.zeros_like(sums)
            sumsq[0] = acc.chip_ndvi_sumsq[r, c]
            chip_features = _optical_features(counts, sums, sumsq, acc.chip_texture[r, c], when)
            cells.append((r, c))
            vectors.append([float(v) for v in optical_vector(chip_features)])
    chips = _chips(grid, cells, vectors, chip_pixels, to_wgs84)
    assets = {
        f"signature-{name}": mask_asset(paths[name], f"signature-{name}", title, desc)
        for name, (title, desc) in MASKS.items()
    }
    assets["signature-indices"] = mask_asset(
        paths["indices"],
        "signature-indices",
        "Spectral indices",
        "uint8: band 1 NDVI, band 2 NBR, as 1 + round((index + 1) * 127); 0 where not clear",
    )
    return ItemSignature(
        item_id=item_id,
        collection=item.get("collection"),
        properties=props,
        assets=assets,
        vector=[float(v) for v in vector],
        chips=chips,
        pixels=total,
    )


_DETECTOR: Any = None


def _s2cloudless() -> Any:
    global _DETECTOR
    if _DETECTOR is None:
        from s2cloudless import S2PixelCloudDetector

        _DETECTOR = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
    return _DETECTOR


def _s2cloudless_mask(detector: Any, refl: dict[str, np.ndarray], grid: Grid) -> np.ndarray:
    """s2cloudless at ~160 m (the resolution its model and its averaging/dilation sizes are meant for)."""
    factor = max(1, round(S2CLOUDLESS_RESOLUTION_M / abs(grid.transform.a)))
    stack = np.stack([refl[k][::factor, ::factor] for k in S2CLOUDLESS_BANDS], axis=-1)[np.newaxis]
    coarse = detector.get_cloud_masks(np.clip(stack, 0, 1))[0].astype(bool)
    height, width = refl["B02"].shape
    full: np.ndarray = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)[:height, :width]
    return full


def _optical_properties(acc: optical.OpticalAccumulator, total: int, method: str) -> dict[str, Any]:
    counts = acc.counts
    valid = acc.valid_pixels
    clear = acc.clear_pixels
    p: dict[str, Any] = {
        PREFIX + "valid_fraction": _round(valid / total) if total else 0.0,
        PREFIX + "cloud_fraction": _round(counts[optical.CLOUD] / valid),
        PREFIX + "shadow_fraction": _round(counts[optical.SHADOW] / valid),
        PREFIX + "clear_fraction": _round(clear / valid),
        PREFIX + "cloud_method": method,
        PREFIX + "clear_pixels": clear,
    }
    if clear == 0:
        return p
    share = {name: counts[code] / clear for name, code in optical.LAND_COVER.items()}
    p.update(
        {
            PREFIX + "water_fraction": _round(share["water"]),
            PREFIX + "snow_fraction": _round(share["snow_ice"]),
            PREFIX + "burn_fraction": _round(share["burned"]),
            PREFIX + "built_up_fraction": _round(share["built_up"]),
            PREFIX + "bare_soil_fraction": _round(share["bare_soil"]),
            PREFIX + "vegetation_fraction": _round(share["moderate_vegetation"] + share["dense_vegetation"]),
            PREFIX + "land_cover": {name: _round(v) for name, v in share.items()},
        }
    )
    for i, name in enumerate(optical.STAT_INDICES):
        stats = {
            "mean": acc.sums[i] / clear,
            "median": acc.percentile(i, 0.5),
            "p10": acc.percentile(i, 0.1),
            "p90": acc.percentile(i, 0.9),
        }
        names = ("ndsi", "mndwi") if name == "mndwi" else (name,)
        for alias in names:
            for stat, value in stats.items():
                p[f"{PREFIX}{alias}_{stat}"] = _round(value, 4)
    return p


def _optical_features(
    counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray, texture: np.ndarray, when: Any
) -> dict[str, float]:
    clear = float(sum(int(counts[k]) for k in optical.SURFACE_CLASSES))
    feats: dict[str, float] = {}
    if clear > 0:
        for name, code in optical.LAND_COVER.items():
            feats[name] = counts[code] / clear
        for i, name in enumerate(optical.STAT_INDICES):
            feats[f"{name}_mean"] = sums[i] / clear
        variance = sumsq[0] / clear - (sums[0] / clear) ** 2
        feats["ndvi_std"] = math.sqrt(max(variance, 0.0))
    feats["ndvi_texture"] = float(texture[0] / texture[1]) if texture[1] else 0.0
    feats["season_sin"], feats["season_cos"] = season(when)
    return feats


# -- Sentinel-1 ---------------------------------------------------------------------------------------------
def _radar(item: dict[str, Any], *, out_dir: Path | None, chip_pixels: int) -> ItemSignature:
    item_id = str(item["id"])
    when = _when(item)
    specs = {"vv": band_spec(item, "vv", kind="db")}
    if has_assets(item, ("vh",)):
        specs["vh"] = band_spec(item, "vh", kind="db")
    folder = output_dir(item, out_dir)
    with BandReader({k: s.href for k, s in specs.items()}, strip_rows=chip_pixels) as reader:
        grid = reader.grid
        preview, preview_ok = to_physical(reader.overview("vv"), specs["vv"])
        preview = preview[preview_ok]
        if preview.size == 0:
            raise SignatureInputError("assets.vv: empty image, no valid pixel", field="assets.vv")
        if float(np.median(preview)) > 30 or float(np.median(preview)) < -60:
            raise SignatureInputError(
                f"assets.vv.raster:bands: median backscatter {float(np.median(preview)):.1f} dB is not "
                "plausible sigma0 (expected -30..+10 dB): wrong scale or offset",
                field="assets.vv.raster:bands",
            )
        threshold, method = water_threshold(preview)
        chip_rows = math.ceil(grid.height / chip_pixels)
        chip_cols = math.ceil(grid.width / chip_pixels)
        # per chip: [valid, water, sum vv, sum vv^2, sum vh, vh count, sum |dvv|, dvv pairs]
        chip_acc = np.zeros((chip_rows, chip_cols, 8), dtype=np.float64)
        sink = RasterSink(folder / f"{item_id}_signature-water.tif", grid, count=1, dtype="uint8", nodata=255)
        try:
            # water regions span strips: a first pass over VV finds those that hold a seed (radar.WaterRegions)
            regions = WaterRegions(threshold)
            for window in reader.windows():
                regions.add(*to_physical(reader.read("vv", window), specs["vv"]))
            regions.finish()
            for index, window in enumerate(reader.windows()):
                vv, ok = to_physical(reader.read("vv", window), specs["vv"])
                vh_ok: np.ndarray | None = None
                vh = None
                if "vh" in specs:
                    vh, vh_ok = to_physical(reader.read("vh", window), specs["vh"])
                water = regions.mask(index, vv, ok).astype(np.uint8)
                water[~ok] = 255
                sink.write(water, window)
                _accumulate_radar(
                    chip_acc, int(window.row_off) // chip_pixels, chip_pixels, vv, ok, water == 1, vh, vh_ok
                )
            total = chip_acc[..., 0].sum()
            if total == 0:
                raise SignatureInputError("assets.vv: empty image, no valid pixel", field="assets.vv")
            sink.finish()
        except BaseException:
            sink.abort()
            raise

    whole = chip_acc.reshape(-1, 8).sum(axis=0)
    features = _radar_features(whole, when)
    props: dict[str, Any] = {
        PREFIX + "version": SIGNATURE_VERSION,
        PREFIX + "valid_fraction": _round(whole[0] / (grid.height * grid.width)),
        PREFIX + "water_fraction": _round(whole[1] / whole[0]),
        PREFIX + "water_threshold_db": _round(threshold, 2),
        PREFIX + "water_method": method,
        PREFIX + "vv_mean_db": _round(features["vv_mean"], 3),
    }
    if whole[5]:
        props[PREFIX + "vh_mean_db"] = _round(features["vh_mean"], 3)
    to_wgs84 = _to_wgs84(grid.crs.to_wkt())
    cells: list[tuple[int, int]] = []
    vectors: list[list[float]] = []
    for r in range(chip_rows):
        for c in range(chip_cols):
            acc = chip_acc[r, c]
            if acc[0] < 0.5 * chip_pixels * chip_pixels and acc[0] < 0.5 * grid.width * grid.height:
                continue
            cells.append((r, c))
            vectors.append([float(v) for v in radar_vector(_radar_features(acc, when))])
    chips = _chips(grid, cells, vectors, chip_pixels, to_wgs84)
    assets = {
        "signature-water": mask_asset(
            folder / f"{item_id}_signature-water.tif",
            "signature-water",
            "Water mask (radar)",
            f"1 water (VV < {threshold:.1f} dB, {method}, in regions reaching {threshold - SEED_MARGIN_DB:.1f} dB; "
            "the events stage rewrites it with the threshold of signature:water_threshold_db, no water where "
            "optical views saw snow, and persistent water of the orbit's recent acquisitions: see "
            "signature:water_context), 0 other, 255 no data",
        )
    }
    return ItemSignature(
        item_id=item_id,
        collection=item.get("collection"),
        properties=props,
        assets=assets,
        vector=[float(v) for v in radar_vector(features)],
        chips=chips,
        pixels=grid.height * grid.width,
    )


def _accumulate_radar(
    acc: np.ndarray,
    chip_row: int,
    chip_pixels: int,
    vv: np.ndarray,
    ok: np.ndarray,
    water: np.ndarray,
    vh: np.ndarray | None,
    vh_ok: np.ndarray | None,
) -> None:
    width = vv.shape[1]
    chip_row = min(chip_row, acc.shape[0] - 1)
    starts = np.arange(0, width, chip_pixels)[: acc.shape[1]]
    vv0 = np.where(ok, vv, 0.0)
    acc[chip_row, :, 0] += np.add.reduceat(ok.sum(axis=0), starts)
    acc[chip_row, :, 1] += np.add.reduceat(water.sum(axis=0), starts)
    acc[chip_row, :, 2] += np.add.reduceat(vv0.sum(axis=0, dtype=np.float64), starts)
    acc[chip_row, :, 3] += np.add.reduceat((vv0 * vv0).sum(axis=0, dtype=np.float64), starts)
    if vh is not None and vh_ok is not None:
        vh0 = np.where(vh_ok, vh, 0.0)
        acc[chip_row, :, 4] += np.add.reduceat(vh0.sum(axis=0, dtype=np.float64), starts)
        acc[chip_row, :, 5] += np.add.reduceat(vh_ok.sum(axis=0), starts)
    pair = ok[:, 1:] & ok[:, :-1]
    grad = np.abs(np.diff(vv0, axis=1)) * pair
    pstarts = starts[starts < width - 1]
    if len(pstarts):
        acc[chip_row, : len(pstarts), 6] += np.add.reduceat(grad.sum(axis=0, dtype=np.float64), pstarts)
        acc[chip_row, : len(pstarts), 7] += np.add.reduceat(pair.sum(axis=0), pstarts)


def _radar_features(acc: np.ndarray, when: Any) -> dict[str, float]:
    valid = acc[0]
    feats: dict[str, float] = {}
    if valid:
        feats["water"] = acc[1] / valid
        feats["vv_mean"] = acc[2] / valid
        feats["vv_std"] = math.sqrt(max(acc[3] / valid - feats["vv_mean"] ** 2, 0.0))
        feats["vv_texture"] = acc[6] / acc[7] if acc[7] else 0.0
    if acc[5]:
        feats["vh_mean"] = acc[4] / acc[5]
        feats["vv_vh_ratio"] = feats.get("vv_mean", 0.0) - feats["vh_mean"]
    feats["season_sin"], feats["season_cos"] = season(when)
    return feats
