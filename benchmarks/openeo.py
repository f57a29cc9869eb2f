"""openEO benchmark: an NDVI monthly-mean batch job vs the same computation written directly in xarray/dask.

    .venv/bin/python -m benchmarks.openeo [--size-km 10.24] [--resolution 20] [--months 6] [--repeat 3] [--out DIR]

Builds a sample archive (``snapearth sample build`` with a one-place Sentinel-2 scenario of the given size),
loads it into a SQLite catalog, then on one shared Dask LocalCluster alternates, ``--repeat`` times:

* openEO: a batch job (load_collection B04/B08 -> ndvi -> aggregate_temporal_period(month, mean) ->
  save_result netCDF) created, started and run by ``OpenEOService`` (catalog search, graph parsing,
  metering, netCDF writing, STAC publication included), timed from start to ``finished``;
* direct: catalog search -> odc.stac.load -> scale/offset and nodata per band -> NDVI -> resample(t="MS").mean()
  -> compute on the same cluster -> netCDF.

Both results are compared (max abs difference). Reports medians and the ratio (target <= 1.2). JSON on stdout
and in ``benchmarks/results/openeo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

RESULTS = Path(__file__).parent / "results"

SCENARIO = """\
name: openeo-benchmark
description: One place, Sentinel-2 only, for the openEO benchmark.
seed: 11
sensors: [sentinel-2-l2a]
size_km: {size_km}
resolution_m: {resolution}
places:
  - id: beauce
    name: Chartres
    country: FR
    lon: 1.4890
    lat: 48.4469
    landscape: cropland_plain
    elevation_m: 150
    period: {{start: 2022-01-01, end: {end}}}
