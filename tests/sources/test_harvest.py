"""Harvests over real HTTP on loopback: pagination, incremental runs, resume, retries, failover, merging."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shapely.geometry import box

from snapearth.catalog import SearchRequest
from snapearth.catalog.base import parse_rfc3339
from snapearth.errors import AuthenticationError, InvalidInputError
from snapearth.sources.harvest import STATE_NAMESPACE, harvest
from snapearth.sources.query import parse_geometry, parse_window
from tests.sources.replay import Failure, StacPages, recorded_features, stac_item

L2A = "sentinel-2-l2a"
PC_ITEM = "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json"
STACTOOLS_ITEM = "stactools_S2A_MSIL2A_20190212T192651_R013_T07HFE_item.json"
PC_ID = "S2A_MSIL2A_20231107T144731_R139_T20QRF_20231107T182159"
STACTOOLS_ID = "S2A_MSIL2A_20190212T192651_R013_T07HFE_20201007T160857"
WORLD = box(-180, -90, 180, 90)
UTM_SQUARE = {
    "type": "Polygon",
    "coordinates": [[[600000, 1790220], [709800, 1790220], [709800, 1900020], [600000, 1790220]]],
}


def pc_pages(replay: Any) -> StacPages:
    """Planetary Computer's /search over two real L2A items (2019 and 2023), one per page."""
    pages = StacPages(replay, "/pc/api/stac/v1/search", [stac_item(STACTOOLS_ITEM), stac_item(PC_ITEM)])
    replay.route("/pc/api/stac/v1/search", pages)
    return pages


def stored(catalog: Any, collection: str = L2A) -> dict[str, Any]:
    return {i["id"]: i for i in catalog.search(SearchRequest(collections=[collection], limit=100)).items}


def run(catalog: Any, gateway: Any, providers: list[str], window: str, **kwargs: Any) -> Any:
    collection = kwargs.pop("collection", L2A)
    return harvest(
        catalog,
        gateway,
        providers=providers,
        collection=collection,
        geometry=kwargs.pop("geometry", WORLD),
        window=parse_window(window, collection),
        **kwargs,
    )


def test_pages_through_a_provider_and_stores_normalised_items(catalog, replay, make_gateway):
    pc_pages(replay)
    report = run(
        catalog, make_gateway("planetary_computer", page_size=1), ["planetary_computer"], "2019-01-01/2024-01-01"
    )
    (provider,) = report.providers
    assert (provider.status, provider.pages, provider.results) == ("ok", 2, 2)
    requests = replay.json_bodies_to("/pc/")
    assert [r.get("token") for r in requests] == [None, "1"]  # the second page follows the API's next link
    assert requests[0]["limit"] == 1
    assert requests[0]["sortby"] == [{"field": "properties.datetime", "direction": "asc"}]
    items = stored(catalog)
    assert set(items) == {PC_ID, STACTOOLS_ID}
    pc = items[PC_ID]
    raw = stac_item(PC_ITEM)
    assert pc["properties"]["eo:cloud_cover"] == raw["properties"]["eo:cloud_cover"]
    assert pc["properties"]["platform"] == "sentinel-2a"
    assert pc["properties"]["grid:code"] == "MGRS-20QRF"
    assert pc["assets"]["B04"]["href"] == raw["assets"]["B04"]["href"]
    assert pc["properties"]["snapearth:sources"][0] == {**pc["properties"]["snapearth:sources"][0], "id": raw["id"]}
    assert catalog.get_collection(L2A)["id"] == L2A


