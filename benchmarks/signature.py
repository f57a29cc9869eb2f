"""EarthSignature benchmark: accuracy against ground truth, throughput against raw reads, memory per worker.

    .venv/bin/python -m benchmarks.signature [--scenario demo|test|FILE] [--archive DIR] [--workers 2]
                                             [--big-km 20.48] [--out benchmarks/results/signature.json]
                                             [--only-throughput [--big-archive DIR]] [--only-accuracy]

1. Accuracy on a sample archive (``snapearth sample build``; ``--archive`` reuses a built one): loads it into a
   fresh SQLite catalog, runs ``enrich`` (the Dask runner, what ``snapearth enrich`` runs), then compares with
   ``truth/``: IoU of the cloud, water, snow and burn masks (micro-averaged over scenes, at the masks' own 20 m-class
   resolution, truth downsampled by 2x2 majority: a block split 2-2 has no majority and is not scored; the same with
   such ties counted as truth is kept as ``at_mask_resolution_ties_as_truth``; also at the truth's resolution, masks
   upsampled), per-scene
   fraction errors, and event precision/recall (same type, geometry within 1 km, dates overlapping within 16 days).
2. Real labelled data: the BigEarthNet example patches shipped in the ``bigearthnet-common`` wheel (6 Sentinel-2
   L2A patches, 120 x 120 px, CORINE labels; no SCL, so the spectral cloud detector runs): agreement of our
   water / vegetation / snow findings with their labels and with BigEarthNet's seasonal-snow and cloud lists.
3. Throughput on a larger scene (``--big-km`` side at 10 m, built by the sample generator): pixels per second per
   core of the signature (read, classify, statistics, 4 mask COGs and the indices raster) against the raw
   read-and-decode of the same bands on the same windows (the limit); target >= 0.7. Wall-clock and CPU time, and
   the CPU time per phase (``--only-throughput [--big-archive DIR]`` re-measures it alone). Peak memory per Dask
   worker from the enrich run.

Evaluation helpers are imported by tests/signature (they read truth/, product code never does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import Geod
from shapely.geometry import shape

from snapearth.catalog import SearchRequest, open_catalog
from snapearth.catalog.base import Catalog, parse_rfc3339

STATE = {"vegetation": 1, "not_vegetated": 2, "water": 3, "flood": 4, "snow": 5, "burned": 6, "shadow": 7}
CLEAR_STATES = (1, 2, 3, 4, 5, 6)
CLOUD_STATES = (8, 9)
EVENT_DISTANCE_KM = 1.0
EVENT_DAYS = 16
TARGET_IOU = 0.9
TARGET_EVENTS = 0.9
TARGET_THROUGHPUT = 0.7


# -- masks ----------------------------------------------------------------------------------------------------
def _block_share(mask: np.ndarray, factor: int) -> np.ndarray:
    h, w = mask.shape[0] // factor * factor, mask.shape[1] // factor * factor
    view = mask[:h, :w].reshape(h // factor, factor, w // factor, factor)
    out: np.ndarray = view.mean(axis=(1, 3))
    return out


def _truth_binary(state: np.ndarray, codes: Iterable[int]) -> np.ndarray:
    out: np.ndarray = np.isin(state, list(codes))
    return out


class IoU:
    def __init__(self) -> None:
        self.inter = 0
        self.union = 0
        self.scenes: list[float] = []

    def add(self, mine: np.ndarray, truth: np.ndarray, where: np.ndarray) -> None:
        a, b = mine & where, truth & where
        inter, union = int((a & b).sum()), int((a | b).sum())
        self.inter += inter
        self.union += union
        if union >= 20:
            self.scenes.append(inter / union)

    def result(self) -> dict[str, Any]:
        return {
            "iou": round(self.inter / self.union, 4) if self.union else None,
            "scenes": len(self.scenes),
            "scene_iou_median": round(float(np.median(self.scenes)), 4) if self.scenes else None,
            "pixels_union": self.union,
        }


def mask_accuracy(items: list[dict[str, Any]], truth_dir: Path) -> dict[str, Any]:
    """IoU of our masks against the truth state maps, at the masks' resolution and at the truth's."""
    manifest = json.loads((truth_dir / "manifest.json").read_text())
    scenes = {s["item_id"]: s for s in manifest["scenes"]}
    coarse = {k: IoU() for k in ("cloud", "shadow", "water", "snow", "burn", "s1_water")}
    ties = {k: IoU() for k in coarse}  # 2-2 blocks scored as truth (the definition used before 2026-11-25)

    def add(key: str, mine: np.ndarray, share: np.ndarray, where: np.ndarray) -> None:
        coarse[key].add(mine, share > 0.5, where & (share != 0.5))
        ties[key].add(mine, share >= 0.5, where)

    fine = {k: IoU() for k in ("cloud", "water", "snow", "burn")}
    for item in items:
        scene = scenes.get(item["id"])
        if scene is None or "signature-water" not in item["assets"]:
            continue
        with rasterio.open(truth_dir / scene["state"]) as ds:
            state = ds.read(1)
        masks = {}
        for key in ("cloud", "water", "snow", "burn"):
            asset = item["assets"].get(f"signature-{key}")
            if asset:
                with rasterio.open(asset["href"]) as ds:
                    masks[key] = ds.read(1)
        factor = state.shape[0] // masks["water"].shape[0]
        share = {name: _block_share(_truth_binary(state, codes), factor) for name, codes in _TRUTH_CODES.items()}
        if "cloud" not in masks:  # Sentinel-1
            observed = masks["water"] != 255
            add("s1_water", masks["water"] == 1, share["water"], observed & (share["valid"] >= 0.5))
            continue
        valid = (masks["cloud"] != 255) & (share["valid"] >= 0.5)
        add("cloud", masks["cloud"] == 1, share["cloud"], valid)
        add("shadow", masks["cloud"] == 2, share["shadow"], valid)
        both_clear = (masks["water"] != 255) & (share["clear"] >= 0.5)
        for key, truth_key in (("water", "water"), ("snow", "snow"), ("burn", "burned")):
            add(key, masks[key] == 1, share[truth_key], both_clear)
        # at the truth's resolution: our masks upsampled (nearest)
        up = {
            k: np.kron(v, np.ones((factor, factor), v.dtype))[: state.shape[0], : state.shape[1]]
            for k, v in masks.items()
        }
        valid_f = (up["cloud"] != 255) & (state != 0)
        fine["cloud"].add(up["cloud"] == 1, _truth_binary(state, CLOUD_STATES), valid_f)
        clear_f = (up["water"] != 255) & _truth_binary(state, CLEAR_STATES)
        fine["water"].add(up["water"] == 1, _truth_binary(state, (3, 4)), clear_f)
        fine["snow"].add(up["snow"] == 1, _truth_binary(state, (5,)), clear_f)
        fine["burn"].add(up["burn"] == 1, _truth_binary(state, (6,)), clear_f)
    return {
        "at_mask_resolution": {k: v.result() for k, v in coarse.items()},
        "at_mask_resolution_ties_as_truth": {k: v.result() for k, v in ties.items()},
        "at_truth_resolution": {k: v.result() for k, v in fine.items()},
    }


_TRUTH_CODES: dict[str, tuple[int, ...]] = {
    "valid": (1, 2, 3, 4, 5, 6, 7, 8, 9),
    "clear": CLEAR_STATES,
    "cloud": CLOUD_STATES,
    "shadow": (7,),
    "water": (3, 4),
    "snow": (5,),
    "burned": (6,),
}


def fraction_errors(items: list[dict[str, Any]], truth_dir: Path) -> dict[str, Any]:
    """Mean and max absolute error of our per-scene fractions against the manifest's."""
    manifest = json.loads((truth_dir / "manifest.json").read_text())
    scenes = {s["item_id"]: s for s in manifest["scenes"]}
    pairs = {
        "cloud": "signature:cloud_fraction",
        "shadow": "signature:shadow_fraction",
        "water": "signature:water_fraction",
        "snow": "signature:snow_fraction",
        "burn": "signature:burn_fraction",
        "vegetation": "signature:vegetation_fraction",
    }
    errors: dict[str, dict[str, list[float]]] = {"sentinel-2-l2a": {}, "sentinel-1-grd": {}}
    for item in items:
        scene = scenes.get(item["id"])
        if scene is None:
            continue
        kind = errors.setdefault(item["collection"], {})
        for name, prop in pairs.items():
            truth, mine = scene["fractions"].get(name), item["properties"].get(prop)
            if truth is None or mine is None:
                continue
            if name in ("cloud", "shadow") and item["collection"] != "sentinel-2-l2a":
                continue
            # a scene almost all cloud has too few clear pixels for surface fractions to mean anything
            if name not in ("cloud", "shadow") and (scene["fractions"].get("clear") or 0) < 0.1:
                continue
            kind.setdefault(name, []).append(abs(float(mine) - float(truth)))
    return {
        collection: {
            name: {"mae": round(float(np.mean(v)), 4), "max": round(float(np.max(v)), 4), "scenes": len(v)}
            for name, v in by_name.items()
            if v
        }
        for collection, by_name in errors.items()
    }


