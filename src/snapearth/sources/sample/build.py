"""Build a sample archive: one product per acquisition per place, a static STAC catalog and the ground truth.

Products are rendered one at a time (bounded memory), in worker processes when ``workers > 1``; every random
draw is seeded by (scenario seed, place, product), so the archive does not depend on scheduling.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer
from rasterio import features
from shapely.geometry import mapping, shape
from shapely.ops import transform as shapely_transform
from shapely.ops import unary_union

from snapearth.errors import InvalidInputError
from snapearth.sources.sample import products as prod
from snapearth.sources.sample.geo import Grid, Pass, acquisitions, place_grid, sun_angles
from snapearth.sources.sample.landscape import CROPS, Cover
from snapearth.sources.sample.scenario import Scenario, parse_scenario
from snapearth.sources.sample.scene import (
    BANDS,
    BANDS_20M,
    PlaceModel,
    State,
    _curve,
    build_place_model,
    render_optical,
    render_sar,
)

TRUTH_VERSION = 1
CATALOG_ID = "snapearth-sample"


@dataclass(frozen=True)
class Task:
    place_id: str
    collection: str
    acquisition: Pass


def plan(scenario: Scenario) -> list[Task]:
    """Every product of the scenario, in a stable order (place, time, collection)."""
    tasks: list[Task] = []
    for place in scenario.places:
        for coll, mission in (("sentinel-2-l2a", "sentinel-2"), ("sentinel-1-grd", "sentinel-1")):
            if coll not in scenario.sensors:
                continue
            for p in acquisitions(mission, place.lon, place.lat, place.period.start, place.period.end):
                tasks.append(Task(place.id, coll, p))
    tasks.sort(key=lambda t: (t.place_id, t.acquisition.datetime, t.collection))
    return tasks


def grid_of(scenario: Scenario, place_id: str) -> Grid:
    place = scenario.place(place_id)
    return place_grid(place.lon, place.lat, scenario.size_of(place), scenario.resolution_of(place))


def place_model(scenario: Scenario, place_id: str) -> PlaceModel:
    place = scenario.place(place_id)
    grid = grid_of(scenario, place_id)
    n = grid.shape(1)[0]
    cx, cy = Transformer.from_crs(4326, grid.epsg, always_xy=True).transform(place.lon, place.lat)
    centre = ((grid.y0 - cy) / grid.resolution, (cx - grid.x0) / grid.resolution)
    return build_place_model(scenario, place, n, grid.resolution, centre)


# ---- one product -------------------------------------------------------------------------------------------


def _down2(a: np.ndarray) -> np.ndarray:
    """2x2 mean (the 20 m bands are coarser than the 10 m bands)."""
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def _fractions(state: np.ndarray) -> dict[str, float | None]:
    """True per-scene fractions: cloud and shadow over valid pixels, the rest over clear pixels."""
    valid = state != State.NODATA
    clear = valid & (state <= State.BURNED)
    nv, nc = max(int(valid.sum()), 1), int(clear.sum())

    def over_clear(*codes: State) -> float | None:
        return round(float(np.isin(state[clear], [int(c) for c in codes]).sum()) / nc, 6) if nc else None

    return {
        "cloud": round(float(np.isin(state, [State.CLOUD, State.THIN_CLOUD]).sum()) / nv, 6),
        "shadow": round(float((state == State.CLOUD_SHADOW).sum()) / nv, 6),
        "clear": round(nc / nv, 6),
        "water": over_clear(State.WATER, State.FLOOD),
        "flood": over_clear(State.FLOOD),
        "snow": over_clear(State.SNOW),
        "burn": over_clear(State.BURNED),
        "vegetation": over_clear(State.VEGETATION),
    }


def _scl(refl20: np.ndarray, opacity20: np.ndarray, shadow20: np.ndarray) -> np.ndarray:
    """Scene classification as Sen2Cor would derive it from these pixels (20 m)."""
    b02, b03, b04, _, b08, _, b11, _ = refl20
    eps = 1e-6
    ndvi = (b08 - b04) / (b08 + b04 + eps)
    ndwi = (b03 - b08) / (b03 + b08 + eps)
    ndsi = (b03 - b11) / (b03 + b11 + eps)
    scl = np.full(b02.shape, 5, np.uint8)
    scl[ndvi > 0.4] = 4
    scl[(b08 + b11) / 2 < 0.04] = 2
    scl[(ndwi > 0) & (b08 < 0.15) & (ndvi < 0.2)] = 6
    scl[(ndsi > 0.4) & (b03 > 0.25)] = 11
    scl[shadow20 > 0.5] = 3
    scl[(opacity20 >= 0.1) & (opacity20 < 0.35)] = 10
    scl[(opacity20 >= 0.35) & (opacity20 < 0.7)] = 8
    scl[opacity20 >= 0.7] = 9
    return scl


_SCL_PCT = {
    "s2:dark_features_percentage": (2,),
    "s2:cloud_shadow_percentage": (3,),
    "s2:vegetation_percentage": (4,),
    "s2:not_vegetated_percentage": (5,),
    "s2:water_percentage": (6,),
    "s2:unclassified_percentage": (7,),
    "s2:medium_proba_clouds_percentage": (8,),
    "s2:high_proba_clouds_percentage": (9,),
    "s2:thin_cirrus_percentage": (10,),
    "s2:snow_ice_percentage": (11,),
}


def _visual(refl: np.ndarray) -> np.ndarray:
    """True-colour RGB bytes like the L2A TCI: reflectance 0..0.25 -> 1..255 (0 is nodata)."""
    rgb = refl[[2, 1, 0]]
    return np.clip(np.round(rgb / 0.25 * 254) + 1, 1, 255).astype(np.uint8)


def _thumbnail(rgb: np.ndarray, size: int = 128) -> np.ndarray:
    step = max(1, rgb.shape[1] // size)
    return np.ascontiguousarray(rgb[:, ::step, ::step])


def render_task(scenario: Scenario, model: PlaceModel, task: Task, out: Path) -> dict[str, Any]:
    """Render, encode and write one product and its truth map; returns its truth record."""
    grid = grid_of(scenario, task.place_id)
    p = task.acquisition
    place = model.place
    key = f"{scenario.seed}/{place.id}/{task.collection}/{p.datetime.isoformat()}"
    item_id = prod.s2_item_id(p, grid)[0] if task.collection == "sentinel-2-l2a" else prod.s1_item_id(p)
    folder = out / task.collection / item_id
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"item_id": item_id, "collection": task.collection, "place": place.id,
                              "datetime": prod.iso(p.datetime),
                              "item": f"{task.collection}/{item_id}/{item_id}.json"}  # fmt: skip
    if task.collection == "sentinel-2-l2a":
        sun = sun_angles(p.datetime, place.lon, place.lat)
        scene = render_optical(model, p.datetime, sun[0], sun[1], key)
        add = 1000 if p.datetime.date() >= prod.OFFSET_FROM else 0  # BOA_ADD_OFFSET from baseline 04.00
        refl20 = _down2(scene.reflectance)
        for i, band in enumerate(BANDS):
            coarse = band in BANDS_20M
            refl = refl20[i] if coarse else scene.reflectance[i]
            dn = np.clip(np.round(refl / prod.S2_SCALE) + add, 1, 65535).astype(np.uint16)
            prod.write_cog(folder / f"{band}.tif", dn, grid, 2 if coarse else 1, 0, "average")
        scl = _scl(refl20, _down2(scene.opacity), _down2(scene.shadow.astype(np.float32)))
        prod.write_cog(folder / "SCL.tif", scl, grid, 2, 0, "nearest")
        rgb = _visual(scene.reflectance)
        prod.write_cog(folder / "visual.tif", rgb, grid, 1, 0, "average")
        prod.write_png(folder / "thumbnail.png", _thumbnail(rgb))
        total = scl.size
        pct = {k: 100.0 * float(np.isin(scl, v).sum()) / total for k, v in _SCL_PCT.items()}
        cloud_cover = 100.0 * float(np.isin(scl, (8, 9, 10)).sum()) / total
        item = prod.s2_item(p, grid, sun, pct, cloud_cover, pct["s2:snow_ice_percentage"])
        state = scene.state
        record["cloud_target"] = round(scene.cloud_target, 6)
        surface = scene.surface
    else:
        vv, vh, surface = render_sar(model, p.datetime, p.orbit_state, key)
        vv2, vh2 = _down2(vv), _down2(vh)
        for pol, db in (("vv", vv2), ("vh", vh2)):
            data = np.clip(np.round(db / prod.S1_SCALE), -32767, 32767).astype(np.int16)
            prod.write_cog(folder / f"{pol}.tif", data, grid, 2, prod.S1_NODATA, "average")
        # quick-look like the real one: R = VV, G = VH, B = VH/VV ratio
        q = np.stack(
            [np.clip((vv2 + 25) / 25, 0, 1), np.clip((vh2 + 32) / 25, 0, 1), np.clip((vh2 - vv2 + 15) / 15, 0, 1)]
        )
        prod.write_png(folder / "thumbnail.png", _thumbnail((q * 255).astype(np.uint8), 64))
        item = prod.s1_item(p, grid)
        state = surface.radar_state
    truth_rel = f"scenes/{item_id}.tif"
    prod.write_geotiff(out / "truth" / truth_rel, state, grid.epsg, grid.transform(1), nodata=0)
    prod.dump_json(folder / f"{item_id}.json", item)
    record.update(
        {
            "platform": p.platform,
            "orbit_state": p.orbit_state,
            "relative_orbit": p.relative_orbit,
            "state": truth_rel,
            "fractions": _fractions(state),
            "events": {k: round(v, 6) for k, v in sorted(surface.events.items())},
            "green_mean": round(float(surface.green[model.ground.cover != Cover.WATER].mean()), 6),
        }
    )
    return record


# ---- worker processes --------------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(text: str, source: str, out: str) -> None:
    _worker.update(scenario=parse_scenario(text, source), out=Path(out), models={})


def _run(task: Task) -> dict[str, Any]:
    scenario: Scenario = _worker["scenario"]
    models: dict[str, PlaceModel] = _worker["models"]
    if task.place_id not in models:
        models.clear()  # tasks arrive grouped by place: keep one place in memory
        models[task.place_id] = place_model(scenario, task.place_id)
    return render_task(scenario, models[task.place_id], task, _worker["out"])


def _records(
    scenario: Scenario, text: str, source: str, out: Path, tasks: list[Task], workers: int
) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(tasks) < 2 * workers:
        _init_worker(text, source, str(out))
        yield from map(_run, tasks)
        return
    ctx = multiprocessing.get_context("fork")  # workers inherit the imported modules: starts in milliseconds
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(text, source, str(out))
    ) as ex:
        yield from ex.map(_run, tasks, chunksize=4)


# ---- the archive -------------------------------------------------------------------------------------------


def _prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        cat = out / "catalog.json"
        if not cat.is_file() or not json.loads(cat.read_text()).get("id", "").startswith(CATALOG_ID):
            raise InvalidInputError(
                f"out: {out} is not empty and is not a sample archive; choose an empty folder", field="out"
            )
        for name in ("sentinel-2-l2a", "sentinel-1-grd", "truth", "catalog.json"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (out / "truth" / "scenes").mkdir(parents=True, exist_ok=True)


def _seasonal_harvests(
    place: Any, model: PlaceModel, grid: Grid, records: list[dict[str, Any]], out: Path
) -> list[dict[str, Any]]:
    """The harvests the crop calendar produces every year (not scripted, but in the pixels all the same).

    Every crop curve drops to bare stubble once a year; a parcel's harvest day is the curve's drop shifted by the
    parcel's phenology jitter (and by half a year in the southern temperate hemisphere). One truth event per crop
    and year whose harvest window touches the place's period, unless a scripted harvest already covers that crop
    and year (it moves those parcels' dates and is recorded as itself)."""
    g_ = model.ground
    hemi = 182 if g_.hemisphere < 0 and g_.climate != "tropical" else 0
    scripted = {(em.event.crop or "wheat", em.event.start.year) for em in model.events if em.event.type == "harvest"}
    start, end = place.period.start, place.period.end
    result = []
    for crop in CROPS:
        area = g_.cover == crop
        if not area.any():
            continue
        knots = _curve(g_.climate, crop)
        drop = next((k[0] for a, k in itertools.pairwise(knots) if k[1] < 0.05 and a[1] >= 0.05), None)
        if drop is None:
            continue
        doy = np.mod(drop - hemi - g_.jitter[area] - 1, 365) + 1
        first, last = int(np.floor(doy.min())), int(np.ceil(doy.max()))
        name = crop.name.lower()
        for year in range(start.year - 1, end.year + 1):
            if (name, year) in scripted:
                continue
            h0 = dt.date(year, 1, 1) + dt.timedelta(days=first - 1)
            h1 = dt.date(year, 1, 1) + dt.timedelta(days=last - 1)
            if h1 < start or h0 > end:
                continue
            ev_id = f"{place.id}-harvest-{name}-{year}-calendar"
            extent_rel = f"events/{ev_id}.tif"
            prod.write_geotiff(out / "truth" / extent_rel, area.astype(np.uint8), grid.epsg, grid.transform(1))
            lo, hi = h0.isoformat(), (h1 + dt.timedelta(days=60)).isoformat()
            scenes = sorted(r["item_id"] for r in records if r["place"] == place.id and lo <= r["datetime"][:10] <= hi)
            result.append(
                {
                    "id": ev_id,
                    "type": "harvest",
                    "place": place.id,
                    "start_datetime": f"{h0.isoformat()}T00:00:00Z",
                    "end_datetime": f"{h1.isoformat()}T23:59:59Z",
                    "peak_datetime": None,
                    "description": f"{name} harvest {year} (crop calendar)",
                    "geometry": _polygon_lonlat(area, grid),
                    "area_km2": round(float(area.sum()) * grid.resolution**2 / 1e6, 4),
                    "extent": extent_rel,
                    "parameters": {"crop": name, "source": "crop_calendar"},
                    "scenes": scenes,
                }
            )
    return result


def _polygon_lonlat(mask: np.ndarray, grid: Grid) -> dict[str, Any] | None:
    if not mask.any():
        return None
    shapes = [shape(g) for g, v in features.shapes(mask.astype(np.uint8), mask=mask, transform=grid.transform(1)) if v]
    geom = unary_union(shapes).simplify(grid.resolution, preserve_topology=True)
    tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    lonlat = shapely_transform(lambda x, y, z=None: tr.transform(x, y), geom)
    rounded: dict[str, Any] = json.loads(json.dumps(mapping(lonlat)), parse_float=lambda s: round(float(s), 7))
    return rounded


def _collection(coll: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A static collection: extent and summaries from its items, links to them (sorted, relative)."""
    s2 = coll == "sentinel-2-l2a"
    if items:
        west = min(i["bbox"][0] for i in items)
        south = min(i["bbox"][1] for i in items)
        east = max(i["bbox"][2] for i in items)
        north = max(i["bbox"][3] for i in items)
        times = sorted(i["datetime"] for i in items)
        extent = {"spatial": {"bbox": [[west, south, east, north]]}, "temporal": {"interval": [[times[0], times[-1]]]}}
    else:
        extent = {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}
    platforms = sorted({i["platform"] for i in items})
    summaries: dict[str, Any] = {"platform": platforms, "constellation": ["sentinel-2" if s2 else "sentinel-1"]}
    if s2:
        summaries["instruments"] = ["msi"]
        summaries["eo:bands"] = [
            {
                "name": b,
                "common_name": v[0],
                "description": v[1],
                "center_wavelength": v[2],
                "full_width_half_max": v[3],
            }
            for b, v in prod.S2_BANDS.items()
        ]
    else:
        summaries.update(
            {"instruments": ["c-sar"], "sar:instrument_mode": ["IW"], "sar:polarizations": ["VV", "VH"],
             "sar:product_type": ["GRD"], "sar:frequency_band": ["C"]}
        )  # fmt: skip
    links = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        {"rel": "license", "href": prod.LICENSE_URL, "title": "Legal notice on the use of Copernicus Sentinel Data"},
    ]
    links += [
        {"rel": "item", "href": f"./{i['id']}/{i['id']}.json", "type": "application/geo+json"}
        for i in sorted(items, key=lambda i: i["id"])
    ]
    return {
        "type": "Collection",
        "stac_version": prod.STAC_VERSION,
        "stac_extensions": [],
        "id": coll,
        "title": "Sentinel-2 Level-2A (SnapEarth sample)" if s2 else "Sentinel-1 Level-1 GRD (SnapEarth sample)",
        "description": (
            "Simulated Sentinel-2 L2A bottom-of-atmosphere reflectance over real places, in the real formats "
            "(COG per band, SCL, TCI), generated by `snapearth sample build`."
            if s2
            else "Simulated Sentinel-1 IW GRD sigma0 (VV, VH, dB as int16) over real places, terrain-geocoded COGs, "
            "generated by `snapearth sample build`."
        ),
        "keywords": ["sentinel", "copernicus", "sample", "simulated"],
        "license": "proprietary",
        "providers": [
            {"name": "ESA", "roles": ["producer", "licensor"], "url": "https://sentinel.esa.int"},
            {"name": "SnapEarth", "roles": ["processor", "host"]},
        ],
        "extent": extent,
        "summaries": summaries,
        "links": links,
    }


ProgressHook = Callable[[int, int], None]


def build_archive(
    scenario_text: str,
    out: Path,
    *,
    source: str = "scenario",
    workers: int = 1,
    progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Build the archive of ``scenario_text`` (YAML) into ``out``; returns the truth manifest."""
    scenario = parse_scenario(scenario_text, source)
    out = Path(out)
    tiles: dict[str, str] = {}
    for place in scenario.places:
        tile = grid_of(scenario, place.id).mgrs_tile
        if tile in tiles:
            raise InvalidInputError(
                f"places: {place.id!r} and {tiles[tile]!r} fall in the same MGRS tile {tile}; their products "
                "would share ids",
                field="places",
            )
        tiles[tile] = place.id
    _prepare_out(out)
    tasks = plan(scenario)
    records: list[dict[str, Any]] = []
    items: dict[str, list[dict[str, Any]]] = {"sentinel-2-l2a": [], "sentinel-1-grd": []}
    for i, rec in enumerate(_records(scenario, scenario_text, source, out, tasks, workers), 1):
        records.append(rec)
        bbox = json.loads((out / rec["collection"] / rec["item_id"] / f"{rec['item_id']}.json").read_text())["bbox"]
        items[rec["collection"]].append({"id": rec["item_id"], "bbox": bbox, "datetime": rec["datetime"],
                                         "platform": rec["platform"]})  # fmt: skip
        if progress:
            progress(i, len(tasks))

    # truth: land cover, elevation and event extents per place
    places_truth = []
    events_truth = []
    (out / "truth" / "places").mkdir(parents=True, exist_ok=True)
    (out / "truth" / "events").mkdir(parents=True, exist_ok=True)
    for place in scenario.places:
        grid = grid_of(scenario, place.id)
        model = place_model(scenario, place.id)
        folder = out / "truth" / "places" / place.id
        folder.mkdir(exist_ok=True)
        prod.write_geotiff(folder / "landcover.tif", model.ground.cover, grid.epsg, grid.transform(1), nodata=0)
        prod.write_geotiff(folder / "elevation.tif", model.ground.elevation, grid.epsg, grid.transform(1))
        counts = np.bincount(model.ground.cover.ravel(), minlength=len(Cover) + 1)
        places_truth.append(
            {
                "id": place.id,
                "name": place.name,
                "country": place.country,
                "lon": place.lon,
                "lat": place.lat,
                "landscape": place.landscape,
                "period": {"start": place.period.start.isoformat(), "end": place.period.end.isoformat()},
                "mgrs_tile": grid.mgrs_tile,
                "epsg": grid.epsg,
                "shape": list(grid.shape(1)),
                "transform": list(grid.transform(1))[:6],
                "bbox": _bbox_lonlat(grid),
                "landcover": f"places/{place.id}/landcover.tif",
                "elevation": f"places/{place.id}/elevation.tif",
                "landcover_fractions": {
                    c.name.lower(): round(int(counts[c]) / model.ground.cover.size, 6) for c in Cover
                },
            }
        )
        for em in model.events:
            ev = em.event
            extent_rel = f"events/{ev.id}.tif"
            prod.write_geotiff(out / "truth" / extent_rel, em.area.astype(np.uint8), grid.epsg, grid.transform(1))
            scenes = sorted(r["item_id"] for r in records if r["place"] == place.id and r["events"].get(ev.id, 0) > 0)
            events_truth.append(
                {
                    "id": ev.id,
                    "type": ev.type,
                    "place": place.id,
                    "start_datetime": f"{ev.start.isoformat()}T00:00:00Z",
                    "end_datetime": f"{ev.end.isoformat()}T23:59:59Z",
                    "peak_datetime": f"{ev.peak.isoformat()}T12:00:00Z" if ev.peak else None,
                    "description": ev.description,
                    "geometry": _polygon_lonlat(em.area, grid),
                    "area_km2": round(float(em.area.sum()) * grid.resolution**2 / 1e6, 4),
                    "extent": extent_rel,
                    "parameters": _event_parameters(ev),
                    "scenes": scenes,
                }
            )
        events_truth.extend(_seasonal_harvests(place, model, grid, records, out))
    records.sort(key=lambda r: (r["place"], r["datetime"], r["collection"]))
    for coll, coll_items in items.items():
        if coll in scenario.sensors:
            (out / coll).mkdir(exist_ok=True)
            prod.dump_json(out / coll / "collection.json", _collection(coll, coll_items))
    catalog = {
        "type": "Catalog",
        "stac_version": prod.STAC_VERSION,
        "id": f"{CATALOG_ID}-{scenario.name}",
        "title": f"SnapEarth sample archive ({scenario.name})",
        "description": scenario.description or f"Sample archive built from scenario {scenario.name}",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
        + [
            {"rel": "child", "href": f"./{c}/collection.json", "type": "application/json"}
            for c in ("sentinel-2-l2a", "sentinel-1-grd")
            if c in scenario.sensors
        ],
    }
    prod.dump_json(out / "catalog.json", catalog)
    manifest = {
        "version": TRUTH_VERSION,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "landcover_classes": [{"value": int(c), "name": c.name.lower()} for c in Cover],
        "state_codes": [{"value": int(s), "name": s.name.lower()} for s in State],
        "places": places_truth,
        "events": events_truth,
        "scenes": records,
    }
    prod.dump_json(out / "truth" / "manifest.json", manifest)
    return manifest


def _bbox_lonlat(grid: Grid) -> list[float]:
    ring = grid.footprint_lonlat()
    return [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)]


def _event_parameters(ev: Any) -> dict[str, Any]:
    keys = {
        "flood": ("coverage", "radius_km", "lon", "lat"),
        "wildfire": ("radius_km", "lon", "lat"),
        "snow": ("snowline_m",),
        "drought": ("severity",),
        "deforestation": ("radius_km", "lon", "lat"),
        "harvest": ("crop",),
    }[ev.type]
    return {k: getattr(ev, k) for k in keys}