def test_rerun_fetches_only_what_is_new(catalog, replay, make_gateway):
    pc_pages(replay)
    gateway = make_gateway("planetary_computer", page_size=1)
    run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    before = len(replay.requests_to("/pc/"))

    again = run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    assert again.providers[0].status == "up-to-date"
    assert len(replay.requests_to("/pc/")) == before  # nothing asked

    wider = run(catalog, gateway, ["planetary_computer"], "2018-06-01/2024-06-01")
    asked = [r["datetime"] for r in replay.json_bodies_to("/pc/")[before:]]
    assert len(asked) == 2
    assert asked[0].startswith("2018-06-01T00:00:00")
    assert asked[0].split("/")[1].startswith("2019-01-01T00:00:00")
    assert asked[1].startswith("2024-01-01T23:59:59")
    assert asked[1].split("/")[1].startswith("2024-06-01T23:59:59")
    assert wider.providers[0].status == "ok"
    state = catalog.get_record(STATE_NAMESPACE, f"planetary_computer|{L2A}|{wider.area}")
    assert state["covered"] == [["2018-06-01T00:00:00Z", "2024-06-01T23:59:59.999999Z"]]


def test_interrupted_harvest_resumes_after_the_last_stored_page(catalog, replay, make_gateway, sleeps):
    pages = pc_pages(replay)
    pages.broken_offsets = {1}  # the second page keeps failing
    gateway = make_gateway("planetary_computer", page_size=1)
    first = run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    (provider,) = first.providers
    assert provider.status == "failed"
    assert "HTTP 500" in provider.error
    assert len(sleeps) == 2  # three attempts, two backoffs
    assert set(stored(catalog)) == {STACTOOLS_ID}
    state = catalog.get_record(STATE_NAMESPACE, f"planetary_computer|{L2A}|{first.area}")
    assert state["covered"] == [["2019-01-01T00:00:00Z", "2019-02-12T19:26:51.024000Z"]]

    pages.broken_offsets = set()
    before = len(replay.requests_to("/pc/"))
    second = run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    assert second.providers[0].status == "ok"
    assert replay.json_bodies_to("/pc/")[before]["datetime"].startswith("2019-02-12T19:26:51")
    assert set(stored(catalog)) == {STACTOOLS_ID, PC_ID}


@pytest.mark.parametrize(("status", "retry_after", "waited"), [(503, "7", 7.0), (429, "2", 2.0), (502, None, 0.5)])
def test_transient_errors_are_retried_with_backoff(catalog, replay, make_gateway, sleeps, status, retry_after, waited):
    route_pages = pc_pages(replay)
    replay.routes[-1].failures = [Failure(status=status, retry_after=retry_after)]
    report = run(catalog, make_gateway("planetary_computer"), ["planetary_computer"], "2019-01-01/2024-01-01")
    assert report.providers[0].status == "ok"
    assert sleeps == [waited]
    assert len(route_pages.features) == len(stored(catalog)) == 2


def test_client_errors_are_not_retried(catalog, replay, make_gateway, sleeps):
    pc_pages(replay)
    replay.routes[-1].failures = [Failure(status=400, body=b'{"code": "BadRequest"}')]
    report = run(catalog, make_gateway("planetary_computer"), ["planetary_computer"], "2019-01-01/2024-01-01")
    assert report.providers[0].status == "failed"
    assert "HTTP 400" in report.providers[0].error
    assert sleeps == []
    assert len(replay.requests_to("/pc/")) == 1
    assert stored(catalog) == {}


def test_a_timeout_is_retried(catalog, replay, make_gateway, sleeps):
    pc_pages(replay)
    replay.routes[-1].failures = [Failure(status=503, delay=4.0)]
    gateway = make_gateway("planetary_computer", extra={"planetary_computer": {"search": {"timeout": 2.0}}})
    report = run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    assert report.providers[0].status == "ok"
    assert sleeps == [0.5]
    assert len(stored(catalog)) == 2


