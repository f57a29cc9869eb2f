"""The catalog benchmark runs end to end at a tiny size on both backends and reports what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import catalog as bench
from tests.pgserver import PgServer

QUERIES = {"bbox_month_cloud", "cql2_text", "cql2_json", "aggregation", "deep_paging"}


def _run(tmp_path: Path, backend: str, *extra: str) -> dict:
    out = tmp_path / f"{backend}.json"
    args = ["--items", "400", "--backend", backend, "--runs", "3", "--warmup", "1", "--out", str(out)]
    result = bench.main([*args, "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path), *extra])
    assert json.loads(out.read_text()) == result
    return result


def _check(result: dict) -> None:
    assert result["load"]["inserted"] == 400
    assert result["load"]["refused"] == 0
    assert result["load"]["items_per_s"] > 0
    assert 10 < result["load"]["loader_peak_rss_mb"] < 2048
    assert result["file_cache_warmed_s"] >= 0
    assert set(result["queries"]) == QUERIES
    for name, figures in result["queries"].items():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], name
    # 400 items are 8 pages of 50: paging stops at the last page, having seen every item once
    assert result["queries"]["deep_paging"]["pages"] == 8
    assert result["queries"]["deep_paging"]["items_seen"] == 400
    assert result["queries"]["aggregation"]["mean_found"] > 0
    assert set(result["targets"]["met"]) == {"load_items_per_s", "loader_peak_rss_mb", "query_p95_ms"}


def test_sqlite(tmp_path: Path) -> None:
    result = _run(tmp_path, "sqlite")
    _check(result)
    assert result["catalog_disk_mb"] > 0
    assert (tmp_path / "cache" / "s2l2a-400-seed0.ndjson").exists()  # generated once, reused next time
    assert result["generator"]["items_per_s"] > 0


@pytest.mark.pg
def test_pgstac_on_an_existing_server(tmp_path: Path, pg_server: PgServer) -> None:
    result = _run(tmp_path, "pgstac", "--pg-url", pg_server.url)
    _check(result)
    assert "server_peak_pss_mb" not in result["load"]  # a server it did not start is not its to measure
