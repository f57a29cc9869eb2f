"""Tile benchmark: p50/p95 latency of true-colour XYZ tiles on the sample COGs, SnapEarth vs titiler-core.

    .venv/bin/python -m benchmarks.tiles [--requests 300] [--seed 7] [--out FILE]

1. Builds the ``test`` sample scenario (``snapearth sample build``) in a temporary folder and loads it into a
   SQLite catalog.
2. Starts two uvicorn servers (one process each, one worker, loopback): SnapEarth (``create_app``) and
   titiler-core's ``MultiBaseTilerFactory`` with rio-tiler's ``STACReader`` over the same item JSON files.
3. Both draw the same Sentinel-2 tiles (three band COGs B04/B03/B02, stretched, PNG): SnapEarth
   ``/collections/{c}/items/{id}/tiles/{z}/{x}/{y}.png?rendering=truecolor``, titiler
   ``/stac/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url=ITEM&assets=B04&assets=B03&assets=B02&rescale=1000,4000``.
   Tiles are drawn at random (seeded) from the three finest zoom levels of every item; requests alternate
   between the servers, one at a time, after a warm-up of 20 requests each. Target: SnapEarth p95 <= 0.5 x
   titiler p95. JSON on stdout and in ``benchmarks/results/tiles.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import morecantile
from fastapi import FastAPI

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TMS = morecantile.tms.get("WebMercatorQuad")
TARGET_RATIO = 0.5
TITILER_TRUECOLOR = [("assets", "B04"), ("assets", "B03"), ("assets", "B02"), ("rescale", "1000,4000")]


def titiler_app() -> FastAPI:
    """titiler-core serving STAC items (uvicorn factory)."""
    from rio_tiler.io import STACReader
    from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from titiler.core.factory import MultiBaseTilerFactory

    app = FastAPI()
    app.include_router(MultiBaseTilerFactory(reader=STACReader, router_prefix="/stac").router, prefix="/stac")
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", "--workers", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/docs", timeout=1)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                reason = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{target} did not start: {reason}") from None
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start in 180 s")


def _percentiles(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per server")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "tiles.json")
    args = parser.parse_args(argv)

    from snapearth.catalog import SearchRequest, open_catalog
    from snapearth.catalog.load import load_paths
    from snapearth.sources.sample.build import build_archive
    from snapearth.sources.sample.scenario import scenario_text

    with tempfile.TemporaryDirectory(prefix="snapearth-tiles-") as tmp:
        work = Path(tmp)
        archive = work / "sample"
        text, source = scenario_text("test")
        build_archive(text, archive, source=source, workers=1)
        catalog_url = f"sqlite:///{work / 'catalog.db'}"
        catalog = open_catalog(catalog_url)
        load_paths(catalog, [archive / "catalog.json"])
        items = catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=100)).items
        catalog.close()
        item_files = {p.stem: p for p in archive.glob("sentinel-2-l2a/*/*.json")}

        from rio_tiler.io import Reader

        rng = random.Random(args.seed)
        candidates: list[tuple[str, morecantile.Tile]] = []
        for item in items:
            with Reader(item["assets"]["B04"]["href"]) as reader:
                maxzoom = int(reader.maxzoom)
            west, south, east, north = item["bbox"]
            tiles = list(TMS.tiles(west, south, east, north, zooms=[maxzoom - 2, maxzoom - 1, maxzoom]))
            candidates += [(item["id"], tile) for tile in tiles]
        draws = [rng.choice(candidates) for _ in range(args.requests + 20)]

        env = {**os.environ, "SNAPEARTH_CATALOG": catalog_url, "SNAPEARTH_DATA": str(work), "PYTHONWARNINGS": "ignore"}
        ours, ours_url = _serve("snapearth.api.app:create_app", env)
        theirs, theirs_url = _serve("benchmarks.tiles:titiler_app", env)
        durations: dict[str, list[float]] = {"snapearth": [], "titiler": []}
        statuses: dict[str, dict[int, int]] = {"snapearth": {}, "titiler": {}}
        try:
            with httpx.Client(timeout=60) as client:
                for n, (item_id, tile) in enumerate(draws):
                    requests = [
                        (
                            "snapearth",
                            f"{ours_url}/collections/sentinel-2-l2a/items/{item_id}/tiles/{tile.z}/{tile.x}/{tile.y}.png",
                            [("rendering", "truecolor")],
                        ),
                        (
                            "titiler",
                            f"{theirs_url}/stac/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png",
                            [("url", str(item_files[item_id])), *TITILER_TRUECOLOR],
                        ),
                    ]
                    if n % 2:
                        requests.reverse()
                    for name, url, params in requests:
                        started = time.perf_counter()
                        response = client.get(url, params=tuple(params))
                        elapsed = time.perf_counter() - started
                        if n >= 20:
                            durations[name].append(elapsed)
                            statuses[name][response.status_code] = statuses[name].get(response.status_code, 0) + 1
        finally:
            for process in (ours, theirs):
                process.terminate()
                process.wait(timeout=10)

    ours_stats, theirs_stats = _percentiles(durations["snapearth"]), _percentiles(durations["titiler"])
    ratio = ours_stats["p95_ms"] / theirs_stats["p95_ms"]
    result = {
        "benchmark": "tiles",
        "scenario": "test",
        "items": len(items),
        "requests_per_server": args.requests,
        "rendering": "truecolor (B04, B03, B02 -> PNG 256x256)",
        "snapearth": {**ours_stats, "statuses": statuses["snapearth"]},
        "titiler_core": {**theirs_stats, "statuses": statuses["titiler"]},
        "p95_ratio": round(ratio, 3),
        "target_p95_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