def test_a_failing_provider_is_reported_and_the_others_still_count(catalog, replay, make_gateway):
    replay.route("/oidc", replay.oidc())
    broken = replay.route("/odata/v1/Products", replay.recorded("cop_dataspace_search.json"))
    broken.always_fail = Failure(status=503, retry_after="0")
    es = StacPages(replay, "/earth-search/v1/search", recorded_features("earth_search_search.json"))
    replay.route("/earth-search/v1/search", es)
    gateway = make_gateway("cop_dataspace", "earth_search")
    report = run(
        catalog, gateway, ["cop_dataspace", "earth_search"], "2015-07-01/2025-01-01", collection="sentinel-2-l1c"
    )
    status = {p.provider: p.status for p in report.providers}
    assert status == {"cop_dataspace": "failed", "earth_search": "ok"}
    assert "503" in report.failed[0].error
    assert not report.all_failed
    assert set(stored(catalog, "sentinel-2-l1c")) == {"S2B_MSIL1C_20240206T131259_R081_T27VWK_20240206T133903"}
    # the failed provider's window stays uncovered: the next run asks it again, not earth_search
    again = run(
        catalog, gateway, ["cop_dataspace", "earth_search"], "2015-07-01/2025-01-01", collection="sentinel-2-l1c"
    )
    assert {p.provider: p.status for p in again.providers} == {"cop_dataspace": "failed", "earth_search": "up-to-date"}


def mirror_config(replay: Any) -> dict[str, Any]:
    """A second STAC host of the same products (a national mirror), declared in EODAG's own configuration."""
    return {
        "eu_mirror": {
            "url": "https://mirror.example.eu",
            "priority": 0,
            "search": {"type": "StacSearch", "api_endpoint": f"{replay.url}/mirror/search"},
            "products": {
                "S2_MSI_L2A": {"_collection": "sentinel-2-l2a"},
                "GENERIC_COLLECTION": {"_collection": "{collection}"},
            },
            "download": {"type": "HTTPDownload"},
        }
    }


def serve_mirror(replay: Any) -> None:
    item = copy.deepcopy(stac_item(PC_ITEM))
    for asset in item["assets"].values():
        asset["href"] = asset["href"].replace(
            "https://sentinel2l2a01.blob.core.windows.net", "https://mirror.example.eu"
        )
    replay.route("/mirror/search", StacPages(replay, "/mirror/search", [item]))


@pytest.mark.parametrize("order", [["planetary_computer", "eu_mirror"], ["eu_mirror", "planetary_computer"]])
def test_the_same_product_from_two_providers_is_one_item_with_both_routes(catalog, replay, make_gateway, order):
    pc_pages(replay)
    serve_mirror(replay)
    gateway = make_gateway("planetary_computer", "eu_mirror", extra=mirror_config(replay))
    report = run(catalog, gateway, ["planetary_computer", "eu_mirror"], "2023-11-01/2023-11-30", priority=order)
    assert [p.status for p in report.providers] == ["ok", "ok"]
    items = stored(catalog)
    assert list(items) == [PC_ID]
    item = items[PC_ID]
    assert [s["provider"] for s in item["properties"]["snapearth:sources"]] == order
    hosts = {
        "planetary_computer": "https://sentinel2l2a01.blob.core.windows.net",
        "eu_mirror": "https://mirror.example.eu",
    }
    b04 = item["assets"]["B04"]
    assert b04["href"].startswith(hosts[order[0]])
    assert b04["alternate:name"] == order[0]
    assert b04["alternate"][order[1]]["href"].startswith(hosts[order[1]])
    assert "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json" in item["stac_extensions"]
    assert {p["name"] for p in item["properties"]["providers"]} >= set(order)


def test_rerunning_a_merged_harvest_keeps_one_route_per_provider(catalog, replay, make_gateway):
    pc_pages(replay)
    serve_mirror(replay)
    gateway = make_gateway("planetary_computer", "eu_mirror", extra=mirror_config(replay))
    providers = ["planetary_computer", "eu_mirror"]
    run(catalog, gateway, providers, "2023-11-01/2023-11-30", priority=providers)
    run(catalog, gateway, providers, "2023-11-01/2023-11-30", priority=providers, full=True)
    item = stored(catalog)[PC_ID]
    assert list(item["assets"]["B04"]["alternate"]) == ["eu_mirror"]
    assert len(item["properties"]["snapearth:sources"]) == 2


