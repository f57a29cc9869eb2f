"""What only the pgstac backend has to get right (the shared behaviour is in test_behaviour.py)."""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest

from snapearth.catalog import SearchRequest, SortKey, open_catalog
from snapearth.catalog.pgstac import PgSTACCatalog
from snapearth.errors import BackendError, InvalidInputError
from tests.catalog.items import S2_ITEM, collections, read
from tests.catalog.test_sqlite import _loader, kill_after_batches  # the embedded backend's kill -9 test's
from tests.pgserver import PgServer

pytestmark = pytest.mark.pg


@pytest.fixture
def catalog(fresh_pg_url: str) -> Any:
    opened = open_catalog(fresh_pg_url)
    assert isinstance(opened, PgSTACCatalog)
    for collection in collections():
        opened.create_collection(collection)
    yield opened
    opened.close()


def _copies(count: int, **properties: Any) -> list[dict[str, Any]]:
    base = read(S2_ITEM)
    items = []
    for n in range(count):
        item = copy.deepcopy(base)
        item["id"] = f"copy-{n:02d}"
        item["properties"].update({key: value(n) if callable(value) else value for key, value in properties.items()})
        items.append(item)
    return items


def test_number_matched_follows_writes(catalog: PgSTACCatalog) -> None:
    # pgstac caches counts per WHERE clause for a day; writes through the catalog must not leave them stale
    request = SearchRequest(collections=["sentinel-2-l2a"], limit=1)
    assert catalog.search(request).number_matched == 0
    catalog.add_items(_copies(3))
    assert catalog.search(request).number_matched == 3
    catalog.delete_item("sentinel-2-l2a", "copy-01")
    assert catalog.search(request).number_matched == 2


def test_numeric_properties_sort_as_numbers(catalog: PgSTACCatalog) -> None:
    # unknown to pgstac, a property sorts as text ("10" < "9"): the loader declares numeric ones as queryables
    catalog.add_items(_copies(12, **{"signature:water_fraction": lambda n: n * 0.1, "my:rank": lambda n: 12 - n}))
    for name, expected in (
        ("signature:water_fraction", [f"copy-{n:02d}" for n in range(12)]),
        ("my:rank", [f"copy-{n:02d}" for n in reversed(range(12))]),
    ):
        page = catalog.search(SearchRequest(sortby=[SortKey(field=name)], limit=12))
        assert [item["id"] for item in page.items] == expected
    with psycopg.connect(catalog.url) as conn:
        indexed = conn.execute("SELECT name FROM pgstac.queryables WHERE property_index_type = 'BTREE'").fetchall()
    assert {"eo:cloud_cover", "platform", "grid:code", "sat:relative_orbit"} <= {row[0] for row in indexed}


@pytest.mark.parametrize("token", ["garbage", "next:0000:0000", "next:zz:11", "sideways:61:62"])
def test_foreign_tokens_are_refused(catalog: PgSTACCatalog, token: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        catalog.search(SearchRequest(token=token))
    assert caught.value.field == "token"


def test_token_of_a_deleted_item_names_the_token(catalog: PgSTACCatalog) -> None:
    catalog.add_items(_copies(4))
    page = catalog.search(SearchRequest(limit=2))
    assert page.next_token
    for item in page.items:
        catalog.delete_item("sentinel-2-l2a", item["id"])
    with pytest.raises(InvalidInputError) as caught:
        catalog.search(SearchRequest(limit=2, token=page.next_token))
    assert caught.value.field == "token"


def test_duplicates_within_one_load(catalog: PgSTACCatalog) -> None:
    items = _copies(3)
    twice = [*items, copy.deepcopy(items[0])]
    twice[-1]["properties"]["eo:cloud_cover"] = 77.0
    report = catalog.add_items(twice, mode="insert")
    assert (report.inserted, [r.item_id for r in report.refused]) == (3, ["copy-00"])
    report = catalog.add_items(twice, mode="upsert")
    assert (report.inserted, report.updated) == (0, 3)
    assert catalog.get_item("sentinel-2-l2a", "copy-00")["properties"]["eo:cloud_cover"] == 77.0


def test_a_database_without_pgstac_is_refused(pg_server: PgServer) -> None:
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS plain")
        conn.execute("CREATE DATABASE plain")
    try:
        with pytest.raises(BackendError, match="pypgstac migrate"):
            PgSTACCatalog(pg_server.url.rsplit("/", 1)[0] + "/plain")
    finally:
        pg_server.drop_database("plain")


def test_a_lost_server_is_a_backend_error(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    catalog = PgSTACCatalog(url)
    pg_server.drop_database(url.rsplit("/", 1)[1])  # terminates the catalog's connections
    with pytest.raises(BackendError, match="failed"):
        catalog.list_collections()
    catalog.close()
    with pytest.raises(BackendError):
        PgSTACCatalog("postgresql://postgres@127.0.0.1:9/nowhere", connect_timeout=1)


def test_kill_9_mid_load_then_rerun_completes(fresh_pg_url: str) -> None:
    total = 1_500
    kill_after_batches(_loader(fresh_pg_url, total, "insert"))
    with psycopg.connect(fresh_pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()
    assert row is not None
    assert 150 <= row[0] < total
    assert row[0] % 50 == 0  # whole batches only

    rerun = _loader(fresh_pg_url, total, "ignore")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert out.strip().endswith("done")
    catalog = open_catalog(fresh_pg_url)
    assert catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=1)).number_matched == total
    catalog.close()