events: []
"""


def build_archive(out: Path, size_km: float, resolution: int, months: int) -> Path:
    from snapearth.sources.sample.build import build_archive as build

    end = f"{2022 + (months // 12)}-{months % 12 + 1:02d}-01"
    archive = out / "archive"
    if not (archive / "catalog.json").exists():
        text = SCENARIO.format(size_km=size_km, resolution=resolution, end=end)
        build(text, archive, source="benchmark", workers=os.cpu_count() or 1)
    return archive


def ndvi_monthly_graph(bbox: list[float], start: str, end: str) -> dict[str, Any]:
    mean = {
        "process_graph": {
            "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}
        }
    }
    return {
        "process": {
            "process_graph": {
                "load": {
                    "process_id": "load_collection",
                    "arguments": {
                        "id": "sentinel-2-l2a",
                        "spatial_extent": dict(zip(("west", "south", "east", "north"), bbox, strict=True)),
                        "temporal_extent": [start, end],
                        "bands": ["B04", "B08"],
                    },
                },
                "ndvi": {
                    "process_id": "ndvi",
                    "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"},
                },
                "monthly": {
                    "process_id": "aggregate_temporal_period",
                    "arguments": {"data": {"from_node": "ndvi"}, "period": "month", "reducer": mean},
                },
                "save": {
                    "process_id": "save_result",
                    "arguments": {"data": {"from_node": "monthly"}, "format": "netCDF"},
                    "result": True,
                },
            }
        }
    }


def direct(catalog: Any, client: Any, bbox: list[float], start: str, end: str, out: Path) -> Path:
    """The same NDVI monthly mean, written by hand with odc-stac + xarray on the same Dask cluster."""
    import odc.stac
    import pystac

    from snapearth.catalog import SearchRequest

    request = SearchRequest(collections=["sentinel-2-l2a"], bbox=bbox, datetime=f"{start}T00:00:00Z/{end}T00:00:00Z")
    items = [i for i in catalog.iter_items(request) if i["properties"]["datetime"] < f"{end}T00:00:00Z"]
    epsg = (
        items[0]["properties"]["proj:epsg"]
        if "proj:epsg" in items[0]["properties"]
        else int(items[0]["properties"]["proj:code"].split(":")[1])
    )
    resolution = items[0]["assets"]["B04"]["raster:bands"][0]["spatial_resolution"]
    ds = odc.stac.load(
        [pystac.Item.from_dict(i) for i in items],
        bands=["B04", "B08"],
        crs=f"EPSG:{epsg}",
        resolution=resolution,
        bbox=(bbox[0], bbox[1], bbox[2], bbox[3]),
        groupby="solar_day",
        chunks={"time": 1, "x": 2048, "y": 2048},
    )
    by_time = {np.datetime64(i["properties"]["datetime"].rstrip("Z"), "ns"): i for i in items}
    times = list(by_time)

    def physical(band: str) -> xr.DataArray:
        chosen = [by_time[times[int(np.argmin([abs(t - x) for t in times]))]] for x in ds.time.values]
        scale = xr.DataArray([c["assets"][band]["raster:bands"][0]["scale"] for c in chosen], dims="time")
        offset = xr.DataArray([c["assets"][band]["raster:bands"][0]["offset"] for c in chosen], dims="time")
        raw = ds[band]
        return (raw.astype("float32") * scale.astype("float32") + offset.astype("float32")).where(raw != 0)

    red, nir = physical("B04"), physical("B08")
    ndvi = (nir - red) / (nir + red)
    monthly = ndvi.resample(time="MS").mean()
    result = client.compute(monthly).result()
    path = out / "direct.nc"
    result.to_dataset(name="ndvi").drop_vars("spatial_ref", errors="ignore").to_netcdf(path, engine="netcdf4")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-km", type=float, default=10.24)
    parser.add_argument("--resolution", type=int, default=20)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Work folder (kept; reused when it holds an archive).")
    args = parser.parse_args()

    from distributed import LocalCluster

    from snapearth.catalog import open_catalog
    from snapearth.catalog.load import load_paths
    from snapearth.processing.auth import Auth
    from snapearth.processing.service import OpenEOService, ServiceConfig

    out = args.out or Path(tempfile.mkdtemp(prefix="openeo-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    archive = build_archive(out, args.size_km, args.resolution, args.months)
    build_s = time.perf_counter() - t0
    db = out / "catalog.db"
    db.unlink(missing_ok=True)
    catalog = open_catalog(f"sqlite:///{db}")
    load_paths(catalog, [archive / "catalog.json"])
    collection = catalog.get_collection("sentinel-2-l2a")
    bbox = collection["extent"]["spatial"]["bbox"][0]
    start, end = "2022-01-01", f"{2022 + args.months // 12}-{args.months % 12 + 1:02d}-01"

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="2GiB"
    )
    user = Auth(catalog).add_user("bench", "benchmark-password")
    service = OpenEOService(
        catalog, ServiceConfig(workdir=out / "openeo", dask_scheduler=cluster.scheduler_address, max_concurrent_jobs=1)
    )
    graph = ndvi_monthly_graph(bbox, start, end)
    timings: dict[str, list[float]] = {"openeo": [], "direct": []}
    usage: dict[str, Any] = {}
    openeo_file = direct_file = None
    try:
        client = service.client()
        # warm both paths once (imports, first reads), untimed
        service.evaluate(graph)
        direct(catalog, client, bbox, start, end, out)
        for _ in range(args.repeat):
            job = service.create_job(user, graph)
            t = time.perf_counter()
            service.runner.start(job["id"])
            while service.store.get(job["id"])["status"] in ("queued", "running"):
                time.sleep(0.01)
            timings["openeo"].append(time.perf_counter() - t)
            job = service.store.get(job["id"])
            assert job["status"] == "finished", job.get("error")
            usage = {"usage": job["usage"], "costs": job["costs"]}
            openeo_file = Path(job["results"][0]["path"])

            t = time.perf_counter()
            direct_file = direct(catalog, client, bbox, start, end, out)
            timings["direct"].append(time.perf_counter() - t)
        assert openeo_file is not None
        assert direct_file is not None
        with xr.open_dataset(openeo_file) as a, xr.open_dataset(direct_file) as b:
            va = a[next(iter(a.data_vars))].values
            vb = b["ndvi"].values
            same_shape = va.shape == vb.shape
            max_diff = float(np.nanmax(np.abs(va - vb))) if same_shape else None
            months = int(va.shape[0])
    finally:
        service.close()
        cluster.close()
        catalog.close()

    items = len(list(archive.glob("sentinel-2-l2a/*/*.json")))
    openeo_s = statistics.median(timings["openeo"])
    direct_s = statistics.median(timings["direct"])
    result = {
        "benchmark": "openeo",
        "scenario": {
            "size_km": args.size_km,
            "resolution_m": args.resolution,
            "months": args.months,
            "sentinel2_items": items,
            "pixels_per_image": int((args.size_km * 1000 / args.resolution) ** 2),
        },
        "cluster": {"workers": args.workers, "threads_per_worker": 1, "processes": True},
        "archive_build_s": round(build_s, 2),
        "repeat": args.repeat,
        "openeo_job_s": [round(v, 3) for v in timings["openeo"]],
        "direct_xarray_s": [round(v, 3) for v in timings["direct"]],
        "openeo_median_s": round(openeo_s, 3),
        "direct_median_s": round(direct_s, 3),
        "ratio": round(openeo_s / direct_s, 3),
        "target_ratio": 1.2,
        "meets_target": openeo_s / direct_s <= 1.2,
        "results_match": {"same_shape": same_shape, "max_abs_diff": max_diff, "months": months},
        "last_job": usage,
        "load_average": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "openeo.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