def test_unknown_provider_or_collection_writes_nothing(catalog, replay, make_gateway):
    gateway = make_gateway("planetary_computer")
    with pytest.raises(InvalidInputError, match="unknown provider 'nope'") as caught:
        run(catalog, gateway, ["planetary_computer", "nope"], "2023-01-01/2023-02-01")
    assert caught.value.field == "provider"
    with pytest.raises(InvalidInputError, match="unknown collection 'sentinel-3-olci'") as caught:
        run(catalog, gateway, ["planetary_computer"], "2023-01-01/2023-02-01", collection="sentinel-3-olci")
    assert caught.value.field == "collection"
    assert catalog.list_collections() == []
    assert catalog.list_records(STATE_NAMESPACE) == []
    assert replay.log == []


def test_a_provider_without_the_collection_is_refused(catalog, make_gateway):
    gateway = make_gateway("planetary_computer")
    with pytest.raises(InvalidInputError, match="does not offer 'sentinel-2-l1c'"):
        run(catalog, gateway, ["planetary_computer"], "2023-01-01/2023-02-01", collection="sentinel-2-l1c")
    assert catalog.list_collections() == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}', "Self-intersection"),
        ('{"type": "Polygon", "coordinates": [[0, 0], [1, 1]]}', "malformed Polygon"),
        ('{"type": "Polygon", "coordinates": [[[500000, 0], [500100, 0], [500100, 100], [500000, 0]]]}', "longitude"),
        ('{"type": "Polygon"', "not valid JSON"),
        ("POLYGON ((0 0, 1 1", "neither GeoJSON nor WKT"),
    ],
)
def test_malformed_geometry_is_refused_with_the_reason(text, reason):
    with pytest.raises(InvalidInputError, match=reason) as caught:
        parse_geometry(text)
    assert caught.value.field == "intersects"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}).encode(),
        json.dumps(
            {"type": "FeatureCollection", "features": [{**stac_item(PC_ITEM), "geometry": None, "bbox": None}]}
        ).encode(),
        json.dumps(
            {"type": "FeatureCollection", "features": [{**stac_item(PC_ITEM), "geometry": UTM_SQUARE, "bbox": None}]}
        ).encode(),
        b'{"type": "FeatureCollection", "features": {"not": "a list"}}',
    ],
    ids=["html", "feature-without-anything", "feature-without-footprint", "footprint-in-metres", "features-not-a-list"],
)
def test_a_provider_answering_garbage_is_reported_and_nothing_is_written(catalog, replay, make_gateway, body):
    replay.route("/pc/api/stac/v1/search", lambda method, path, query, payload: (200, {}, body))
    report = run(catalog, make_gateway("planetary_computer"), ["planetary_computer"], "2023-11-01/2023-11-30")
    (provider,) = report.providers
    assert provider.status == "failed"
    assert provider.error_code == "ProviderError"
    assert provider.error.startswith("planetary_computer:")
    assert stored(catalog) == {}
    state = catalog.get_record(STATE_NAMESPACE, f"planetary_computer|{L2A}|{report.area}")
    assert state is None or state["covered"] == []


def test_missing_credentials_name_the_provider_and_the_variable(catalog, make_gateway):
    with pytest.raises(AuthenticationError) as caught:
        run(catalog, make_gateway("aws_eos"), ["aws_eos"], "2020-08-01/2020-08-31", collection="sentinel-2-l1c")
    message = caught.value.message
    assert "aws_eos" in message
    assert "EODAG__AWS_EOS__SEARCH_AUTH__CREDENTIALS__API_KEY" in message
    assert catalog.list_collections() == []


def test_credentials_from_eodag_environment_variables(catalog, replay, make_gateway, monkeypatch):
    monkeypatch.setenv("EODAG__AWS_EOS__SEARCH_AUTH__CREDENTIALS__API_KEY", "loopback-key")
    replay.route("/eos/sentinel2", replay.recorded("awseos_search.json"))
    gateway = make_gateway("aws_eos", extra={"aws_eos": {"search_auth": {"matching_url": replay.url}}})
    report = run(catalog, gateway, ["aws_eos"], "2020-08-01/2020-08-31", collection="sentinel-2-l1c")
    assert report.providers[0].status == "ok"
    assert len(stored(catalog, "sentinel-2-l1c")) == 2
    assert all("api_key=loopback-key" in path for path in replay.requests_to("/eos/"))


