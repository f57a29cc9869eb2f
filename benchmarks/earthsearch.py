"""EarthSearch benchmark: parser start-up and latency, the query suite, ask at scale, retrieval nDCG@10.

    .venv/bin/python -m benchmarks.earthsearch [--items 1000000] [--scenario test|demo] [--out FILE]

- start-up: a fresh interpreter imports the parser and answers its first query (gazetteer load included);
- parse: p50/p95/max over the 303-query suite after one warm-up pass, plus pass rates per field and language;
- ask: ``--items`` generated Sentinel-2 items (``sources/itemgen.py``) in a SQLite catalog, then end-to-end
  ``Answerer.ask`` latency for place/date queries inside the generated period;
- retrieval: the sample archive (``--scenario``), enriched with EarthSignature (``snapearth enrich``), queried in
  five languages about each scripted event; nDCG@10 against ``truth/manifest.json`` (the event's scenes).

Results: JSON on stdout and in ``benchmarks/results/earthsearch.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "earthsearch.json"

THEME_WORDS = {
    "flood": {"en": "floods in", "fr": "inondations à", "de": "Hochwasser in", "es": "inundaciones en",
              "it": "alluvione a"},
    "snow": {"en": "snow in", "fr": "neige à", "de": "Schnee in", "es": "nieve en", "it": "neve a"},
    "wildfire": {"en": "wildfire in", "fr": "incendie à", "de": "Waldbrand in", "es": "incendio en",
                 "it": "incendio a"},
    "drought": {"en": "drought in", "fr": "sécheresse à", "de": "Dürre in", "es": "sequía en", "it": "siccità a"},
    "deforestation": {"en": "deforestation in", "fr": "déforestation à", "de": "Abholzung in",
                      "es": "deforestación en", "it": "deforestazione a"},
    "harvest": {"en": "harvest in", "fr": "récolte à", "de": "Ernte in", "es": "cosecha en", "it": "raccolto a"},
}  # fmt: skip
MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def latency_summary(latencies: list[float], cpu: list[float]) -> dict[str, float]:
    """Wall-time p50/p95/max and CPU-time p50/p95 of the same samples, in ms."""
    return {
        "p50_ms": ms(percentile(latencies, 0.5)),
        "p95_ms": ms(percentile(latencies, 0.95)),
        "max_ms": ms(max(latencies)),
        "cpu_p50_ms": ms(percentile(cpu, 0.5)),
        "cpu_p95_ms": ms(percentile(cpu, 0.95)),
    }


def bench_startup(runs: int = 3) -> dict[str, Any]:
    code = (
        "import time; t = time.perf_counter()\n"
        "from snapearth.earthsearch.parser import QueryParser\n"
        "p = QueryParser(); p.parse('floods near Valencia in October 2024')\n"
        "print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return {"runs_s": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}


def bench_parse(repeats: int = 3) -> dict[str, Any]:
    from snapearth.earthsearch.parser import QueryParser
    from tests.earthsearch.suite import DEFAULT_NOW, evaluate, load_suite

    parser = QueryParser()
    cases = load_suite()
    for case in cases:  # warm-up: gazetteer, language model, embedding model where used
        parser.parse(case["q"], DEFAULT_NOW)
    from snapearth.earthsearch.themes import semantic_theme

    latencies = []  # the embedding cache emptied before each pass: unknown words pay their embedding every time
    cpu = []  # this thread's CPU time: what a query costs, whatever else the (shared) machine is doing
    semantic_themes = 0
    for _ in range(repeats):
        semantic_theme.cache_clear()
        for case in cases:
            started, started_cpu = time.perf_counter(), time.thread_time()
            parsed = parser.parse(case["q"], DEFAULT_NOW)
            latencies.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            semantic_themes += any("read as theme" in note for note in parsed.notes)
    lexical = []  # the same queries with semantic matching off: the rule-based path alone
    plain = QueryParser(semantic=False)
    for case in cases:
        plain.parse(case["q"], DEFAULT_NOW)
    for _ in range(repeats):
        for case in cases:
            started = time.perf_counter()
            plain.parse(case["q"], DEFAULT_NOW)
            lexical.append(time.perf_counter() - started)
    edge = {}
    for name, query in {"empty": "", "gibberish": "qwpoeiru zxmcnv asdkjh", "10k_chars": "lorem ipsum " * 834}.items():
        started = time.perf_counter()
        parser.parse(query, DEFAULT_NOW)
        edge[name] = ms(time.perf_counter() - started)
    report = evaluate(lambda q, now: parser.parse(q, now).to_dict())
    return {
        "queries": len(cases),
        "samples": len(latencies),
        **latency_summary(latencies, cpu),
        "themes_from_embeddings_share": round(semantic_themes / len(latencies), 4),
        "without_semantic_p95_ms": ms(percentile(lexical, 0.95)),
        "edge_cases_ms": edge,
        "suite": {k: report[k] for k in ("overall", "all_fields", "per_language")},
        "suite_failures": [{"q": f["q"], "failed": f["failed"]} for f in report["failures"]],
    }


def bench_ask(items: int, workdir: Path, runs: int = 3) -> dict[str, Any]:
    from snapearth.catalog import open_catalog
    from snapearth.earthsearch.answer import Answerer
    from snapearth.sources import itemgen

    url = f"sqlite:///{workdir / 'scale.db'}"
    catalog = open_catalog(url)
    started = time.perf_counter()
    catalog.create_collection(itemgen.collection_document(), exist_ok=True)
    first: datetime | None = None
    last: datetime | None = None

    def stream() -> Any:
        nonlocal first, last
        for item in itemgen.generate_items(items, seed=7):
            when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
            first = when if first is None else min(first, when)
            last = when if last is None else max(last, when)
            yield item

    report = catalog.add_items(stream(), mode="ignore", batch_size=5000)
    load_s = time.perf_counter() - started
    if first is None or last is None:
        raise SystemExit("the item generator produced nothing")
    month = datetime(first.year, first.month, 1, tzinfo=UTC)
    month_name = MONTHS["en"].split()[month.month - 1]
    fr_month = MONTHS["fr"].split()[month.month - 1]
    queries = [
        f"cloud-free images of Toulouse in {month_name} {month.year}",
        f"images sans nuages de Lyon {fr_month} {month.year}",
        f"Schnee in Bayern {MONTHS['de'].split()[month.month - 1]} {month.year}",
        f"inundaciones cerca de Valencia {MONTHS['es'].split()[month.month - 1]} de {month.year}",
        f"siccità nella pianura padana {MONTHS['it'].split()[month.month - 1]} {month.year}",
        f"less than 20% clouds over Lake Geneva in {month.year}",
        f"Sentinel-2 over 48.85N 2.35E in {month_name} {month.year}",
        f"crops in France {month_name} {month.year}",
        "images of Madrid",
        "floods",
        "",
    ]
    answerer = Answerer(catalog)
    now = last.date()
    for query in queries:  # warm-up
        answerer.ask(query, now=now)
    latencies = []
    cpu = []
    per_query = {}
    for query in queries:
        times = []
        for _ in range(runs):
            t, t_cpu = time.perf_counter(), time.thread_time()
            result = answerer.ask(query, now=now)
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - t_cpu)
        latencies += times
        per_query[query or "(empty)"] = {"median_ms": ms(statistics.median(times)), "matched": result["numberMatched"]}
    catalog.close()
    return {
        "items": report.loaded,
        "period": [first.isoformat(), last.isoformat()],
        "load_s": round(load_s, 1),
        "samples": len(latencies),
        **latency_summary(latencies, cpu),
        "per_query": per_query,
    }


def enriched_archive(scenario: str, workdir: Path) -> tuple[str, dict[str, Any]]:
    """Build the sample archive, load it into SQLite, run EarthSignature; returns the catalog URL and the truth."""
    from snapearth.catalog import open_catalog
    from snapearth.catalog.load import load_paths
    from snapearth.signature.runner import enrich
    from snapearth.sources.sample.build import build_archive
    from snapearth.sources.sample.scenario import scenario_text

    archive = workdir / "sample"
    text, source = scenario_text(scenario)
    manifest = build_archive(text, archive, source=source, workers=2)
    url = f"sqlite:///{workdir / 'sample.db'}"
    catalog = open_catalog(url)
    try:
        for path in sorted(archive.glob("*/collection.json")):
            catalog.create_collection(json.loads(path.read_text()), exist_ok=True)
        load_paths(catalog, [archive / "catalog.json"])
        enrich(catalog, data_dir=workdir, workers=2)
    finally:
        catalog.close()
    return url, manifest


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    gains = [1.0 if item in relevant else 0.0 for item in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def event_queries(
    event: dict[str, Any], place: dict[str, Any], scene_dates: dict[str, str]
) -> list[tuple[str, str, str | None]]:
    """Questions a person would ask about a scripted event in five languages: (language, query, asked month)."""
    words = THEME_WORDS.get(event["type"])
    if words is None:
        return []
    # the month of the event's median scene: the month a person who saw it would name
    dates = sorted(scene_dates[scene] for scene in event["scenes"] if scene in scene_dates)
    when = dates[len(dates) // 2] if dates else (event.get("peak_datetime") or event["start_datetime"])
    peak = datetime.fromisoformat(when.replace("Z", "+00:00"))
    out: list[tuple[str, str, str | None]] = []
    for lang in ("en", "fr", "de", "es", "it"):
        month = MONTHS[lang].split()[peak.month - 1]
        out.append((lang, f"{words[lang]} {place['name']}", None))
        out.append((lang, f"{words[lang]} {place['name']} {month} {peak.year}", f"{peak:%Y-%m}"))
    return out


def bench_retrieval(scenario: str, workdir: Path) -> dict[str, Any]:
    """nDCG@10 with the event's scenes as relevant; ``in_period``: only those inside the month the query names."""
    from snapearth.catalog import open_catalog
    from snapearth.earthsearch.answer import Answerer

    url, manifest = enriched_archive(scenario, workdir)
    places = {p["id"]: p for p in manifest["places"]}
    scene_dates = {s["item_id"]: s["datetime"] for s in manifest["scenes"]}
    catalog = open_catalog(url)
    answerer = Answerer(catalog)
    events_found = len(answerer.events(answerer.parser.parse("")))
    rows = []
    for event in manifest["events"]:
        relevant = set(event["scenes"])
        for lang, query, month in event_queries(event, places[event["place"]], scene_dates):
            result = answerer.ask(query, now=date(2026, 1, 1), limit=10)
            ranked = [f["id"] for f in result["features"]]
            in_period = {r for r in relevant if month is None or scene_dates.get(r, "").startswith(month)}
            rows.append(
                {
                    "event": event["id"],
                    "lang": lang,
                    "query": query,
                    "ndcg@10": round(ndcg_at_10(ranked, relevant), 4),
                    "ndcg@10_in_period": round(ndcg_at_10(ranked, in_period), 4),
                    "relevant": len(relevant),
                    "returned": len(ranked),
                }
            )
    catalog.close()
    scores = [r["ndcg@10"] for r in rows]
    in_period_scores = [r["ndcg@10_in_period"] for r in rows]
    return {
        "scenario": scenario,
        "queries": len(rows),
        "detected_events_in_catalog": events_found,
        "mean_ndcg@10": round(statistics.mean(scores), 4) if scores else None,
        "min_ndcg@10": round(min(scores), 4) if scores else None,
        "mean_ndcg@10_in_period": round(statistics.mean(in_period_scores), 4) if scores else None,
        "per_query": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000, help="generated items for the ask benchmark")
    parser.add_argument("--scenario", default="test", help="sample scenario for retrieval (test or demo)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (debugging)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["startup", "parse", "ask", "retrieval"])
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "earthsearch",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_start": round(os.getloadavg()[0], 2)},
    }
    with tempfile.TemporaryDirectory(prefix="earthsearch-bench-") as tmp:
        work = args.keep or Path(tmp)
        if "startup" not in args.skip:
            results["startup"] = bench_startup()
        if "parse" not in args.skip:
            results["parse"] = bench_parse()
        if "retrieval" not in args.skip:
            (work / "retrieval").mkdir()
            results["retrieval"] = bench_retrieval(args.scenario, work / "retrieval")
        if "ask" not in args.skip:
            (work / "ask").mkdir()
            results["ask"] = bench_ask(args.items, work / "ask")
    text = json.dumps(results, indent=1, ensure_ascii=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