# -- events ---------------------------------------------------------------------------------------------------
def _distance_km(a: Any, b: Any) -> float:
    if a.intersects(b):
        return 0.0
    pa, pb = a.representative_point(), b.representative_point()
    # nearest points would be better; the gap between shapes is what matters, approximate with their distance
    from shapely.ops import nearest_points

    na, nb = nearest_points(a, b)
    _, _, metres = Geod(ellps="WGS84").inv(na.x, na.y, nb.x, nb.y)
    del pa, pb
    return float(metres) / 1000.0


def event_accuracy(events: list[dict[str, Any]], truth_dir: Path, *, places: set[str] | None = None) -> dict[str, Any]:
    """Precision and recall of our events: same type, within EVENT_DISTANCE_KM, dates overlapping +-EVENT_DAYS.

    Truth events are clipped to the observed period of their place (nothing can be seen outside it)."""
    manifest = json.loads((truth_dir / "manifest.json").read_text())
    periods = {p["id"]: p["period"] for p in manifest["places"]}
    truth = []
    for ev in manifest["events"]:
        if ev.get("geometry") is None or (places is not None and ev["place"] not in places):
            continue
        period = periods[ev["place"]]
        start = max(parse_rfc3339(ev["start_datetime"]), parse_rfc3339(period["start"] + "T00:00:00Z"))
        end = min(parse_rfc3339(ev["end_datetime"]), parse_rfc3339(period["end"] + "T23:59:59Z"))
        truth.append(
            {"id": ev["id"], "type": ev["type"], "geometry": shape(ev["geometry"]), "start": start, "end": end}
        )
    tolerance = timedelta(days=EVENT_DAYS)

    def matches(found: dict[str, Any], expected: dict[str, Any]) -> bool:
        p = found["properties"]
        if p["signature:event_type"] != expected["type"]:
            return False
        start, end = parse_rfc3339(p["start_datetime"]), parse_rfc3339(p["end_datetime"])
        if start > expected["end"] + tolerance or end < expected["start"] - tolerance:
            return False
        return _distance_km(shape(found["geometry"]), expected["geometry"]) <= EVENT_DISTANCE_KM

    matched_found = [f for f in events if any(matches(f, t) for t in truth)]
    matched_truth = [t for t in truth if any(matches(f, t) for f in events)]
    by_type: dict[str, dict[str, Any]] = {}
    for kind in sorted({t["type"] for t in truth} | {f["properties"]["signature:event_type"] for f in events}):
        found_k = [f for f in events if f["properties"]["signature:event_type"] == kind]
        truth_k = [t for t in truth if t["type"] == kind]
        by_type[kind] = {
            "detected": len(found_k),
            "true_positive": sum(1 for f in found_k if f in matched_found),
            "truth": len(truth_k),
            "found": sum(1 for t in truth_k if t in matched_truth),
        }
    return {
        "detected": len(events),
        "truth": len(truth),
        "precision": round(len(matched_found) / len(events), 4) if events else None,
        "recall": round(len(matched_truth) / len(truth), 4) if truth else None,
        "missed": [t["id"] for t in truth if t not in matched_truth],
        "unmatched": [
            f"{f['id']} ({f['properties']['start_datetime'][:10]}..{f['properties']['end_datetime'][:10]}, "
            f"{f['properties']['signature:area_km2']} km2)"
            for f in events
            if f not in matched_found
        ],
        "by_type": by_type,
        "tolerance": {"distance_km": EVENT_DISTANCE_KM, "days": EVENT_DAYS},
    }


