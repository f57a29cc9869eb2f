"""The STAC API over a real SQLite catalog, through the ASGI app (TestClient)."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from snapearth.api.app import create_app
from tests.api.conftest import API_KEY, Archive, settings_for

S2 = "sentinel-2-l2a"


def test_landing_conformance_and_openapi(stac_client: TestClient) -> None:
    landing = stac_client.get("/").json()
    assert landing["id"] == "snapearth"
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "root", "data", "conformance", "search", "service-desc", "child"} <= rels
    assert any(rel.endswith("queryables") for rel in rels)
    conformance = stac_client.get("/conformance").json()["conformsTo"]
    assert "https://api.stacspec.org/v1.0.0/item-search" in conformance
    assert any("transaction" in c for c in conformance)
    assert stac_client.get("/api").headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert stac_client.get("/api.html").status_code == 200


def test_collections_and_items(stac_client: TestClient, api_archive: Archive) -> None:
    collections = stac_client.get("/collections").json()["collections"]
    assert {c["id"] for c in collections} == {S2, "sentinel-1-grd"}
    page = stac_client.get(f"/collections/{S2}/items", params={"limit": 5}).json()
    assert page["numberMatched"] == len(api_archive.s2_ids)
    assert len(page["features"]) == 5
    item = stac_client.get(f"/collections/{S2}/items/{api_archive.s2_ids[0]}").json()
    assert item["id"] == api_archive.s2_ids[0]
    href = item["assets"]["B04"]["href"]
    assert href == "http://testserver/files/cogs/B04.tif"  # local file -> URL the API serves
    renders = {link["rel"]: link["href"] for link in item["links"] if link["rel"] in ("preview", "tilejson")}
    assert renders["preview"].endswith("/preview.png?rendering=truecolor")
    assert stac_client.get(renders["tilejson"]).status_code == 200
    here = f"http://testserver/collections/{S2}/items/{api_archive.s2_ids[0]}"
    assert [link["rel"] for link in item["links"][:4]] == ["self", "parent", "collection", "root"]
    assert item["links"][0]["href"] == here
    tilejsons = [link for link in item["links"] if link["rel"] == "tilejson"]
    assert {link["href"].split("rendering=")[1] for link in tilejsons} >= {"truecolor", "falsecolor", "ndvi"}
    assert all(link["href"].startswith(here + "/tilejson.json?") for link in tilejsons)
    searched = stac_client.get("/search", params={"ids": api_archive.s2_ids[0]}).json()["features"][0]
    assert searched["links"] == item["links"]


def test_searches_see_collections_made_or_removed_elsewhere(
    stac_client: TestClient, api_archive: Archive, backend_url: str
) -> None:
    """The API keeps the collection ids briefly: a miss reads the catalog again, a delete forgets them."""
    from snapearth.catalog import open_catalog

    assert stac_client.get("/search", params={"collections": S2, "limit": 1}).status_code == 200
    catalog = open_catalog(backend_url)  # another writer of the same catalog (the CLI, a loader)
    try:
        collection = {**stac_client.get(f"/collections/{S2}").json(), "id": "made-elsewhere", "links": []}
        catalog.create_collection(collection)
    finally:
        catalog.close()
    assert stac_client.get("/search", params={"collections": "made-elsewhere"}).status_code == 200
    assert stac_client.get("/collections/made-elsewhere/items").status_code == 200
    assert stac_client.delete("/collections/made-elsewhere", headers={"X-API-Key": API_KEY}).status_code == 204
    gone = stac_client.get("/search", params={"collections": "made-elsewhere"})
    assert gone.status_code == 404
    assert gone.json()["field"] == "collections"
    assert stac_client.get("/collections/made-elsewhere/items").status_code == 404


def test_json_responses_with_numbers_as_keys() -> None:
    from snapearth.api.responses import JSONResponse

    assert JSONResponse({"a": {1: 2}}).body == b'{"a":{"1":2}}'
    with pytest.raises(TypeError):
        JSONResponse({"a": object()})


def test_files_are_served_with_range_and_confined(stac_client: TestClient) -> None:
    whole = stac_client.get("/files/cogs/B04.tif")
    assert whole.status_code == 200
    part = stac_client.get("/files/cogs/B04.tif", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == whole.content[:100]
    escape = stac_client.get("/files/../../etc/passwd")
    assert escape.status_code == 404
    assert stac_client.get("/files/%2e%2e/catalog.db/../../../etc/hostname").status_code == 404


def test_get_search_pages_through_every_item(stac_client: TestClient, api_archive: Archive) -> None:
    seen: list[str] = []
    url: str | None = f"/search?collections={S2}&limit=4"
    while url:
        body = stac_client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        assert body["numberMatched"] == len(api_archive.s2_ids)
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(api_archive.s2_ids)


def test_post_search_paging_sort_fields_query(stac_client: TestClient, api_archive: Archive) -> None:
    body = {
        "collections": [S2],
        "limit": 5,
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "asc"}],
        "fields": {"include": ["id", "properties.eo:cloud_cover"], "exclude": ["geometry"]},
        "query": {"eo:cloud_cover": {"lt": 80}},
    }
    covers: list[float] = []
    while True:
        response = stac_client.post("/search", json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        for feature in page["features"]:
            assert "geometry" not in feature
            covers.append(feature["properties"]["eo:cloud_cover"])
        nxt = next((link for link in page["links"] if link["rel"] == "next"), None)
        if nxt is None:
            break
        assert nxt["method"] == "POST"
        body = nxt["body"]
    assert covers == sorted(covers)
    assert all(c < 80 for c in covers)
    assert len(covers) == sum(1 for n in range(len(api_archive.s2_ids)) if (n * 37) % 100 < 80)


def test_filter_cql2_text_and_json_agree(stac_client: TestClient) -> None:
    text = stac_client.get(
        "/search", params={"filter": "eo:cloud_cover < 40 AND platform = 'sentinel-2a'", "limit": 50}
    )
    json_body = {
        "filter-lang": "cql2-json",
        "filter": {
            "op": "and",
            "args": [
                {"op": "<", "args": [{"property": "eo:cloud_cover"}, 40]},
                {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},
            ],
        },
        "limit": 50,
    }
    posted = stac_client.post("/search", json=json_body)
    assert text.status_code == posted.status_code == 200, (text.text, posted.text)
    ids = {f["id"] for f in text.json()["features"]}
    assert ids == {f["id"] for f in posted.json()["features"]}
    assert ids  # the fixture has matching items
    for feature in text.json()["features"]:
        assert feature["properties"]["eo:cloud_cover"] < 40


def test_queryables_per_collection(stac_client: TestClient) -> None:
    s2 = stac_client.get(f"/collections/{S2}/queryables").json()["properties"]
    assert s2["eo:cloud_cover"]["type"] == "number"
    assert "sar:instrument_mode" not in s2
    s1 = stac_client.get("/collections/sentinel-1-grd/queryables").json()["properties"]
    assert "sar:instrument_mode" in s1


def test_aggregation(stac_client: TestClient, api_archive: Archive) -> None:
    response = stac_client.get("/aggregate", params={"aggregations": "total_count,collection_frequency"})
    assert response.status_code == 200, response.text
    by_name = {a["name"]: a for a in response.json()["aggregations"]}
    assert by_name["total_count"]["value"] == len(api_archive.s2_ids) + 1
    scoped = stac_client.get(f"/collections/{S2}/aggregate", params={"aggregations": "total_count"}).json()
    assert scoped["aggregations"][0]["value"] == len(api_archive.s2_ids)
    assert stac_client.get("/aggregations").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "payload", "field"),
    [
        ("GET", "/search?bbox=10,20,5", None, "bbox"),
        ("GET", "/search?bbox=200,0,210,10", None, "bbox"),
        ("GET", "/search?datetime=2024-02-01/2023-01-01", None, "datetime"),
        ("POST", "/search", {"datetime": "2024-02-01T00:00:00Z/2023-01-01T00:00:00Z"}, "datetime"),
        ("GET", "/search?filter=eo:cloud_cover%20%3C", None, "filter"),
        ("POST", "/search", {"filter": {"op": "nope", "args": []}}, "filter"),
        ("GET", "/search?filter=no_such_property%20%3D%201", None, "filter"),
        ("GET", "/search?sortby=-no_such_property", None, "sortby"),
        ("GET", "/search?collections=no-such-collection", None, "collections"),
        ("GET", "/collections/no-such-collection/items", None, "collection"),
        ("GET", "/search?limit=0", None, "limit"),
        ("GET", "/search?limit=-3", None, "limit"),
        ("GET", "/search?limit=abc", None, "limit"),
        ("POST", "/search", {"limit": 0}, "limit"),
        ("GET", "/search?intersects=%7Bbad", None, "intersects"),
        ("GET", "/search?token=not-a-token", None, "token"),
        ("GET", "/search?query=%7B%22eo%3Acloud_cover%22%3A%7B%22zz%22%3A1%7D%7D", None, "query"),
        ("GET", "/aggregate?aggregations=bogus", None, "aggregations"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_parameter(
    stac_client: TestClient, method: str, url: str, payload: dict[str, object] | None, field: str
) -> None:
    response = stac_client.request(method, url, json=payload)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["field"] == field, body
    assert body["description"]
    assert response.headers["x-request-id"] == body["request_id"]


def test_transactions_need_the_api_key(stac_client: TestClient, api_archive: Archive) -> None:
    """On a writable copy of the catalog (fixture ``backend_url``), on each backend."""
    archive = api_archive
    item = stac_client.get(f"/collections/{S2}/items/{archive.s2_ids[0]}").json()
    new = copy.deepcopy(item)
    new["id"] = "S2A_TEST_TRANSACTION"
    new["links"] = []
    assert stac_client.post(f"/collections/{S2}/items", json=new).status_code == 401
    wrong = stac_client.post(f"/collections/{S2}/items", json=new, headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 403
    key = {"X-API-Key": API_KEY}
    created = stac_client.post(f"/collections/{S2}/items", json=new, headers=key)
    assert created.status_code == 201, created.text
    assert stac_client.post(f"/collections/{S2}/items", json=new, headers=key).status_code == 409
    new["properties"]["eo:cloud_cover"] = 1.5
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    updated = stac_client.put(f"/collections/{S2}/items/{new['id']}", json=new, headers=bearer)
    assert updated.status_code == 204, updated.text
    stored = stac_client.get(f"/collections/{S2}/items/{new['id']}").json()
    assert stored["properties"]["eo:cloud_cover"] == 1.5
    assert stac_client.delete(f"/collections/{S2}/items/{new['id']}", headers=key).status_code == 204
    assert stac_client.get(f"/collections/{S2}/items/{new['id']}").status_code == 404

    collection = {
        "type": "Collection",
        "id": "events-test",
        "stac_version": "1.0.0",
        "description": "test",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }
    assert stac_client.post("/collections", json=collection).status_code == 401
    assert stac_client.post("/collections", json=collection, headers=key).status_code == 201
    assert stac_client.get("/collections/events-test").status_code == 200
    assert stac_client.delete("/collections/events-test", headers=key).status_code == 204
    assert stac_client.get("/collections/events-test").status_code == 404


def test_transaction_bodies_partial_items_and_patches(stac_client: TestClient, api_archive: Archive) -> None:
    """An item without links is completed by the server; merge patch and JSON Patch; wrong types stay refused."""
    key = {"X-API-Key": API_KEY}
    item = stac_client.get(f"/collections/{S2}/items/{api_archive.s2_ids[0]}").json()
    new = {k: copy.deepcopy(v) for k, v in item.items() if k != "links"}
    new["id"] = "S2A_TEST_PARTIAL"
    url = f"/collections/{S2}/items/{new['id']}"
    created = stac_client.post(f"/collections/{S2}/items", json=new, headers=key)
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(url)
    assert {"self", "parent", "collection", "root"} <= {link["rel"] for link in created.json()["links"]}
    try:
        for method, body in (
            ("PUT", {**new, "properties": {**new["properties"], "eo:cloud_cover": "3.14"}}),
            ("PATCH", {"properties": {"eo:cloud_cover": "12.4"}}),
            ("PATCH", [{"op": "replace", "path": "/properties/eo:cloud_cover", "value": "12.4"}]),
        ):
            refused = stac_client.request(method, url, json=body, headers=key)
            assert refused.status_code == 400, refused.text
            assert refused.json()["field"] == "properties.eo:cloud_cover"
        assert stac_client.get(url).json()["properties"]["eo:cloud_cover"] == item["properties"]["eo:cloud_cover"]

        merge = {"properties": {"eo:cloud_cover": 12.5, "platform": None, "a_patch_field": "bar"}}
        assert stac_client.patch(url, json=merge, headers=key).status_code == 204
        properties = stac_client.get(url).json()["properties"]
        assert properties["eo:cloud_cover"] == 12.5
        assert "platform" not in properties
        assert properties["a_patch_field"] == "bar"
        assert properties["datetime"] == item["properties"]["datetime"]

        operations = [
            {"op": "test", "path": "/properties/a_patch_field", "value": "bar"},
            {"op": "replace", "path": "/properties/eo:cloud_cover", "value": 7},
            {"op": "move", "from": "/properties/a_patch_field", "path": "/properties/moved~1field"},
            {"op": "copy", "from": "/properties/datetime", "path": "/properties/start_datetime"},
            {"op": "add", "path": "/properties/instruments/-", "value": "extra"},
            {"op": "remove", "path": "/properties/instruments/0"},
        ]
        patched = stac_client.patch(url, json=operations, headers=key)
        assert patched.status_code == 204, patched.text
        properties = stac_client.get(url).json()["properties"]
        assert properties["eo:cloud_cover"] == 7
        assert properties["moved/field"] == "bar"
        assert "a_patch_field" not in properties
        assert properties["start_datetime"] == properties["datetime"]
        assert properties["instruments"] == [*item["properties"]["instruments"][1:], "extra"]

        failed = stac_client.patch(url, json=[{"op": "test", "path": "/id", "value": "other"}], headers=key)
        assert failed.status_code == 409
        assert failed.json()["field"] == "body"
        for bad in (
            [{"op": "remove", "path": "/properties/nothing-here"}],
            [{"op": "replace", "path": "properties", "value": 1}],
            [{"op": "copy", "path": "/properties/x"}],
        ):
            response = stac_client.patch(url, json=bad, headers=key)
            assert 400 <= response.status_code < 500, response.text
            assert response.json()["field"] == "body"
        assert stac_client.get(url).json()["properties"]["eo:cloud_cover"] == 7
    finally:
        assert stac_client.delete(url, headers=key).status_code == 204


def test_transactions_refused_without_a_configured_key(api_archive: Archive) -> None:
    with TestClient(create_app(settings_for(api_archive, api_key=None)), raise_server_exceptions=False) as client:
        response = client.delete(f"/collections/{S2}/items/whatever", headers={"X-API-Key": "anything"})
        assert response.status_code == 403
        assert response.json()["field"] == "api_key"