def test_a_refusal_for_credentials_is_reported_with_the_variable_and_not_retried(catalog, replay, make_gateway, sleeps):
    pc_pages(replay)
    replay.routes[-1].always_fail = Failure(status=401, body=b'{"detail": "Not authenticated"}')
    report = run(catalog, make_gateway("planetary_computer"), ["planetary_computer"], "2023-11-01/2023-11-30")
    (provider,) = report.providers
    assert provider.status == "failed"
    assert provider.error_code == "AuthenticationError"
    assert "EODAG__PLANETARY_COMPUTER__AUTH__CREDENTIALS__APIKEY" in provider.error
    assert sleeps == []
    assert len(replay.requests_to("/pc/")) == 1


@pytest.mark.pg
def test_harvest_and_merge_on_the_pgstac_backend(fresh_pg_url, replay, make_gateway):
    from snapearth.catalog import open_catalog

    pg = open_catalog(fresh_pg_url)
    try:
        pc_pages(replay)
        serve_mirror(replay)
        gateway = make_gateway("planetary_computer", "eu_mirror", extra=mirror_config(replay))
        providers = ["planetary_computer", "eu_mirror"]
        report = run(pg, gateway, providers, "2019-01-01/2024-01-01", priority=providers)
        assert [p.status for p in report.providers] == ["ok", "ok"]
        items = stored(pg)
        assert set(items) == {PC_ID, STACTOOLS_ID}
        assert list(items[PC_ID]["assets"]["B04"]["alternate"]) == ["eu_mirror"]
        again = run(pg, gateway, providers, "2019-01-01/2024-01-01", priority=providers)
        assert [p.status for p in again.providers] == ["up-to-date", "up-to-date"]
    finally:
        pg.close()


def test_the_last_day_is_asked_again_as_providers_publish_late(catalog, replay, make_gateway):
    recent = copy.deepcopy(stac_item(PC_ITEM))
    today = datetime.now(UTC).replace(microsecond=0)
    recent["properties"]["datetime"] = (today - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    replay.route("/pc/api/stac/v1/search", StacPages(replay, "/pc/api/stac/v1/search", [recent]))
    gateway = make_gateway("planetary_computer")
    first = run(catalog, gateway, ["planetary_computer"], f"{(today - timedelta(days=5)).date()}/..")
    assert first.providers[0].status == "ok"
    second = run(catalog, gateway, ["planetary_computer"], f"{(today - timedelta(days=5)).date()}/..")
    (asked,) = second.providers[0].windows
    assert parse_rfc3339(asked[0]) <= today - timedelta(days=1) + timedelta(minutes=5)
    assert parse_rfc3339(asked[0]) >= today - timedelta(days=1) - timedelta(minutes=5)
    assert len(stored(catalog)) == 1


def test_a_refused_connection_is_retried_then_reported(catalog, make_gateway, sleeps):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/search"
    gateway = make_gateway("planetary_computer", extra={"planetary_computer": {"search": {"api_endpoint": closed}}})
    report = run(catalog, gateway, ["planetary_computer"], "2023-11-01/2023-11-30")
    assert report.providers[0].status == "failed"
    assert "after 3 attempts" in report.providers[0].error
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_a_harvest_killed_after_a_page_resumes_from_its_checkpoint(catalog, replay, make_gateway):
    pc_pages(replay)
    gateway = make_gateway("planetary_computer", page_size=1)

    def interrupt(message: str) -> None:
        if "page 1," in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01", progress=interrupt)
    assert set(stored(catalog)) == {STACTOOLS_ID}
    resumed = run(catalog, gateway, ["planetary_computer"], "2019-01-01/2024-01-01")
    (window,) = resumed.providers[0].windows
    assert window[0].startswith("2019-02-12T19:26:51")  # not from the start again
    assert set(stored(catalog)) == {STACTOOLS_ID, PC_ID}
