"""What every catalog backend does, checked the same way on each (``catalog``/``loaded`` are parametrized)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snapearth.catalog import Catalog, SearchRequest
from snapearth.catalog.base import Fields, SortKey
from snapearth.errors import ConflictError, InvalidInputError, NotFoundError
from tests.catalog.items import (
    GENERATED,
    REAL_S1_ID,
    REAL_S2_ID,
    S2_ITEM,
    all_items,
    generated_item,
    ids,
    read,
)

ALL_IDS = ids(all_items())
GEN_IDS = {f"S2-GEN-{i:02d}" for i in range(GENERATED)}


def found(catalog: Catalog, **kwargs: Any) -> set[str]:
    """Ids of every match, following continuation tokens."""
    kwargs.setdefault("limit", 100)
    return {item["id"] for item in catalog.iter_items(SearchRequest(**kwargs))}


def gen(*indexes: int) -> set[str]:
    return {f"S2-GEN-{i:02d}" for i in indexes}


# --- collections ----------------------------------------------------------------------------------------------


def test_collections_create_get_list_update_delete(catalog: Catalog) -> None:
    listed = [c["id"] for c in catalog.list_collections()]
    assert listed == sorted(listed)
    assert {"sentinel-2-l2a", "sentinel-1-grd", "events"} <= set(listed)
    s2 = catalog.get_collection("sentinel-2-l2a")
    assert s2["title"] == "Sentinel-2 Level-2A"
    with pytest.raises(ConflictError):
        catalog.create_collection(s2)
    catalog.create_collection(s2, exist_ok=True)
    s2["title"] = "changed"
    catalog.update_collection(s2)
    assert catalog.get_collection("sentinel-2-l2a")["title"] == "changed"
    with pytest.raises(NotFoundError):
        catalog.update_collection({**s2, "id": "nope"})
    with pytest.raises(NotFoundError):
        catalog.get_collection("nope")
    catalog.delete_collection("events")
    assert "events" not in [c["id"] for c in catalog.list_collections()]


def test_delete_non_empty_collection_needs_force(catalog: Catalog) -> None:
    catalog.add_items([generated_item(0), generated_item(1)])
    with pytest.raises(ConflictError) as error:
        catalog.delete_collection("sentinel-2-l2a")
    assert "2 items" in error.value.message
    catalog.delete_collection("sentinel-2-l2a", force=True)
    with pytest.raises(NotFoundError):
        catalog.get_item("sentinel-2-l2a", "S2-GEN-00")
    assert found(catalog) == set()


# --- items --------------------------------------------------------------------------------------------------------


def test_insert_get_delete_item(catalog: Catalog) -> None:
    original = read(S2_ITEM)
    report = catalog.add_items([original])
    assert (report.inserted, report.updated, report.skipped, report.refused) == (1, 0, 0, [])
    stored = catalog.get_item("sentinel-2-l2a", REAL_S2_ID)
    assert stored["properties"] == original["properties"]
    assert stored["geometry"] == original["geometry"]
    assert stored["assets"]["B04"]["href"] == original["assets"]["B04"]["href"]
    assert stored["collection"] == "sentinel-2-l2a"
    catalog.delete_item("sentinel-2-l2a", REAL_S2_ID)
    with pytest.raises(NotFoundError):
        catalog.get_item("sentinel-2-l2a", REAL_S2_ID)
    with pytest.raises(NotFoundError):
        catalog.delete_item("sentinel-2-l2a", REAL_S2_ID)


def test_insert_upsert_ignore_are_idempotent_by_collection_and_id(catalog: Catalog) -> None:
    items = [generated_item(i) for i in range(5)]
    assert catalog.add_items(items, batch_size=2).inserted == 5
    again = catalog.add_items(items, mode="insert")
    assert again.inserted == 0
    assert {(r.item_id, r.field) for r in again.refused} == {(i["id"], "id") for i in items}
    ignored = catalog.add_items(items, mode="ignore")
    assert (ignored.inserted, ignored.skipped, ignored.refused) == (0, 5, [])
    changed = copy.deepcopy(items[0])
    changed["properties"]["eo:cloud_cover"] = 99.0
    upserted = catalog.add_items([changed, generated_item(7)], mode="upsert")
    assert (upserted.inserted, upserted.updated) == (1, 1)
    assert catalog.get_item("sentinel-2-l2a", "S2-GEN-00")["properties"]["eo:cloud_cover"] == 99.0
    page = catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=100))
    assert page.number_matched == 6
    assert len({item["id"] for item in page.items}) == 6


def _broken(item_id: str, change: Any) -> dict[str, Any]:
    item = generated_item(0)
    item["id"] = item_id
    change(item)
    return item


@pytest.mark.parametrize(
    ("item_id", "change", "field"),
    [
        ("no-geometry", lambda i: i.pop("geometry"), "geometry"),
        ("null-geometry", lambda i: i.update(geometry=None), "geometry"),
        ("bad-datetime", lambda i: i["properties"].update(datetime="2023-13-45T99:00:00Z"), "properties.datetime"),
        ("no-datetime", lambda i: i["properties"].pop("datetime"), "properties.datetime"),
        ("cloud-as-text", lambda i: i["properties"].update({"eo:cloud_cover": "low"}), "properties.eo:cloud_cover"),
        ("no-collection", lambda i: i.pop("collection"), "collection"),
        ("unknown-collection", lambda i: i.update(collection="nope"), "collection"),
        ("bad-ring", lambda i: i["geometry"]["coordinates"][0].pop(), "geometry"),
        ("lon-out-of-range", lambda i: i["geometry"]["coordinates"][0][1].__setitem__(0, 200.0), "geometry"),
        ("props-not-object", lambda i: i.update(properties=[]), "properties"),
    ],
)
def test_invalid_items_are_refused_with_id_field_and_reason(
    catalog: Catalog, item_id: str, change: Any, field: str
) -> None:
    good = generated_item(1)
    report = catalog.add_items([_broken(item_id, change), good])
    assert report.inserted == 1
    assert len(report.refused) == 1
    refusal = report.refused[0]
    assert (refusal.item_id, refusal.field) == (item_id, field)
    assert refusal.reason
    assert item_id in str(refusal)
    assert found(catalog) == {"S2-GEN-01"}


def test_item_without_id_is_refused(catalog: Catalog) -> None:
    item = generated_item(0)
    del item["id"]
    report = catalog.add_items([item])
    assert report.inserted == 0
    assert report.refused[0].field == "id"


def test_progress_reports_every_item(catalog: Catalog) -> None:
    seen: list[int] = []
    catalog.add_items([generated_item(i) for i in range(7)], batch_size=3, progress=seen.append)
    assert sum(seen) == 7


# --- search: space ----------------------------------------------------------------------------------------------


def test_bbox(loaded: Catalog) -> None:
    # the grid: item i covers [2 + i%4, 44 + i//4] .. +0.9
    assert found(loaded, bbox=[2.1, 44.1, 2.2, 44.2]) == gen(0)
    assert found(loaded, bbox=[2.5, 44.5, 3.5, 45.5]) == gen(0, 1, 4, 5)
    assert found(loaded, bbox=[2.1, 44.1, 0, 2.2, 44.2, 100]) == gen(0)  # 3D form
    assert found(loaded, bbox=[-10, -10, -9, -9]) == set()


def test_bbox_across_the_antimeridian(loaded: Catalog) -> None:
    assert found(loaded, bbox=[179, -18, -179, -15]) == {"S2-ANTIMERIDIAN"}
    assert found(loaded, bbox=[-179.9, -16.9, -179.6, -16.1]) == {"S2-ANTIMERIDIAN"}
    assert found(loaded, bbox=[179.6, -16.9, 179.9, -16.1]) == {"S2-ANTIMERIDIAN"}
    assert found(loaded, bbox=[0, -18, 10, -15]) == set()  # its parts are far from 0..10 E


def test_exact_geometry_not_just_bounding_boxes(loaded: Catalog) -> None:
    assert found(loaded, bbox=[10.1, 10.1, 10.2, 10.2]) == {"S2-TRIANGLE"}
    assert found(loaded, bbox=[10.8, 10.8, 11.0, 11.0]) == set()  # inside the bbox, outside the triangle


def test_intersects_any_geojson(loaded: Catalog) -> None:
    point = {"type": "Point", "coordinates": [3.5, 45.5]}
    assert found(loaded, intersects=point) == gen(5)
    line = {"type": "LineString", "coordinates": [[2.5, 44.5], [5.5, 44.5]]}
    assert found(loaded, intersects=line) == gen(0, 1, 2, 3)
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[2.2, 44.2], [2.4, 44.2], [2.4, 44.4], [2.2, 44.2]]],
            [[[179.6, -16.5], [179.9, -16.5], [179.9, -16.2], [179.6, -16.5]]],
        ],
    }
    assert found(loaded, intersects=multi) == gen(0) | {"S2-ANTIMERIDIAN"}


# --- search: time -----------------------------------------------------------------------------------------------


def test_datetime_instant_closed_and_open_intervals(loaded: Catalog) -> None:
    # generated item i is at 2023-01-15T10:30Z + 20 i days
    assert found(loaded, datetime="2023-01-15T10:30:00Z", collections=["sentinel-2-l2a"]) == gen(0)
    assert found(loaded, datetime="2023-02-04", collections=["sentinel-2-l2a"]) == gen(1)
    assert found(loaded, datetime="2023-01-01T00:00:00Z/2023-02-28T00:00:00Z") == gen(0, 1, 2)
    assert found(loaded, datetime="2023-01-01/2023-02-28", collections=["sentinel-2-l2a"]) == gen(0, 1, 2)
    late = found(loaded, datetime="2023-08-01T00:00:00Z/..", collections=["sentinel-2-l2a"])
    assert late == gen(10, 11) | {REAL_S2_ID}
    early = found(loaded, datetime="../2022-12-31T23:59:59Z")
    assert early == {REAL_S1_ID, "S2A_MSIL2A_20190212T192651_R013_T07HFE_20201007T160857"}


def test_items_with_a_time_range_match_overlapping_intervals(loaded: Catalog) -> None:
    event = "flood-garonne-2023-03"
    assert event in found(loaded, datetime="2023-03-10T00:00:00Z")
    assert event in found(loaded, datetime="2023-02-20T00:00:00Z/2023-03-02T00:00:00Z")
    assert event in found(loaded, datetime="2023-03-19T00:00:00Z/..")
    assert event not in found(loaded, datetime="2023-03-21T00:00:00Z/..")
    assert event not in found(loaded, datetime="../2023-02-28T00:00:00Z")


# --- search: collections, ids -----------------------------------------------------------------------------------


def test_collections_and_ids(loaded: Catalog) -> None:
    assert found(loaded, collections=["sentinel-1-grd"]) == {REAL_S1_ID}
    assert found(loaded, collections=["events", "sentinel-1-grd"]) == {REAL_S1_ID, "flood-garonne-2023-03"}
    assert found(loaded, ids=["S2-GEN-03", REAL_S1_ID, "missing"]) == gen(3) | {REAL_S1_ID}
    assert found(loaded, ids=["S2-GEN-03"], collections=["sentinel-1-grd"]) == set()
    assert found(loaded) == ALL_IDS


# --- search: CQL2 ----------------------------------------------------------------------------------------------


S2 = {"collections": ["sentinel-2-l2a"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"eo:cloud_cover" < 20', gen(0, 1, 2) | {REAL_S2_ID, "S2-TRIANGLE"}),
        ("\"eo:cloud_cover\" >= 80 AND platform = 'sentinel-2a'", gen(10)),
        ("\"eo:cloud_cover\" BETWEEN 30 AND 50 OR id = 'S2-GEN-11'", gen(4, 5, 6, 11) | {"S2-ANTIMERIDIAN"}),
        ("NOT (\"eo:cloud_cover\" > 10) AND id LIKE 'S2-GEN-%'", gen(0, 1)),
        ("id IN ('S2-GEN-01', 'S2-GEN-02', 'nope')", gen(1, 2)),
        ("id LIKE 'S2-GEN-0_'", gen(*range(10))),
        ("id LIKE 's2-gen-%'", set()),  # like is case-sensitive
        ("\"s2:mgrs_tile\" = '31TCJ'", gen(2)),
        ('"signature:water_fraction" > 0.45', gen(10, 11)),
        ('"signature:stats.ndvi_mean" >= 1', gen(10, 11)),
        ("\"signature:flag\" IS NULL AND id LIKE 'S2-GEN-%'", gen(*range(GENERATED))),
        ('"signature:water_fraction" IS NULL', {REAL_S2_ID, "S2-ANTIMERIDIAN", "S2-TRIANGLE"}),
        ("S_INTERSECTS(geometry, POLYGON((2.1 44.1, 2.2 44.1, 2.2 44.2, 2.1 44.1)))", gen(0)),
        (
            "datetime > TIMESTAMP('2023-07-01T00:00:00Z') AND datetime < TIMESTAMP('2023-08-01T00:00:00Z')",
            gen(9),
        ),
        ("T_INTERSECTS(datetime, INTERVAL('2023-01-01T00:00:00Z', '2023-02-28T00:00:00Z'))", gen(0, 1, 2)),
        ("T_BEFORE(datetime, TIMESTAMP('2023-02-01T00:00:00Z'))", gen(0)),
        ("T_AFTER(datetime, TIMESTAMP('2023-07-20T00:00:00Z'))", gen(10, 11) | {REAL_S2_ID}),
    ],
)
def test_cql2_text(loaded: Catalog, text: str, expected: set[str]) -> None:
    assert found(loaded, filter=text, filter_lang="cql2-text", **S2) == expected


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"op": "a_contains", "args": [{"property": "signature:themes"}, ["water"]]}, gen(0, 3, 6, 9)),
        ({"op": "a_overlaps", "args": [{"property": "signature:themes"}, ["urban", "forest"]]}, gen(*range(12))),
        ({"op": "a_equals", "args": [{"property": "signature:themes"}, ["water", "urban"]]}, gen(0, 3, 6, 9)),
        (
            {"op": "s_within", "args": [{"property": "geometry"}, {"bbox": [1.9, 43.9, 3.0, 45.0]}]},
            gen(0),
        ),
        (
            {"op": "s_contains", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [3.5, 44.5]}]},
            gen(1),
        ),
        (
            {
                "op": "t_during",
                "args": [{"property": "datetime"}, {"interval": ["2023-02-01T00:00:00Z", "2023-03-10T00:00:00Z"]}],
            },
            gen(1, 2),
        ),
        (
            {
                "op": "=",
                "args": [{"op": "casei", "args": [{"property": "platform"}]}, {"op": "casei", "args": ["SENTINEL-2B"]}],
            },
            gen(1, 3, 5, 7, 9, 11),
        ),
    ],
)
def test_cql2_array_spatial_temporal_functions(loaded: Catalog, tree: dict[str, Any], expected: set[str]) -> None:
    assert found(loaded, filter=tree, filter_lang="cql2-json", collections=["sentinel-2-l2a"]) == expected


def test_cql2_json_matches_text(loaded: Catalog) -> None:
    tree = {
        "op": "and",
        "args": [
            {"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]},
            {"op": "in", "args": [{"property": "platform"}, ["sentinel-2b"]]},
            {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [2, 44, 4, 46]}]},
        ],
    }
    as_json = found(loaded, filter=tree, filter_lang="cql2-json")
    as_text = found(
        loaded,
        filter="\"eo:cloud_cover\" < 50 AND platform IN ('sentinel-2b') AND S_INTERSECTS(geometry, BBOX(2, 44, 4, 46))",
    )
    assert as_json == as_text == gen(1, 5)


def test_query_extension(loaded: Catalog) -> None:
    query = {"eo:cloud_cover": {"gte": 40, "lt": 64}, "platform": {"eq": "sentinel-2b"}}
    assert found(loaded, query=query) == gen(5, 7)
    assert found(loaded, query={"s2:mgrs_tile": {"startsWith": "31TA"}}) == gen(0)
    assert found(loaded, query={"platform": {"in": ["sentinel-2b"]}}, ids=["S2-GEN-01", "S2-GEN-02"]) == gen(1)


def test_filter_and_query_combine(loaded: Catalog) -> None:
    result = found(loaded, filter='"eo:cloud_cover" < 30', query={"platform": {"eq": "sentinel-2a"}}, **S2)
    assert result == gen(0, 2)


def test_values_with_quotes_are_data_not_sql(loaded: Catalog) -> None:
    assert found(loaded, filter="id = 'x'' OR 1=1 --'") == set()
    assert found(loaded, ids=["'; DROP TABLE items; --"]) == set()
    assert found(loaded, collections=["sentinel-1-grd"]) == {REAL_S1_ID}


# --- sorting, fields, paging -------------------------------------------------------------------------------------


def test_sortby_one_and_several_keys(loaded: Catalog) -> None:
    def order(sortby: list[SortKey]) -> list[str]:
        request = SearchRequest(ids=sorted(GEN_IDS), sortby=sortby, limit=100)
        return [item["id"] for item in loaded.search(request).items]

    assert order([SortKey(field="eo:cloud_cover", direction="desc")]) == sorted(GEN_IDS, reverse=True)
    assert order([SortKey(field="datetime", direction="asc")]) == sorted(GEN_IDS)
    by_platform = order([SortKey(field="platform"), SortKey(field="datetime", direction="desc")])
    evens = [f"S2-GEN-{i:02d}" for i in (10, 8, 6, 4, 2, 0)]
    odds = [f"S2-GEN-{i:02d}" for i in (11, 9, 7, 5, 3, 1)]
    assert by_platform == evens + odds
    nested = order([SortKey(field="signature:stats.ndvi_mean", direction="desc")])
    assert nested == sorted(GEN_IDS, reverse=True)


def test_default_sort_is_newest_first(loaded: Catalog) -> None:
    items = loaded.search(SearchRequest(ids=sorted(GEN_IDS), limit=100)).items
    dates = [item["properties"]["datetime"] for item in items]
    assert dates == sorted(dates, reverse=True)


def test_fields_include_and_exclude(loaded: Catalog) -> None:
    request = SearchRequest(
        ids=["S2-GEN-01"], fields=Fields(include=["properties.eo:cloud_cover", "properties.platform"])
    )
    item = loaded.search(request).items[0]
    assert item["id"] == "S2-GEN-01"
    assert item["properties"] == {"eo:cloud_cover": 8.0, "platform": "sentinel-2b"}
    assert "assets" not in item
    excluded = loaded.search(SearchRequest(ids=["S2-GEN-01"], fields=Fields(exclude=["assets", "links"]))).items[0]
    assert "assets" not in excluded
    assert "links" not in excluded
    assert excluded["properties"]["platform"] == "sentinel-2b"


@pytest.mark.parametrize(
    "sortby",
    [
        None,
        [SortKey(field="eo:cloud_cover", direction="asc")],
        [SortKey(field="platform", direction="desc"), SortKey(field="id", direction="asc")],
    ],
)
def test_paging_with_tokens_is_complete_and_stable(loaded: Catalog, sortby: list[SortKey] | None) -> None:
    request = SearchRequest(limit=4, sortby=sortby)
    expected = [item["id"] for item in loaded.search(request.model_copy(update={"limit": 100})).items]
    seen: list[str] = []
    page = loaded.search(request)
    assert page.number_matched == len(ALL_IDS)
    while True:
        assert len(page.items) <= 4
        seen.extend(item["id"] for item in page.items)
        if not page.next_token:
            break
        page = loaded.search(request.model_copy(update={"token": page.next_token}))
    assert seen == expected
    assert set(seen) == ALL_IDS


def test_number_matched_counts_all_pages(loaded: Catalog) -> None:
    page = loaded.search(SearchRequest(filter='"eo:cloud_cover" < 50', limit=2, collections=["sentinel-2-l2a"]))
    assert len(page.items) == 2
    assert page.number_matched == 9  # generated 0..6, the real S2 item, the triangle
    assert page.next_token


def test_iter_items_streams_everything(loaded: Catalog) -> None:
    streamed = [item["id"] for item in loaded.iter_items(SearchRequest(limit=3))]
    assert len(streamed) == len(ALL_IDS)
    assert set(streamed) == ALL_IDS


# --- aggregation -------------------------------------------------------------------------------------------------


def _buckets(result: dict[str, Any], name: str) -> dict[Any, int]:
    for entry in result["aggregations"]:
        if entry["name"] == name:
            return {bucket["key"]: bucket["frequency"] for bucket in entry["buckets"]}
    raise KeyError(name)


def test_aggregations(loaded: Catalog) -> None:
    names = ["total_count", "collection_frequency", "datetime_frequency:month", "cloud_cover_frequency"]
    result = loaded.aggregate(SearchRequest(collections=["sentinel-2-l2a"]), names)
    total = next(a for a in result["aggregations"] if a["name"] == "total_count")
    assert total["value"] == GENERATED + 3
    assert _buckets(result, "collection_frequency") == {"sentinel-2-l2a": GENERATED + 3}
    months = _buckets(result, "datetime_frequency:month")
    assert months["2023-01"] == 1
    assert months["2023-06"] == 4  # generated 7 and 8, the antimeridian item, the triangle
    assert sum(months.values()) == GENERATED + 3
    clouds = _buckets(result, "cloud_cover_frequency")
    assert clouds[0] == 4  # 0, 8, real 4.2, triangle 1
    assert clouds[80] == 2  # 80, 88
    assert sum(clouds.values()) == GENERATED + 3


def test_grid_aggregation(loaded: Catalog) -> None:
    result = loaded.aggregate(SearchRequest(ids=["S2-GEN-00", "S2-GEN-05"]), ["geohash_frequency:3"])
    cells = _buckets(result, "geohash_frequency:3")
    assert sum(cells.values()) == 2
    assert all(len(key) == 3 for key in cells)


# --- records -----------------------------------------------------------------------------------------------------


def test_records(catalog: Catalog) -> None:
    assert catalog.get_record("jobs", "a") is None
    catalog.put_record("jobs", "b", {"state": "queued"})
    catalog.put_record("jobs", "a", {"state": "running", "n": [1, 2]})
    catalog.put_record("jobs", "a", {"state": "done"})
    catalog.put_record("users", "a", {"name": "x"})
    assert catalog.get_record("jobs", "a") == {"state": "done"}
    assert catalog.list_records("jobs") == [("a", {"state": "done"}), ("b", {"state": "queued"})]
    catalog.delete_record("jobs", "a")
    assert catalog.get_record("jobs", "a") is None
    assert catalog.get_record("users", "a") == {"name": "x"}


# --- bad requests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_args", "field", "words"),
    [
        ({"filter": "eo:cloud_cover <<< 3"}, "filter", "cql2"),
        ({"filter": "platform = "}, "filter", "cql2"),
        ({"filter": {"op": "frobnicate", "args": [1]}}, "filter", "frobnicate"),
        ({"filter": {"op": "=", "args": [{"property": "a'b"}, 1]}}, "filter", "a'b"),
        ({"datetime": "2023-02-01/2023-01-01"}, "datetime", "after"),
        ({"datetime": "yesterday"}, "datetime", "yesterday"),
        ({"datetime": "../.."}, "datetime", "bound"),
        ({"bbox": [200, 0, 210, 10]}, "bbox", "west 200"),
        ({"bbox": [0, 10, 1, 5]}, "bbox", "south"),
        ({"bbox": [0, 1, 2]}, "bbox", "4 or 6"),
        ({"intersects": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}, "intersects", "ring"),
        ({"intersects": {"type": "Circle", "coordinates": [0, 0]}}, "intersects", "Circle"),
        ({"limit": 0}, "limit", "range"),
        ({"limit": 10_001}, "limit", "range"),
        ({"token": "not-a-token"}, "token", "token"),
        ({"query": {"eo:cloud_cover": {"approx": 3}}}, "query", "approx"),
    ],
)
def test_bad_requests_name_the_field(loaded: Catalog, request_args: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        loaded.search(SearchRequest(**request_args))
    assert error.value.field == field
    assert words.lower() in error.value.message.lower()
