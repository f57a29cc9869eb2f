"""Scenario files: the built-in ones are valid and complete; bad ones fail with the line and the field."""

from __future__ import annotations

import pytest

from snapearth.errors import InvalidInputError
from snapearth.sources.sample.build import plan
from snapearth.sources.sample.scenario import builtin_scenarios, load_scenario, parse_scenario

GOOD = """\
name: mini
places:
  - id: toulouse
    name: Toulouse
    country: FR
    lon: 1.4442
    lat: 43.6047
    landscape: city_fields
    period: {start: 2023-06-01, end: 2023-06-30}
events:
  - id: harvest
    type: harvest
    place: toulouse
    crop: wheat
    start: 2023-06-10
    end: 2023-06-25
"""


def _error(text: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        parse_scenario(text, "bad.yaml")
    return info.value


def test_good_scenario_parses() -> None:
    sc = parse_scenario(GOOD, "mini.yaml")
    assert sc.places[0].id == "toulouse"
    assert sc.events[0].crop == "wheat"
    assert sc.sensors == ["sentinel-2-l2a", "sentinel-1-grd"]


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("lat: 43.6047", "lat: 95", 7, "places[0].lat"),
        ("landscape: city_fields", "landscape: moon", 8, "places[0].landscape"),
        ("    place: toulouse\n    crop", "    place: paris\n    crop", 13, "events[0].place"),
        ("    crop: wheat\n", "    crop: wheat\n    colour: red\n", 15, "events[0].colour"),
        ("end: 2023-06-30", "end: 2023-05-30", 9, "places[0].period"),
        ("    start: 2023-06-10", "    start: 2023-06-31", 15, "events[0].start"),
        ("    end: 2023-06-25", "    end: 2023-06-01", 11, "events[0]"),
        ("    crop: wheat\n", "", 11, "events[0]"),
    ],
)
def test_bad_scenario_names_line_and_field(old: str, new: str, line: int, field: str) -> None:
    assert old in GOOD
    err = _error(GOOD.replace(old, new))
    assert err.field == field
    assert err.message.startswith(f"bad.yaml line {line}: {field}: "), err.message


def test_yaml_syntax_error_names_line() -> None:
    err = _error(GOOD.replace("    lon: 1.4442", "    lon: [1.4442"))
    assert err.message.startswith("bad.yaml line "), err.message
    assert "not valid YAML" in err.message


def test_duplicate_ids_and_outside_period_are_refused() -> None:
    doubled = GOOD.replace("events:", GOOD.split("places:\n")[1].split("events:")[0] + "events:")
    err = _error(doubled)
    assert err.field == "places[1].id"
    assert "duplicate" in err.message
    err = _error(GOOD.replace("start: 2023-06-10\n    end: 2023-06-25", "start: 2024-06-10\n    end: 2024-06-25"))
    assert err.field == "events[0].start"
    assert "outside the period" in err.message


def test_not_a_mapping_and_unknown_scenario() -> None:
    assert "expected a mapping" in _error("- just\n- a list\n").message
    with pytest.raises(InvalidInputError, match="unknown scenario 'nope'"):
        load_scenario("nope")


def test_builtin_scenarios() -> None:
    assert {"demo", "test"} <= set(builtin_scenarios())
    demo = load_scenario("demo")
    ids = {p.id for p in demo.places}
    assert {"valencia", "evros", "chamonix", "beauce", "niamey", "emilia-romagna", "rondonia", "toulouse"} <= ids
    assert {e.type for e in demo.events} == {"flood", "wildfire", "snow", "drought", "deforestation", "harvest"}
    test = load_scenario("test")
    assert len(test.places) == 2
    assert {e.type for e in test.events} >= {"flood", "snow"}
    collections = {t.collection for t in plan(test)}
    assert collections == {"sentinel-2-l2a", "sentinel-1-grd"}
