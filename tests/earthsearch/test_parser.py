"""EarthSearch parsing: the issue's examples exactly, the 300-query suite by field and language, edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date

import pytest

from snapearth.earthsearch.parser import QueryParser
from tests.earthsearch.suite import FIELDS, LANGUAGES, evaluate, load_suite

NOW = date(2025, 3, 10)


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    warm = QueryParser()
    warm.parse("qwzx vbnm Toulose", NOW)  # loads the gazetteer, fuzzy index and embedding model once
    return warm


def test_suite_has_300_queries_in_five_languages() -> None:
    cases = load_suite()
    assert len(cases) >= 300
    assert {c["lang"] for c in cases} == set(LANGUAGES)
    assert len({c["q"] for c in cases}) == len(cases)


def test_suite_pass_rate_per_field_and_language(parser: QueryParser) -> None:
    report = evaluate(lambda q, now: parser.parse(q, now).to_dict())
    print(json.dumps({k: report[k] for k in ("queries", "overall", "all_fields", "per_language")}, indent=1))
    for lang in LANGUAGES:
        for name in FIELDS:
            assert report["per_language"][lang][name] >= 0.9, (lang, name, report["failures"])
    assert report["all_fields"] >= 0.95, report["failures"]


def test_issue_examples(parser: QueryParser) -> None:
    p = parser.parse("floods near Valencia in October 2024", NOW).to_dict()
    assert p["language"] == "en"
    assert p["themes"] == ["flood"]
    assert p["place"]["country"] == "ES"
    assert p["place"]["near"] is True
    assert p["datetime"] == {"start": "2024-10-01T00:00:00Z", "end": "2024-10-31T23:59:59Z"}
    west, south, east, north = p["place"]["bbox"]
    assert west < -0.376 < east
    assert south < 39.47 < north
    assert east - west < 1.0

    p = parser.parse("images sans nuages de Toulouse été 2023", NOW).to_dict()
    assert p["language"] == "fr"
    assert p["max_cloud_cover"] == 10
    assert p["place"]["name"] == "Toulouse"
    assert p["place"]["geometry"]["type"] == "Point"
    assert p["unparsed"] == []

    p = parser.parse("Schnee in Bayern letzten Winter", NOW).to_dict()
    assert p["datetime"] == {"start": "2024-12-01T00:00:00Z", "end": "2025-02-28T23:59:59Z"}
    assert p["place"]["name"] == "Bavaria"
    assert p["place"]["geometry"]["type"] in ("Polygon", "MultiPolygon")

    p = parser.parse("Sentinel-1 over 48.85N 2.35E in June 2024", NOW).to_dict()
    assert p["collections"] == ["sentinel-1-grd"]
    assert p["place"]["geometry"]["coordinates"] == [2.35, 48.85]

    p = parser.parse("before and after the Derna flood September 2023", NOW).to_dict()
    assert p["compare"] == "before_after"
    assert p["place"]["country"] == "LY"


def test_output_contract_keys(parser: QueryParser) -> None:
    out = parser.parse("crops in the Beauce past two weeks", NOW).to_dict()
    assert list(out) == [
        "query", "language", "place", "datetime", "collections", "max_cloud_cover", "themes", "compare", "unparsed",
    ]  # fmt: skip
    assert {"name", "bbox", "geometry"} <= set(out["place"])


def test_country_is_mainland_not_overseas(parser: QueryParser) -> None:
    west, south, east, north = parser.parse("France", NOW).to_dict()["place"]["bbox"]
    assert -6 < west < -4
    assert 41 < south < 42.5
    assert 8 < east < 10
    assert 50.5 < north < 51.5


def test_near_widens_the_place(parser: QueryParser) -> None:
    plain = parser.parse("Toulouse", NOW).to_dict()["place"]["bbox"]
    near = parser.parse("near Toulouse", NOW).to_dict()["place"]["bbox"]
    assert near[0] < plain[0]
    assert near[2] > plain[2]
    assert near[1] < plain[1]
    assert near[3] > plain[3]


def test_ambiguity_keeps_alternatives(parser: QueryParser) -> None:
    place = parser.parse("Valencia", NOW).to_dict()["place"]
    assert place["country"] == "ES"
    assert any(alt["country"] == "VE" for alt in place["alternatives"])


def test_typos_and_accents(parser: QueryParser) -> None:
    assert parser.parse("Toulose flooding", NOW).to_dict()["place"]["name"] == "Toulouse"
    assert parser.parse("neige a GRENOBLE", NOW).to_dict()["place"]["name"] == "Grenoble"
    assert parser.parse("Zurich", NOW).to_dict()["place"]["country"] == "CH"


def test_relative_dates_follow_now(parser: QueryParser) -> None:
    winter = parser.parse("last winter", date(2024, 6, 1)).to_dict()["datetime"]
    assert winter == {"start": "2023-12-01T00:00:00Z", "end": "2024-02-29T23:59:59Z"}
    inside = parser.parse("last winter", date(2025, 1, 15)).to_dict()["datetime"]  # this winter is not over yet
    assert inside["start"] == "2023-12-01T00:00:00Z"
    since = parser.parse("since January", date(2025, 3, 10)).to_dict()["datetime"]
    assert since == {"start": "2025-01-01T00:00:00Z", "end": "2025-03-10T23:59:59Z"}


GIBBERISH = ["", "   ", "asdkjh qwpoe zzxq", "!!!???", "x" * 10_000, "flood " * 2000, "lorem ipsum " * 900]


@pytest.mark.parametrize("query", GIBBERISH)
def test_gibberish_empty_and_huge_queries_answer_fast(query: str) -> None:
    # the rule-based path; the one embedding that unknown words may cost is timed by the benchmark
    fast = QueryParser(semantic=False)
    fast.parse("warm up", NOW)
    started = time.perf_counter()
    out = fast.parse(query, NOW).to_dict()
    assert time.perf_counter() - started < 1.0
    assert out["query"] == query
    assert len(out["unparsed"]) <= 50


@pytest.mark.parametrize("query", GIBBERISH[:4])
def test_gibberish_gets_no_theme_from_the_embeddings(parser: QueryParser, query: str) -> None:
    out = parser.parse(query, NOW).to_dict()
    assert out["themes"] == []
    assert out["place"] is None


def test_unparsed_lists_unknown_words_only(parser: QueryParser) -> None:
    out = parser.parse("show me floods in Valencia with zorglub", NOW).to_dict()
    assert out["unparsed"] == ["zorglub"]


def test_cli_parse_reads_stdin_and_arguments() -> None:
    cmd = [sys.executable, "-m", "snapearth.cli", "parse", "--now", "2025-03-10"]
    piped = subprocess.run(
        cmd, input="Schnee in Bayern letzten Winter\nincendios en Tenerife agosto 2023\n", capture_output=True,
        text=True, check=True, timeout=120,
    )  # fmt: skip
    lines = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [line["language"] for line in lines] == ["de", "es"]
    args = subprocess.run([*cmd, "Toulouse"], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(args.stdout)["place"]["name"] == "Toulouse"
    bad = subprocess.run([*cmd[:-1], "2025-13-40", "x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "now" in bad.stderr


def test_embeddings_read_words_the_tables_do_not_know(parser: QueryParser) -> None:
    fire = parser.parse("megaincendio en Canarias", NOW)
    assert fire.themes == ["wildfire"]
    assert fire.unparsed == []
    assert parser.parse("heavy rainfall in Valencia", NOW).themes == ["flood"]
    unrelated = parser.parse("cathedral in Cologne", NOW)
    assert unrelated.themes == []
    assert unrelated.unparsed == ["cathedral"]
