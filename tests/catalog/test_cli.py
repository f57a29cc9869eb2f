"""`snapearth catalog ...` through typer's CliRunner, on a real SQLite catalog file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from snapearth.cli import _register_all, app
from tests.catalog.items import S1_COLLECTION, S1_ITEM, S2_COLLECTION, generated_item

_register_all()
runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _loaded(url: str, tmp_path: Path) -> None:
    code, out, _ = run("catalog", "init", "--catalog", url, "-c", str(S2_COLLECTION), "-c", str(S1_COLLECTION))
    assert code == 0, out
    assert lines(out)[0]["collections"] == ["sentinel-1-grd", "sentinel-2-l2a"]
    path = tmp_path / "items.ndjson"
    path.write_bytes(b"".join(orjson.dumps(generated_item(i)) + b"\n" for i in range(6)))
    code, out, err = run("catalog", "ingest", str(path), str(S1_ITEM), "--catalog", url, "--quiet")
    assert code == 0, err
    assert lines(out)[0]["inserted"] == 7


def test_init_ingest_search_stats(url: str, tmp_path: Path) -> None:
    _loaded(url, tmp_path)
    code, out, err = run("catalog", "search", "--catalog", url, "--filter", '"eo:cloud_cover" < 20', "--limit", "2")
    assert code == 0, err
    found = lines(out)
    assert [item["id"] for item in found] == ["S2-GEN-02", "S2-GEN-01"]
    footer = orjson.loads(err.strip().splitlines()[-1])
    assert footer["numberMatched"] == 3
    assert footer["next"]
    code, out, err = run(
        "catalog",
        "search",
        "--catalog",
        url,
        "--token",
        footer["next"],
        "--limit",
        "2",
        "--filter",
        '"eo:cloud_cover" < 20',
    )
    assert [item["id"] for item in lines(out)] == ["S2-GEN-00"]
    code, out, _ = run(
        "catalog", "search", "--catalog", url, "--all", "--collections", "sentinel-1-grd", "--fields", "id,-assets"
    )
    assert code == 0
    assert [set(item) >= {"id", "collection"} and "assets" not in item for item in lines(out)] == [True]
    code, out, err = run("catalog", "search", "--catalog", url, "--q", "gen-03,gen-04", "--sortby", "+id")
    assert code == 0, err
    assert [item["id"] for item in lines(out)] == ["S2-GEN-03", "S2-GEN-04"]
    code, out, _ = run("catalog", "stats", "--catalog", url)
    result = lines(out)[0]["aggregations"]
    assert result[0] == {"name": "total_count", "data_type": "integer", "value": 7}
    code, out, _ = run("catalog", "collections", "--catalog", url)
    assert {row["id"]: row["items"] for row in lines(out)} == {"sentinel-1-grd": 1, "sentinel-2-l2a": 6}


def test_tables_for_people(url: str, tmp_path: Path) -> None:
    _loaded(url, tmp_path)
    code, out, _ = run("catalog", "collections", "--catalog", url, "--table")
    assert code == 0
    assert "sentinel-2-l2a" in out
    code, out, _ = run("catalog", "search", "--catalog", url, "--table", "--bbox", "2,44,2.5,44.5")
    assert "S2-GEN-00" in out
    code, out, _ = run("catalog", "stats", "--catalog", url, "--table", "-a", "datetime_frequency:year")
    assert "2023" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["search", "--filter", "eo:cloud_cover <<< 2"], "filter"),
        (["search", "--datetime", "2023-02-01/2023-01-01"], "datetime"),
        (["search", "--bbox", "0,10,1"], "bbox"),
        (["search", "--limit", "0"], "limit"),
        (["stats", "-a", "nonsense"], "aggregations"),
        (["ingest", "/nonexistent/file.ndjson"], "does not exist"),
        (["ingest", "x.ndjson", "--mode", "replace"], "mode"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(url: str, args: list[str], words: str) -> None:
    code, out, err = run("catalog", *args, "--catalog", url)
    assert code == 2
    assert out == ""
    assert words in err
    assert "Traceback" not in err


def test_refused_items_exit_1_with_the_reasons(url: str, tmp_path: Path) -> None:
    _loaded(url, tmp_path)
    bad = generated_item(9)
    del bad["geometry"]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(orjson.dumps(bad) + b"\n")
    code, out, err = run("catalog", "ingest", str(path), "--catalog", url, "-q")
    assert code == 1
    assert lines(out)[0]["refused"][0]["field"] == "geometry"
    assert "S2-GEN-09" in err
