"""Catalog benchmark: bulk-load rate and memory, and the latency of a fixed query mix, on either backend.

    .venv/bin/python -m benchmarks.catalog --items 100000 --backend sqlite|pgstac [--pg-url URL] [--out FILE]

1. Generates ``--items`` realistic Sentinel-2 L2A items (``snapearth.sources.itemgen``) once into
   ``benchmarks/.cache/`` (ndjson, reused by later runs).
2. Loads them in a separate process (``catalog.load.load_paths``, what ``snapearth catalog ingest`` runs, in
   insert mode) whose resident memory is sampled every 50 ms, so the query phase cannot pollute it; the rate is
   timed inside that process, without the interpreter's start-up. For pgstac the server's memory is sampled too
   (sum of the proportional set sizes of its processes: shared buffers are counted once).
3. Runs the query mix through the Catalog contract, after a warm-up, with random (seeded) draws:
   ``bbox_month_cloud`` (1x1 degree bbox + one month + ``eo:cloud_cover < 20``, newest first, limit 50),
   ``cql2_text`` and ``cql2_json`` (property filters), ``deep_paging`` (pages 1 to 300 through continuation
   tokens, limit 50), ``aggregation`` (counts per month, cloud-cover histogram, geohash cells over a 5x5 degree
   region). Reports p50/p95 in milliseconds.

Targets of issue 2 for the embedded backend at 1M items: load >= 20,000 items/s, loader RSS <= 1 GB, every query
p95 <= 30 ms. With ``--backend pgstac`` and no ``--pg-url`` a throwaway PostgreSQL + PostGIS + pgstac server is
started (``tests.pgserver``, the same one the tests use) with fsync on. JSON on stdout and in
``benchmarks/results/catalog-<backend>-<items>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from snapearth.catalog import SearchRequest, SortKey, open_catalog
from snapearth.catalog.base import Catalog
from snapearth.sources import itemgen

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
START = datetime(2023, 1, 1, tzinfo=UTC)
TARGETS = {"load_items_per_s": 20_000, "loader_peak_rss_mb": 1024, "query_p95_ms": 30}
SAMPLES_KEPT = 2_000


# --- the items ---------------------------------------------------------------------------------------------------


def cached_items(count: int, seed: int, cache: Path = CACHE) -> tuple[Path, dict[str, Any]]:
    """The ndjson of ``count`` generated items and what the query draws need (tiles, months, orbits)."""
    path = cache / f"s2l2a-{count}-seed{seed}.ndjson"
    meta_path = path.with_suffix(".meta.json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    every = max(1, count // SAMPLES_KEPT)
    samples: list[dict[str, Any]] = []
    months: set[str] = set()
    started, cpu = time.perf_counter(), time.process_time()

    def sampled() -> Iterator[str]:  # every item, the sampled ones also noted for the query draws
        for index, line in enumerate(itemgen.generate_ndjson(count, seed=seed, start=START)):
            if index % every == 0:
                item = orjson.loads(line)
                props = item["properties"]
                west, south, east, north = item["bbox"]
                samples.append(
                    {
                        "lon": (west + east) / 2,
                        "lat": (south + north) / 2,
                        "grid": props["grid:code"],
                        "orbit": props["sat:relative_orbit"],
                        "month": props["datetime"][:7],
                    }
                )
                months.add(props["datetime"][:7])
            yield line

    partial = path.with_suffix(".partial")
    written = itemgen.write_lines(partial, sampled())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    partial.rename(path)
    meta = {
        "items": written,
        "seed": seed,
        "bytes": path.stat().st_size,
        "generate_items_per_s": round(written / elapsed),
        "generate_items_per_cpu_s": round(written / max(cpu, 1e-9)),
        "months": sorted(months),
        "samples": samples,
    }
    meta_path.write_text(json.dumps(meta))
    return path, meta


# --- the backends ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def backend_url(backend: str, pg_url: str | None, workdir: Path) -> Iterator[tuple[str, int | None]]:
    """(catalog URL, local postgres server pid or None) for a fresh, empty catalog."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'catalog.db'}", None
        return
    sys.path.insert(0, str(HERE.parent))
    from tests.pgserver import PgServer

    # A deployment's settings rather than the tests' (fsync stays on): what a scale backend would run with.
    settings = {"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}
    with PgServer(url=pg_url, durable=True, settings=settings) as server:
        yield server.new_database(), server.server_pid()


def _pss_tree(pid: int) -> int:
    total = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
    except psutil.Error:
        return 0
    return total


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_in_this_process(url: str, path: Path, batch_size: int) -> None:
    """The loader process: what ``snapearth catalog ingest`` runs, timed without the interpreter's start-up."""
    from snapearth.catalog.load import load_paths

    catalog = open_catalog(url)
    started, cpu = time.perf_counter(), time.process_time()
    report = load_paths(catalog, [path], mode="insert", batch_size=batch_size)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    workers_cpu = _children_cpu()
    # then what `snapearth catalog ingest` runs next: the free-text index of the loaded items (timed apart)
    started = time.perf_counter()
    indexed = catalog.refresh_indexes()
    index_s = time.perf_counter() - started
    catalog.close()
    summary = {
        "inserted": report.inserted,
        "refused": len(report.refused),
        "load_s": elapsed,
        "cpu_s": cpu,
        "workers_cpu_s": workers_cpu,
        "text_indexed": indexed,
        "text_index_s": index_s,
    }
    sys.stdout.write(json.dumps(summary) + "\n")


def load(url: str, path: Path, server_pid: int | None, batch_size: int) -> dict[str, Any]:
    """Load in a separate process (``load_paths``, the ingest command's code); sample its RSS and the server's."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.catalog",
        "--load-only",
        url,
        str(path),
        "--batch-size",
        str(batch_size),
    ]
    peak_rss = peak_server = peak_tree = 0
    done = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE.parent)
    watched = psutil.Process(proc.pid)

    def sample() -> None:
        nonlocal peak_rss, peak_server, peak_tree
        ticks = 0
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak_rss = max(peak_rss, watched.memory_info().rss)
            if ticks % 5 == 0:  # proportional set sizes walk every mapping (the kernel's CPU, taken from the load)
                # the loader and its parsing workers together (shared pages once)
                peak_tree = max(peak_tree, _pss_tree(proc.pid))
                if server_pid is not None:
                    peak_server = max(peak_server, _pss_tree(server_pid))
            ticks += 1
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"load failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    result = {
        "items_per_s": round(summary["inserted"] / summary["load_s"]),
        # CPU seconds of the loader: on a machine shared with other work, the rate it would reach on a free core
        "items_per_cpu_s": round(summary["inserted"] / max(summary["cpu_s"], 1e-9)),
        # CPU of the loader and its parsing workers together per item: what the machine's cores must supply
        "cpu_us_per_item": round(1e6 * (summary["cpu_s"] + summary["workers_cpu_s"]) / max(summary["inserted"], 1), 1),
        "load_s": round(summary["load_s"], 2),
        "process_wall_s": round(elapsed, 2),
        "text_indexed": summary["text_indexed"],
        "text_index_s": round(summary["text_index_s"], 2),
        "inserted": summary["inserted"],
        "refused": summary["refused"],
        "batch_size": batch_size,
        "loader_peak_rss_mb": round(peak_rss / 2**20, 1),
        "loader_and_workers_peak_pss_mb": round(peak_tree / 2**20, 1),
    }
    if server_pid is not None:
        result["server_peak_pss_mb"] = round(peak_server / 2**20, 1)
    return result


# --- the queries -------------------------------------------------------------------------------------------------


def _month_interval(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    end_year, end_month = (year + 1, 1) if number == 12 else (year, number + 1)
    return f"{year:04d}-{number:02d}-01T00:00:00Z/{end_year:04d}-{end_month:02d}-01T00:00:00Z"


def _bbox_around(sample: dict[str, Any], size: float, rng: random.Random) -> list[float]:
    west = min(max(sample["lon"] - rng.uniform(0, size), -180.0), 180.0 - size)
    south = min(max(sample["lat"] - rng.uniform(0, size), -90.0), 90.0 - size)
    return [round(west, 4), round(south, 4), round(west + size, 4), round(south + size, 4)]


def query_mix(meta: dict[str, Any], rng: random.Random) -> dict[str, Callable[[Catalog], int]]:
    """Each query draws its parameters afresh at every run; returns what it found (items or buckets)."""
    samples, months = meta["samples"], meta["months"]

    def bbox_month_cloud(catalog: Catalog) -> int:
        sample = rng.choice(samples)
        request = SearchRequest(
            bbox=_bbox_around(sample, 1.0, rng),
            datetime=_month_interval(rng.choice(months)),
            filter="eo:cloud_cover < 20",
            sortby=[SortKey(field="datetime", direction="desc")],
            limit=50,
        )
        return len(catalog.search(request).items)

    def cql2_text(catalog: Catalog) -> int:
        sample = rng.choice(samples)
        text = f"sat:relative_orbit = {sample['orbit']} AND eo:cloud_cover < {rng.randint(10, 60)} AND platform = "
        text += f"'{rng.choice(['sentinel-2a', 'sentinel-2b'])}' AND s2:vegetation_percentage > {rng.randint(0, 30)}"
        return len(catalog.search(SearchRequest(filter=text, limit=50)).items)

    def cql2_json(catalog: Catalog) -> int:
        sample = rng.choice(samples)
        tree = {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "grid:code"}, sample["grid"]]},
                {"op": "between", "args": [{"property": "eo:cloud_cover"}, 0, rng.randint(20, 80)]},
                {"op": "t_intersects", "args": [{"property": "datetime"}, {"interval": _interval(months, rng)}]},
            ],
        }
        return len(catalog.search(SearchRequest(filter=tree, filter_lang="cql2-json", limit=50)).items)

    def aggregation(catalog: Catalog) -> int:
        request = SearchRequest(bbox=_bbox_around(rng.choice(samples), 5.0, rng), datetime=_interval_text(months, rng))
        names = ["total_count", "datetime_frequency:month", "cloud_cover_frequency", "geohash_frequency:3"]
        result = catalog.aggregate(request, names)
        return sum(len(a.get("buckets", [])) for a in result["aggregations"])

    return {
        "bbox_month_cloud": bbox_month_cloud,
        "cql2_text": cql2_text,
        "cql2_json": cql2_json,
        "aggregation": aggregation,
    }


def _interval(months: list[str], rng: random.Random) -> list[str]:
    first = rng.randrange(len(months))
    last = min(len(months) - 1, first + rng.randint(0, 2))
    return [_month_interval(months[first]).split("/")[0], _month_interval(months[last]).split("/")[1]]


def _interval_text(months: list[str], rng: random.Random) -> str:
    return "/".join(_interval(months, rng))


def _percentiles(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def warm_file_cache(url: str) -> float:
    """Read an embedded catalog's file once (seconds taken), as a serving catalog has it in the page cache.

    Right after a load of a 1M-item ndjson (14 GB) on a 24 GB machine, the input has pushed much of the 6 GB
    catalog out of the page cache, and the first queries would time the disk, not the catalog."""
    if not url.startswith("sqlite:"):
        return 0.0
    from snapearth.catalog.sqlite import path_from_url

    started = time.perf_counter()
    with open(path_from_url(url), "rb") as handle:
        while handle.read(2**24):
            pass
    return time.perf_counter() - started


def run_queries(url: str, meta: dict[str, Any], runs: int, warmup: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    results: dict[str, Any] = {}
    catalog = open_catalog(url)
    try:
        for name, query in query_mix(meta, rng).items():
            for _ in range(warmup):
                query(catalog)
            durations, found = [], []
            for _ in range(runs):
                started = time.perf_counter()
                found.append(query(catalog))
                durations.append(time.perf_counter() - started)
            results[name] = {**_percentiles(durations), "runs": runs, "mean_found": round(statistics.mean(found), 1)}
        results["deep_paging"] = deep_paging(catalog, pages=300)
    finally:
        catalog.close()
    return results


def deep_paging(catalog: Catalog, pages: int) -> dict[str, Any]:
    """Follow next tokens from page 1 to ``pages`` (limit 50, newest first): every page's latency counts."""
    request = SearchRequest(collections=[itemgen.COLLECTION], limit=50)
    durations: list[float] = []
    seen = 0
    token: str | None = None
    for _ in range(pages):
        started = time.perf_counter()
        page = catalog.search(request.model_copy(update={"token": token}))
        durations.append(time.perf_counter() - started)
        seen += len(page.items)
        token = page.next_token
        if not token:
            break
    return {
        **_percentiles(durations),
        "pages": len(durations),
        "last_page_ms": round(durations[-1] * 1000, 2),
        "items_seen": seen,
    }


# --- the command -------------------------------------------------------------------------------------------------


def _disk_bytes(url: str, workdir: Path) -> int:
    if url.startswith("sqlite:///"):
        return sum(p.stat().st_size for p in workdir.iterdir() if p.name.startswith("catalog.db"))
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    if argv is None and sys.argv[1:2] == ["--load-only"]:
        _, _, target, source, _, batch = sys.argv
        load_in_this_process(target, Path(source), int(batch))
        return {}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "pgstac"], default="sqlite")
    parser.add_argument(
        "--pg-url", help="an existing PostgreSQL server (a role with CREATEDB; its databases are left as found)"
    )
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/catalog-<backend>-<N>.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each query")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, help="where the sqlite catalog goes (default: a temporary folder)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where generated items are kept between runs")
    args = parser.parse_args(argv)
    if args.items < 1:
        parser.error("--items must be at least 1")

    path, meta = cached_items(args.items, args.seed, args.cache)
    workdir = Path(tempfile.mkdtemp(prefix="snapearth-bench-", dir=args.workdir))
    try:
        with backend_url(args.backend, args.pg_url, workdir) as (url, server_pid):
            catalog = open_catalog(url)
            catalog.create_collection(itemgen.collection_document())
            catalog.close()
            loaded = load(url, path, server_pid, args.batch_size)
            warmed_s = warm_file_cache(url)
            queries = run_queries(url, meta, args.runs, args.warmup, args.seed)
            disk = _disk_bytes(url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    worst_p95 = max(q["p95_ms"] for q in queries.values())
    result = {
        "benchmark": "catalog",
        "backend": args.backend,
        "items": args.items,
        "generator": {
            "ndjson_mb": round(meta["bytes"] / 2**20, 1),
            "items_per_s": meta["generate_items_per_s"],
            "items_per_cpu_s": meta.get("generate_items_per_cpu_s"),
            "months": len(meta["months"]),
        },
        "load": loaded,
        "catalog_disk_mb": round(disk / 2**20, 1),
        "file_cache_warmed_s": round(warmed_s, 2),  # the catalog file read once before the queries
        "queries": queries,
        "targets": {
            **TARGETS,
            "met": {
                "load_items_per_s": loaded["items_per_s"] >= TARGETS["load_items_per_s"],
                "loader_peak_rss_mb": max(loaded["loader_peak_rss_mb"], loaded["loader_and_workers_peak_pss_mb"])
                <= TARGETS["loader_peak_rss_mb"],
                "query_p95_ms": worst_p95 <= TARGETS["query_p95_ms"],
            },
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": sys.version.split()[0],
        },
    }
    out = args.out or RESULTS / f"catalog-{args.backend}-{args.items}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
