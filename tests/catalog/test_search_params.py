"""The backend-neutral reading of search requests: parsing, normalisation, precise errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from snapearth.catalog.base import Fields, SearchRequest
from snapearth.catalog.geometry import Box, geometry_boxes
from snapearth.catalog.search_params import (
    apply_fields,
    parse_bbox,
    parse_datetime,
    parse_fields,
    parse_filter,
    parse_search,
    parse_sortby,
    query_to_cql2,
)
from snapearth.catalog.sqlite_cql2 import like_to_glob
from snapearth.errors import InvalidInputError


def test_bbox_forms() -> None:
    assert parse_bbox([1, 2, 3, 4]) == (Box(1, 2, 3, 4),)
    assert parse_bbox("1,2,3,4") == (Box(1, 2, 3, 4),)
    assert parse_bbox([1, 2, -5, 3, 4, 10]) == (Box(1, 2, 3, 4),)
    assert parse_bbox([170, -10, -170, 10]) == (Box(170, -10, 180, 10), Box(-180, -10, -170, 10))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2, 3], "expected 4 or 6 numbers, got 3"),
        ([-181, 0, 1, 1], "west -181 is out of range [-180, 180]"),
        ([0, -91, 1, 1], "south -91 is out of range [-90, 90]"),
        ([0, 5, 1, 4], "south 5 is greater than north 4"),
        ([0, 0, float("nan"), 1], "is not a finite number"),
        ("a,b,c,d", "not a comma-separated list of numbers"),
    ],
)
def test_bbox_errors(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_bbox(value)  # type: ignore[arg-type]
    assert error.value.field == "bbox"
    assert message in error.value.message


def test_datetime_forms() -> None:
    day = parse_datetime("2023-05-01")
    assert day.start == datetime(2023, 5, 1, tzinfo=UTC)
    assert day.end == datetime(2023, 5, 1, 23, 59, 59, 999999, tzinfo=UTC)
    instant = parse_datetime("2023-05-01T10:00:00+02:00")
    assert instant.start == instant.end == datetime(2023, 5, 1, 8, tzinfo=UTC)
    assert parse_datetime("../2023-05-01T00:00:00Z").start is None
    assert parse_datetime("2023-05-01T00:00:00Z/").end is None
    with pytest.raises(InvalidInputError, match="after its end"):
        parse_datetime("2023-05-02/2023-05-01")
    with pytest.raises(InvalidInputError, match="more than one"):
        parse_datetime("2023/2024/2025")


def test_sortby_and_fields_get_forms() -> None:
    keys = parse_sortby("-datetime,+eo:cloud_cover,id")
    assert [(k.field, k.direction) for k in keys] == [("datetime", "desc"), ("eo:cloud_cover", "asc"), ("id", "asc")]
    with pytest.raises(InvalidInputError, match="twice"):
        parse_sortby("id,-id")
    fields = parse_fields("id,properties.datetime,-assets")
    assert fields == Fields(include=["id", "properties.datetime"], exclude=["assets"])


def test_apply_fields_keeps_identity() -> None:
    item = {"type": "Feature", "id": "a", "collection": "c", "properties": {"x": 1, "y": 2}, "assets": {}}
    assert apply_fields(item, Fields(include=["properties.x"])) == {
        "type": "Feature",
        "id": "a",
        "collection": "c",
        "properties": {"x": 1},
    }
    assert apply_fields(item, Fields(exclude=["properties.y", "id"])) == {
        "type": "Feature",
        "id": "a",
        "collection": "c",
        "properties": {"x": 1},
        "assets": {},
    }
    assert item["properties"] == {"x": 1, "y": 2}  # the original is untouched


def test_text_and_json_become_one_tree() -> None:
    text = parse_filter('"eo:cloud_cover" < 10 AND S_INTERSECTS(geometry, BBOX(170, 0, -170, 5))')
    assert text["op"] == "and"
    spatial = text["args"][1]["args"][1]
    assert spatial["type"] == "MultiPolygon"  # the antimeridian bbox, split
    as_json = parse_filter({"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]})
    assert as_json == {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}
    assert parse_filter('{"op": "isNull", "args": [{"property": "x"}]}')["op"] == "isNull"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("x = ", "not valid CQL2 text"),
        ("", "empty"),
        ("{not json", "not valid CQL2 JSON"),
        ({"op": "<", "args": [1]}, "takes 2 arguments"),
        ({"op": "and", "args": [{"op": "=", "args": [1, 1]}]}, "at least 2"),
        ({"args": []}, "without 'op'"),
        ({"op": "=", "args": [{"property": 5}, 1]}, "must be a string"),
        ({"op": "t_after", "args": [{"property": "datetime"}, {"timestamp": "soon"}]}, "soon"),
        ({"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": []}]}, "ring"),
    ],
)
def test_malformed_filters(value: object, words: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_filter(value)  # type: ignore[arg-type]
    assert error.value.field == "filter"
    assert words in error.value.message


def test_query_extension_to_cql2() -> None:
    tree = query_to_cql2({"eo:cloud_cover": {"lt": 20, "gte": 1}, "id": {"startsWith": "S2_"}})
    assert tree == {
        "op": "and",
        "args": [
            {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
            {"op": ">=", "args": [{"property": "eo:cloud_cover"}, 1]},
            {"op": "like", "args": [{"property": "id"}, "S2\\_%"]},
        ],
    }
    assert like_to_glob("S2\\_%") == "S2_*"
    assert like_to_glob("a*b?[") == "a[*]b[?][[]"


def test_both_spatial_filters_refused() -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_search(SearchRequest(bbox=[0, 0, 1, 1], intersects={"type": "Point", "coordinates": [0, 0]}))
    assert error.value.field == "intersects"


def test_boxes_of_antimeridian_multipolygons() -> None:
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179, 0], [180, 0], [180, 1], [179, 0]]],
            [[[-180, 0], [-179, 0], [-180, 1], [-180, 0]]],
        ],
    }
    assert geometry_boxes(geometry) == [Box(179, 0, 180, 1), Box(-180, 0, -179, 1)]
    assert geometry_boxes({"type": "Point", "coordinates": [5, 6]}) == [Box(5, 6, 5, 6)]
