"""Answering from a real enriched catalog (the ``test`` sample archive + EarthSignature), CLI and HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from typing import Any

import httpx
import pytest

from snapearth.api.app import create_app
from snapearth.catalog import Catalog, open_catalog
from snapearth.config import Settings
from snapearth.earthsearch.answer import Answerer
from tests.fixtures.enriched import EnrichedArchive
from tests.fixtures.server import LiveServer

NOW = date(2026, 1, 1)


@pytest.fixture(scope="module")
def catalog(enriched_archive: EnrichedArchive) -> Any:
    opened = open_catalog(enriched_archive.catalog_url)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def truth(enriched_archive: EnrichedArchive) -> dict[str, Any]:
    return json.loads((enriched_archive.archive / "truth" / "manifest.json").read_text())


def _scenes(truth: dict[str, Any], event_id: str) -> set[str]:
    return set(next(e for e in truth["events"] if e["id"] == event_id)["scenes"])


def test_flood_images_rank_first_in_five_languages(catalog: Catalog, truth: dict[str, Any]) -> None:
    flooded = _scenes(truth, "valencia-flood-2024")
    answerer = Answerer(catalog)
    for query in ("floods in Valencia", "inondations à Valencia", "Hochwasser in Valencia",
                  "inundaciones en Valencia", "alluvione a Valencia"):  # fmt: skip
        result = answerer.ask(query, now=NOW, limit=10)
        ids = [f["id"] for f in result["features"]]
        assert len(ids) >= 3
        assert set(ids[:3]) <= flooded, (query, ids)
        top = result["features"][0]["properties"]
        assert top["earthsearch:score"] > 0
        assert "water fraction" in top["earthsearch:reason"]


def test_answer_shape_and_filters(catalog: Catalog) -> None:
    result = Answerer(catalog).ask("snow in Chamonix-Mont-Blanc January 2022", now=NOW, limit=5)
    assert result["type"] == "FeatureCollection"
    assert result["parse"]["themes"] == ["snow"]
    assert 0 < result["numberReturned"] <= 5
    for feature in result["features"]:
        assert feature["properties"]["datetime"].startswith("2022-01")
    scores = [f["properties"]["earthsearch:score"] for f in result["features"]]
    assert scores == sorted(scores, reverse=True)


def test_cloud_ceiling_keeps_optical_only(catalog: Catalog) -> None:
    result = Answerer(catalog).ask("Valencia less than 50% clouds", now=NOW, limit=20)
    assert result["features"]
    for feature in result["features"]:
        assert feature["collection"] == "sentinel-2-l2a"
        assert feature["properties"]["eo:cloud_cover"] <= 50


def test_before_and_after_gives_a_pair(catalog: Catalog) -> None:
    result = Answerer(catalog).ask("before and after the flood in Valencia", now=NOW)
    pair = result["pair"]
    assert pair is not None
    assert pair["before"] != pair["after"]
    dates = {f["id"]: f["properties"]["datetime"] for f in result["features"]}
    assert dates.get(pair["before"], "") <= dates.get(pair["after"], "9")


def test_no_place_no_date_still_answers(catalog: Catalog) -> None:
    for query in ("", "qwpoeiru zxmcnv", "floods", "x" * 10_000):
        result = Answerer(catalog).ask(query, now=NOW, limit=3)
        assert result["type"] == "FeatureCollection"
        assert result["notes"]


def test_nothing_matches_is_an_empty_answer(catalog: Catalog) -> None:
    result = Answerer(catalog).ask("floods in Tokyo in March 2019", now=NOW)
    assert result["features"] == []
    assert result["numberMatched"] == 0
    assert any("no image matches" in note for note in result["notes"])


def test_http_earthsearch_and_parse(enriched_archive: EnrichedArchive, catalog: Catalog) -> None:
    settings = Settings(data=enriched_archive.data, catalog=enriched_archive.catalog_url)
    app = create_app(settings, catalog=catalog)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        parsed = client.get("/earthsearch/parse", params={"q": "Schnee in Bayern letzten Winter", "now": "2025-03-10"})
        assert parsed.status_code == 200
        assert parsed.json()["datetime"]["start"] == "2024-12-01T00:00:00Z"
        answer = client.get("/earthsearch", params={"q": "floods in Valencia", "now": "2026-01-01", "limit": 3})
        assert answer.status_code == 200
        body = answer.json()
        assert body["numberReturned"] == 3
        assert body["parse"]["place"]["country"] == "ES"
        assert client.get("/earthsearch", params={"q": "", "now": "2026-01-01"}).status_code == 200
        bad = client.get("/earthsearch", params={"q": "x", "now": "yesterday"})
        assert bad.status_code == 400
        assert "now" in bad.text
        assert client.get("/earthsearch", params={"q": "x", "limit": 0}).status_code in (400, 422)


def test_cli_ask(enriched_archive: EnrichedArchive) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "snapearth.cli", "ask", "--catalog", enriched_archive.catalog_url, "--now",
         "2026-01-01", "--limit", "2", "floods in Valencia"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["numberReturned"] == 2
    assert result["parse"]["themes"] == ["flood"]