# -- the archive ----------------------------------------------------------------------------------------------
def load_and_enrich(archive: Path, work: Path, workers: int) -> tuple[Catalog, dict[str, Any]]:
    from snapearth.catalog.load import load_paths
    from snapearth.signature.runner import enrich

    catalog = open_catalog(f"sqlite:///{work / 'catalog.db'}")
    for name in ("sentinel-2-l2a", "sentinel-1-grd"):
        collection = json.loads((archive / name / "collection.json").read_text())
        collection["links"] = []
        catalog.create_collection(collection, exist_ok=True)
    report = load_paths(catalog, [archive / "catalog.json"])
    if report.refused:
        raise RuntimeError(f"sample archive refused by the catalog: {report.refused[:3]}")
    started = time.perf_counter()
    enriched = enrich(catalog, data_dir=work, workers=workers)
    result = enriched.as_dict()
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    result["failures"] = result["failures"][:10]
    return catalog, result


def catalog_items(catalog: Catalog, collections: list[str]) -> list[dict[str, Any]]:
    return list(catalog.iter_items(SearchRequest(collections=collections, limit=500)))


# -- BigEarthNet ------------------------------------------------------------------------------------------------
_BEN_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
_FOREST = ("forest", "woodland")
_AGRI_VEG = ("arable", "pastures", "agriculture", "cultivation", "vineyards", "orchards", "grassland", "peatbogs")


