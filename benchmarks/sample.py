"""Sample archive benchmark: wall time, disk and peak memory of `snapearth sample build`.

    .venv/bin/python -m benchmarks.sample [--scenario demo] [--workers 2] [--out DIR] [--keep]

Runs the real command in a subprocess and samples the resident memory of its whole process tree (the command and
its workers) every 0.1 s; reports the peak of the sum and of the largest process, the wall time, the disk used,
the number of products, and the machine's load (other work slows the build down). Bounds of issue 3: the demo
builds in <= 180 s on 2 cores within <= 1.5 GB of disk. JSON on stdout and in
``benchmarks/results/sample-<scenario>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results"


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(sum, max) resident bytes of a process and its descendants."""
    sizes = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.Error:
            continue
    return sum(sizes), max(sizes, default=0)


def _disk(folder: Path) -> tuple[int, int]:
    total = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            total += os.stat(os.path.join(root, name)).st_blocks * 512
            files += 1
    return total, files


def run(scenario: str, workers: int, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "snapearth.cli", "sample", "build", "--scenario", scenario, "--out", str(out),
           "--workers", str(workers), "--quiet"]  # fmt: skip
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak_sum = peak_max = 0
    while proc.poll() is None:
        try:
            total, largest = _tree_rss(ps)
            peak_sum, peak_max = max(peak_sum, total), max(peak_max, largest)
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - started
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"sample build failed ({proc.returncode}): {stderr.strip()}")
    cpu = sum(os.times()[2:4])  # user + system time of the waited-for command and its workers
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    disk, files = _disk(out)
    n_s2 = sum(1 for s in manifest["scenes"] if s["collection"] == "sentinel-2-l2a")
    return {
        "benchmark": "sample",
        "scenario": scenario,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "wall_s": round(wall, 1),
        "cpu_s_children": round(cpu, 1),
        "products": len(manifest["scenes"]),
        "sentinel_2_products": n_s2,
        "sentinel_1_products": len(manifest["scenes"]) - n_s2,
        "places": len(manifest["places"]),
        "events": len(manifest["events"]),
        "products_per_s": round(len(manifest["scenes"]) / wall, 2),
        "disk_mb": round(disk / 2**20, 1),
        "files": files,
        "peak_rss_tree_mb": round(peak_sum / 2**20, 1),
        "peak_rss_largest_process_mb": round(peak_max / 2**20, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "bounds": {"wall_s": 180, "disk_mb": 1536},
        "within_bounds": wall <= 180 and disk <= 1536 * 2**20,
        # on a busy machine the wall time measures the other work too: CPU time / workers is what an idle
        # machine with that many cores would take (the build is CPU-bound; serial parts are small)
        "idle_estimate_wall_s": round(cpu / max(1, min(workers, os.cpu_count() or 1)), 1),
        "command": " ".join(cmd[1:]),
        "output": stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="demo")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None, help="archive folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the archive built in a temporary folder")
    args = parser.parse_args()
    tmp = None if args.out else Path(tempfile.mkdtemp(prefix="snapearth-sample-"))
    out = args.out if args.out else Path(str(tmp)) / "archive"
    try:
        result = run(args.scenario, args.workers, out)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (RESULTS / f"sample-{args.scenario}.json").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
