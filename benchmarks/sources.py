"""Sources benchmark: harvest rate through real EODAG over real HTTP, merge rate, incremental re-run cost.

    .venv/bin/python -m benchmarks.sources --items 2000 [--page-size 100] [--out FILE]

1. ``--items`` realistic Sentinel-2 L2A items (Planetary Computer layout, ``snapearth.sources.itemgen``) are
   served by a STAC ``/search`` on loopback that paginates like a STAC API (tests/sources/replay.py).
2. ``planetary_computer`` (EODAG's own provider configuration, endpoint moved to loopback) is harvested into a
   fresh SQLite catalog: EODAG request + parsing, normalisation, merge, upsert, state checkpoints per page.
3. A second provider (``eu_mirror``, the same products under another host) is harvested into the same catalog:
   every item merges into an existing one (alternate assets), which costs a read per item.
4. The first harvest is run again: the state says the window is covered, no request is made.
5. Normalisation coverage per provider over the recorded real answers (../shared/data/real-metadata).

Rates are given per wall-clock second and per CPU second of this process (which includes the loopback server's
threads): on a machine shared with other work the second is the stable one. JSON on stdout and in
``benchmarks/results/sources-<items>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapely.geometry import box

from snapearth.catalog import SearchRequest, open_catalog
from snapearth.sources import itemgen
from snapearth.sources.eodag_source import EodagGateway
from snapearth.sources.harvest import harvest
from snapearth.sources.query import parse_window
from tests.sources.fieldmaps import coverage
from tests.sources.replay import RECORDED, ReplayServer, StacPages

RESULTS = Path(__file__).resolve().parent / "results"
PC_HOST = "https://sentinel2l2a01.blob.core.windows.net"
RECORDINGS = {
    "cop_dataspace": ("cop_dataspace_search.json", "value"),
    "earth_search": ("earth_search_search.json", "features"),
    "geodes": ("geodes_search.json", "features"),
    "sara": ("sara_search.json", "features"),
    "aws_eos": ("awseos_search.json", "results"),
}


def mirrored(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(items)
    for item in out:
        for asset in item["assets"].values():
            asset["href"] = asset["href"].replace(PC_HOST, "https://mirror.example.eu")
    return out


def coverage_table() -> dict[str, Any]:
    table: dict[str, Any] = {}
    for provider, (name, entry) in RECORDINGS.items():
        records = json.loads((RECORDED / name).read_text())[entry]
        pairs = [coverage(provider, record) for record in records]
        kept, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        table[provider] = {
            "records": len(records),
            "fields_kept": kept,
            "fields": total,
            "share": round(kept / total, 3),
        }
    return table


def run(count: int, page_size: int) -> dict[str, Any]:
    start = datetime(2023, 6, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    items = list(itemgen.generate_items(count, seed=7, start=start))
    generated_s = time.perf_counter() - t0
    first, last = items[0]["properties"]["datetime"][:10], items[-1]["properties"]["datetime"][:10]
    window = parse_window(f"{first}/{last}", "sentinel-2-l2a")
    work = Path(tempfile.mkdtemp(prefix="sources-bench-"))
    os.environ["EODAG_CFG_DIR"] = str(work / "eodag")
    results: dict[str, Any] = {"items": count, "page_size": page_size, "item_generation_s": round(generated_s, 2)}
    with ReplayServer() as server:
        server.route("/pc/search", StacPages(server, "/pc/search", items))
        server.route("/mirror/search", StacPages(server, "/mirror/search", mirrored(items)))
        gateway = EodagGateway(
            cfg_dir=work / "eodag",
            providers=("planetary_computer", "eu_mirror"),
            provider_overrides={
                "planetary_computer": {"search": {"api_endpoint": f"{server.url}/pc/search"}},
                "eu_mirror": {
                    "url": "https://mirror.example.eu",
                    "search": {"type": "StacSearch", "api_endpoint": f"{server.url}/mirror/search"},
                    "products": {"S2_MSI_L2A": {"_collection": "sentinel-2-l2a"}},
                    "download": {"type": "HTTPDownload"},
                },
            },
            page_size=page_size,
        )
        assert gateway.dag is not None  # EODAG start-up is not part of the rates
        catalog = open_catalog(f"sqlite:///{work / 'catalog.db'}")
        area = box(-180, -90, 180, 90)

        def timed(provider: str) -> tuple[Any, float, float, int]:
            """The harvest report, its wall and CPU seconds, and the requests the server saw."""
            before = len(server.log)
            cpu = time.process_time()
            t = time.perf_counter()
            report = harvest(
                catalog,
                gateway,
                providers=[provider],
                collection="sentinel-2-l2a",
                geometry=area,
                window=window,
                priority=["planetary_computer", "eu_mirror"] if provider == "eu_mirror" else None,
            )
            cpu_seconds = time.process_time() - cpu
            return report, time.perf_counter() - t, cpu_seconds, len(server.log) - before

        def rates(seconds: float, cpu_seconds: float) -> dict[str, float]:
            return {
                "seconds": round(seconds, 2),
                "items_per_s": round(count / seconds, 1),
                "cpu_seconds": round(cpu_seconds, 2),
                "items_per_cpu_s": round(count / cpu_seconds, 1),
            }

        def stored() -> int | None:
            return catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=1, count=True)).number_matched

        report, seconds, cpu_seconds, requests = timed("planetary_computer")
        results["harvest"] = {
            **rates(seconds, cpu_seconds),
            "requests": requests,
            "pages": report.providers[0].pages,
            "stored": stored(),
        }
        report, seconds, cpu_seconds, requests = timed("eu_mirror")
        results["merge_second_provider"] = {
            **rates(seconds, cpu_seconds),
            "requests": requests,
            "merged": report.merged,
            "stored_after": stored(),
        }
        report, seconds, _, requests = timed("planetary_computer")
        results["incremental_rerun"] = {
            "seconds": round(seconds, 3),
            "requests": requests,
            "status": report.providers[0].status,
        }
        sample = catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=1)).items[0]
        results["merged_item_sources"] = [s["provider"] for s in sample["properties"]["snapearth:sources"]]
        catalog.close()
    results["normalisation_coverage"] = coverage_table()
    results["machine"] = {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = run(args.items, args.page_size)
    text = json.dumps(results, indent=2)
    print(text)
    out = args.out or RESULTS / f"sources-{args.items}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