def bigearthnet(work: Path) -> dict[str, Any]:
    """Our signature on the BigEarthNet example patches vs their CORINE labels (what the wheel really ships)."""
    try:
        import bigearthnet_common
    except ImportError:
        return {"available": False, "reason": "bigearthnet-common is not installed"}
    import bz2
    import tarfile

    from snapearth.signature import compute_signature

    package = Path(bigearthnet_common.__file__).parent
    with tarfile.open(package / "BigEarthNet-S2-Example.tar.bz2") as tar:
        tar.extractall(work / "ben", filter="data")
    with bz2.open(package / "patches_with_seasonal_snow.csv.bz2", "rt") as f:
        snowy = set(f.read().split())
    with bz2.open(package / "patches_with_cloud_and_shadow.csv.bz2", "rt") as f:
        cloudy = set(f.read().split())
    rows = []
    for folder in sorted((work / "ben").glob("*/*")):
        name = folder.name
        meta = json.loads((folder / f"{name}_labels_metadata.json").read_text())
        when = datetime.strptime(meta["acquisition_date"], "%Y-%m-%d %H:%M:%S")
        item = {
            "type": "Feature",
            "id": name,
            "collection": "bigearthnet",
            "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "processing:version": "02.05"},
            "assets": {
                band: {
                    "href": str(folder / f"{name}_{band}.tif"),
                    # BigEarthNet keeps L2A DN of baseline 02.xx: reflectance = DN / 10000, no offset
                    "raster:bands": [{"scale": 0.0001, "offset": 0.0, "nodata": 0}],
                }
                for band in _BEN_BANDS
            },
        }
        p = compute_signature(item, out_dir=work / "ben-masks").properties
        labels = [label.lower() for label in meta["labels"]]
        veg_expected = any(any(k in label for k in _FOREST + _AGRI_VEG) for label in labels)
        water_labelled = any("water" in label or "sea" in label for label in labels)
        rows.append(
            {
                "patch": name,
                "date": when.date().isoformat(),
                "labels": meta["labels"],
                "in_seasonal_snow_list": name in snowy,
                "in_cloud_shadow_list": name in cloudy,
                "cloud_method": p["signature:cloud_method"],
                "cloud_fraction": p["signature:cloud_fraction"],
                "snow_fraction": p.get("signature:snow_fraction"),
                "water_fraction": p.get("signature:water_fraction"),
                "vegetation_fraction": p.get("signature:vegetation_fraction"),
                "ndvi_median": p.get("signature:ndvi_median"),
                "agree_vegetation": (p.get("signature:vegetation_fraction") or 0) >= 0.3 if veg_expected else None,
                "agree_water": ((p.get("signature:water_fraction") or 0) >= 0.01) == water_labelled,
                "agree_snow": ((p.get("signature:snow_fraction") or 0) >= 0.05) == (name in snowy),
                "agree_cloud": (p["signature:cloud_fraction"] >= 0.05) == (name in cloudy),
            }
        )
    checks = [r[k] for r in rows for k in ("agree_vegetation", "agree_water", "agree_snow", "agree_cloud")]
    decided = [c for c in checks if c is not None]
    return {
        "available": True,
        "patches": len(rows),
        "checks": len(decided),
        "agreement": round(sum(decided) / len(decided), 4) if decided else None,
        "rows": rows,
        "note": "the wheel ships 6 example patches (120x120 px at 10 m, 2017-2018, CORINE 2018 labels, no SCL)",
    }


# -- throughput -------------------------------------------------------------------------------------------------
def throughput(archive: Path, repeat: int = 9) -> dict[str, Any]:
    """Signature vs raw read+decode of the same bands on the same windows, single process, best of ``repeat``
    (the two interleaved, so that a change in the machine's load hits both): wall-clock and CPU time
    (``time.process_time``), and the CPU time of the signature's phases measured apart (read; classification and
    statistics, ``OpticalAccumulator.add_strip``; writing the 4 mask COGs and the indices raster)."""
    from snapearth.signature import optical
    from snapearth.signature.bands import S2_BANDS, BandReader, asset_href, band_spec
    from snapearth.signature.compute import CHIP_PIXELS, MASKS, compute_signature, optical_sinks

    paths = sorted((archive / "sentinel-2-l2a").glob("*/*.json"))
    items = []
    for path in paths:
        item = json.loads(path.read_text())
        for asset in item["assets"].values():
            asset["href"] = str((path.parent / asset["href"]).resolve())
        items.append(item)
    out = Path(tempfile.mkdtemp(prefix="sig-thr-"))
    strips: list[tuple[dict[str, Any], list[tuple[Any, list[np.ndarray], np.ndarray]]]] = []

    def raw() -> int:
        pixels = 0
        for item in items:
            hrefs = {k: asset_href(item, k) for k in (*S2_BANDS, "SCL")}
            with BandReader(hrefs, strip_rows=CHIP_PIXELS) as reader:
                for window in reader.windows():
                    for key in hrefs:
                        reader.read(key, window)
                pixels += reader.grid.height * reader.grid.width
        return pixels

    def signature() -> int:
        return sum(compute_signature(item, out_dir=out).pixels for item in items)

    def timed(fn: Any) -> tuple[float, float, Any]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        return time.perf_counter() - wall, time.process_time() - cpu, result

    # phases, on strips read once: classification + statistics, then writing the rasters
    grids = []
    for item in items:
        specs = [band_spec(item, k, kind="reflectance") for k in optical.KERNEL_BANDS]
        hrefs = {s.key: s.href for s in specs} | {"SCL": asset_href(item, "SCL")}
        with BandReader(hrefs, strip_rows=CHIP_PIXELS) as reader:
            grids.append(reader.grid)
            strips.append(
                (
                    {"scale": [s.scale for s in specs], "offset": [s.offset for s in specs]}
                    | {"nodata": [s.nodata for s in specs]},
                    [
                        (w, [reader.read(k, w) for k in optical.KERNEL_BANDS], reader.read("SCL", w))
                        for w in reader.windows()
                    ],
                )
            )
    results: list[list[optical.StripResult]] = []

    def classify() -> None:
        results.clear()
        for (spec, item_strips), grid in zip(strips, grids, strict=True):
            acc = optical.OpticalAccumulator(-(-grid.height // CHIP_PIXELS), -(-grid.width // CHIP_PIXELS), CHIP_PIXELS)
            results.append(
                [
                    acc.add_strip(dn, spec["scale"], spec["offset"], spec["nodata"], int(w.row_off), scl=scl)
                    for w, dn, scl in item_strips
                ]
            )

    def write_rasters() -> None:
        for k, ((_, item_strips), grid) in enumerate(zip(strips, grids, strict=True)):
            sinks = optical_sinks({name: out / f"phase-{k}-{name}.tif" for name in (*MASKS, "indices")}, grid)
            for (w, _, _), strip in zip(item_strips, results[k], strict=True):
                sinks.write_strip(strip, w)
            sinks.finish()

    load_before = os.getloadavg()
    first_call_s = timed(signature)[0]  # numba's cache load (or compile), GDAL's first opens
    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "signature": [], "classify": [], "write": []}
    pixels = 0
    for _ in range(repeat):
        wall, cpu, pixels = timed(raw)
        runs["raw"].append((wall, cpu))
        runs["signature"].append(timed(signature)[:2])
        runs["classify"].append(timed(classify)[:2])
        runs["write"].append(timed(write_rasters)[:2])
    load_after = os.getloadavg()
    shutil.rmtree(out, ignore_errors=True)
    decoded = 0
    for item in items[:1]:
        for key in (*S2_BANDS, "SCL"):
            with rasterio.open(asset_href(item, key)) as ds:
                decoded += ds.width * ds.height

    def stat(name: str, which: int, how: Any = min) -> float:
        return float(how([r[which] for r in runs[name]]))

    raw_s, sig_s = stat("raw", 0), stat("signature", 0)
    raw_cpu, sig_cpu = stat("raw", 1), stat("signature", 1)
    per_item_ms = 1000.0 / len(items)
    phases = {
        "read": raw_cpu,
        "classify_and_statistics": stat("classify", 1),
        "write_masks_and_indices": stat("write", 1),
    }
    phases["other"] = max(0.0, sig_cpu - sum(phases.values()))
    return {
        "items": len(items),
        "analysis_pixels": pixels,
        "decoded_pixels_per_item": decoded,
        "repeat": repeat,
        "raw_read_decode_s": round(raw_s, 3),
        "signature_s": round(sig_s, 3),
        "raw_pixels_per_s_per_core": round(pixels / raw_s),
        "signature_pixels_per_s_per_core": round(pixels / sig_s),
        "ratio": round(raw_s / sig_s, 3),
        "cpu": {
            "raw_read_decode_s": round(raw_cpu, 3),
            "signature_s": round(sig_cpu, 3),
            "ratio": round(raw_cpu / sig_cpu, 3),
            "median_raw_s": round(stat("raw", 1, np.median), 3),
            "median_signature_s": round(stat("signature", 1, np.median), 3),
            "phases_ms_per_item": {k: round(v * per_item_ms, 1) for k, v in phases.items()},
        },
        "wall_median": {
            "raw_read_decode_s": round(stat("raw", 0, np.median), 3),
            "signature_s": round(stat("signature", 0, np.median), 3),
        },
        "first_signature_call_s": round(first_call_s, 3),
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "target": TARGET_THROUGHPUT,
        "note": "single process, one core; pixels = 20 m-class analysis grid; both read the same bands on the "
        "same windows (10 m bands decimated by GDAL nearest); the signature also writes 4 mask COGs (ZSTD) and "
        "the indices raster (uncompressed); best of the interleaved repeats (wall and CPU each); phases are CPU "
        "times measured apart on strips read once (the rasters written through compute.optical_sinks), 'other' "
        "is the signature's CPU time not in them (band opening, chips, vectors, properties); "
        "first_signature_call_s includes loading numba's cached kernel",
    }


def _big_scenario(km: float) -> str:
    return f"""
name: sigbench
description: one larger scene for the throughput benchmark
seed: 3
sensors: [sentinel-2-l2a]
size_km: {km}
resolution_m: 10
places:
  - {{id: toulouse, name: Toulouse, country: FR, lon: 1.4442, lat: 43.6047, landscape: city_fields,
     elevation_m: 150, period: {{start: 2023-06-01, end: 2023-06-08}}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="demo")
    parser.add_argument("--archive", type=Path, help="a built sample archive to reuse")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big-km", type=float, default=20.48)
    parser.add_argument(
        "--big-archive", type=Path, help="with --only-throughput: the larger scene's archive, kept (built if absent)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/signature.json"))
    parser.add_argument(
        "--only-throughput", action="store_true", help="re-measure throughput only, merged into an existing --out"
    )
    parser.add_argument(
        "--only-accuracy",
        action="store_true",
        help="re-measure masks, fractions and events only (no throughput), merged into an existing --out",
    )
    args = parser.parse_args()
    if args.only_throughput:
        _throughput_only(args)
        return
    from snapearth.sources.sample.build import build_archive
    from snapearth.sources.sample.scenario import scenario_text

    work = Path(tempfile.mkdtemp(prefix="sigbench-"))
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "started": datetime.now().isoformat()}
    if args.only_accuracy and args.out.exists():
        kept = json.loads(args.out.read_text())
        result.update({k: kept[k] for k in ("throughput_build_s", "throughput") if k in kept})
    try:
        archive = args.archive
        if archive is None:
            archive = work / "archive"
            text, source = scenario_text(args.scenario)
            t = time.perf_counter()
            build_archive(text, archive, source=source, workers=args.workers)
            result["archive_build_s"] = round(time.perf_counter() - t, 1)
        data = work / "data"
        shutil.copytree(archive, data / "archive")
        catalog, enriched = load_and_enrich(data / "archive", data, args.workers)
        result["scenario"] = json.loads((archive / "truth" / "manifest.json").read_text())["scenario"]
        result["enrich"] = enriched
        items = catalog_items(catalog, ["sentinel-2-l2a", "sentinel-1-grd"])
        truth = data / "archive" / "truth"
        result["masks"] = mask_accuracy(items, truth)
        result["fractions"] = fraction_errors(items, truth)
        events = catalog_items(catalog, ["events"])
        result["events"] = event_accuracy(events, truth)
        result["bigearthnet"] = bigearthnet(work)
        if not args.only_accuracy:
            big = work / "big"
            t = time.perf_counter()
            build_archive(_big_scenario(args.big_km), big, source="sigbench.yaml", workers=1)
            result["throughput_build_s"] = round(time.perf_counter() - t, 1)
            result["throughput"] = throughput(big)
        iou = result["masks"]["at_mask_resolution"]
        result["targets"] = {
            "mask_iou>=0.9": {
                k: (iou[k]["iou"] or 0) >= TARGET_IOU for k in ("cloud", "water", "snow", "burn", "s1_water")
            },
            "events_precision>=0.9": (result["events"]["precision"] or 0) >= TARGET_EVENTS,
            "events_recall>=0.9": (result["events"]["recall"] or 0) >= TARGET_EVENTS,
            "throughput_ratio>=0.7": result.get("throughput", {}).get("ratio", 0) >= TARGET_THROUGHPUT,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


def _throughput_only(args: argparse.Namespace) -> None:
    from snapearth.sources.sample.build import build_archive

    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    work = Path(tempfile.mkdtemp(prefix="sigbench-"))
    try:
        big = args.big_archive or work / "big"
        if not (big / "catalog.json").exists():
            t = time.perf_counter()
            build_archive(_big_scenario(args.big_km), big, source="sigbench.yaml", workers=1)
            result["throughput_build_s"] = round(time.perf_counter() - t, 1)
        result["throughput"] = throughput(big)
        result.setdefault("targets", {})["throughput_ratio>=0.7"] = result["throughput"]["ratio"] >= TARGET_THROUGHPUT
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result["throughput"], indent=2))


if __name__ == "__main__":
    main()
