"""What only the embedded backend promises: its file survives a kill -9, its SQL only takes parameters."""

from __future__ import annotations

import copy
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import shapely
import shapely.geometry

from snapearth.catalog import SearchRequest, SortKey, open_catalog
from snapearth.catalog.aggregation import geohash
from snapearth.catalog.base import Refusal
from snapearth.catalog.sqlite import _SECONDARY_INDEXES, SQLiteCatalog, path_from_url
from snapearth.errors import InvalidInputError
from tests.catalog.items import antimeridian_item, bbox_of, collections, event_item, generated_item, square

ROOT = Path(__file__).resolve().parents[2]

# A loader that runs until killed: batches of 50 items, each a transaction.
_LOADER = """
import sys
import orjson
from snapearth.catalog import open_catalog
from tests.catalog.items import collections, event_item, generated_item
catalog = open_catalog(sys.argv[1])
for collection in collections():
    catalog.create_collection(collection, exist_ok=True)
template = orjson.dumps(generated_item(0))
def items():
    for n in range(int(sys.argv[2])):
        item = orjson.loads(template)
        item["id"] = f"crash-{n:06d}"
        yield item
def progress(count):
    print("batch", flush=True)
catalog.add_items(items(), mode=sys.argv[3], batch_size=50, progress=progress)
print("done", flush=True)
"""


def _loader(url: str, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _LOADER, url, str(count), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _catalog(tmp_path: Path) -> SQLiteCatalog:
    """An empty embedded catalog at ``tmp_path/c.db`` holding the test collections."""
    catalog = SQLiteCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    for collection in collections():
        catalog.create_collection(collection)
    return catalog


def kill_after_batches(loader: subprocess.Popen[str], batches: int = 3) -> None:
    """Let ``batches`` batches of the loader commit, then kill -9 it in the middle of the load."""
    assert loader.stdout is not None
    seen = 0
    while seen < batches:
        line = loader.stdout.readline()
        assert line, "the loader ended early"
        seen += line.startswith("batch")
    loader.send_signal(signal.SIGKILL)
    loader.wait(timeout=30)
    loader.stdout.close()


def test_kill_9_mid_load_then_rerun_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    total = 3_000
    kill_after_batches(_loader(url, total, "insert"))

    raw = sqlite3.connect(tmp_path / "crash.db")
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    items, data, boxes = (
        raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "items_data", "items_rtree")
    )
    raw.close()
    assert 150 <= items < total
    assert items % 50 == 0  # whole batches only
    assert items == data
    assert boxes == 0  # a bulk load packs its R*Tree at the end: killed before, it left it to refresh_indexes

    rerun = _loader(url, total, "ignore")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert out.strip().endswith("done")
    catalog = open_catalog(url)
    assert isinstance(catalog, SQLiteCatalog)
    page = catalog.search(SearchRequest(ids=[f"crash-{n:06d}" for n in (0, total // 2, total - 1)], limit=10))
    assert page.number_matched == 3
    assert catalog.search(SearchRequest(collections=["sentinel-2-l2a"], limit=1)).number_matched == total
    # spatial searches are right before the R*Tree covers the items, and after
    everywhere = SearchRequest(bbox=[-180, -90, 180, 90], limit=1)
    assert catalog.search(everywhere).number_matched == total
    catalog.refresh_indexes()
    assert catalog.search(everywhere).number_matched == total
    raw = sqlite3.connect(tmp_path / "crash.db")
    assert raw.execute("SELECT count(DISTINCT item) FROM items_rtree").fetchone()[0] == total
    assert raw.execute("SELECT rtreecheck('items_rtree')").fetchone()[0] == "ok"
    raw.close()
    catalog.close()


def test_a_failing_batch_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = _catalog(tmp_path)
    catalog.add_items([generated_item(i) for i in range(3)])
    import snapearth.catalog.sqlite as backend

    # the last statement of a batch fails, after its items and documents rows went in: the batch goes back whole
    monkeypatch.setattr(backend, "_INSERT_BOX", "INSERT INTO no_such_table VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    with pytest.raises(sqlite3.OperationalError):
        catalog.add_items([generated_item(i) for i in range(3, 8)])
    monkeypatch.undo()
    assert catalog.search(SearchRequest(limit=100)).number_matched == 3
    raw = sqlite3.connect(tmp_path / "c.db")
    assert [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "items_data", "items_rtree")] == [
        3,
        3,
        3,
    ]
    raw.close()
    catalog.close()


def test_upsert_moves_the_spatial_index(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    item = generated_item(0)
    catalog.add_items([item])
    item["geometry"] = {"type": "Polygon", "coordinates": [[[50, 10], [51, 10], [51, 11], [50, 11], [50, 10]]]}
    assert catalog.add_items([item], mode="upsert").updated == 1
    assert catalog.search(SearchRequest(bbox=[2, 44, 3, 45])).number_matched == 0
    assert catalog.search(SearchRequest(bbox=[50.2, 10.2, 50.4, 10.4])).number_matched == 1
    catalog.close()


def test_property_names_never_reach_sql_text(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    catalog.add_items([generated_item(0)])
    for name in ['x") OR 1=1 --', "a'b", "x y", "$.x", "a..b", ""]:
        tree = {"op": "=", "args": [{"property": name}, 1]}
        with pytest.raises(InvalidInputError) as error:
            catalog.search(SearchRequest(filter=tree))
        assert error.value.field == "filter"
    with pytest.raises(InvalidInputError):
        catalog.search(SearchRequest(sortby=[SortKey(field="a'); DROP TABLE items; --")]))
    assert catalog.search(SearchRequest()).number_matched == 1
    catalog.close()


def test_shared_in_memory_catalog_and_urls(tmp_path: Path) -> None:
    assert path_from_url("sqlite:////abs/c.db") == "/abs/c.db"
    assert path_from_url("sqlite:///abs/c.db") == "/abs/c.db"
    assert path_from_url("sqlite://relative.db") == "relative.db"
    assert path_from_url("sqlite:///:memory:") == ":memory:"
    with pytest.raises(InvalidInputError):
        open_catalog("mysql://x")
    memory = open_catalog("sqlite:///:memory:")
    for collection in collections():
        memory.create_collection(collection)
    memory.add_items([generated_item(1)])
    import threading

    seen: list[int | None] = []
    thread = threading.Thread(target=lambda: seen.append(memory.search(SearchRequest()).number_matched))
    thread.start()
    thread.join()
    assert seen == [1]
    memory.close()


def test_geohash_grid_matches_point_geohashes(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    items = [generated_item(i) for i in range(12)]
    catalog.add_items(items)
    for precision in (1, 3, 5):
        result = catalog.aggregate(SearchRequest(), [f"geohash_frequency:{precision}"])
        buckets = {b["key"]: b["frequency"] for b in result["aggregations"][0]["buckets"]}
        expected: dict[str, int] = {}
        for item in items:
            west, south, east, north = item["bbox"]
            key = geohash((west + east) / 2, (south + north) / 2, precision)
            expected[key] = expected.get(key, 0) + 1
        assert buckets == expected
    assert geohash(-5.6, 42.6, 5) == "ezs42"  # the reference example of geohash.org
    catalog.close()


def test_three_hundred_pages_deep(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    template = orjson.dumps(generated_item(0))
    items = []
    for n in range(3_000):
        item = orjson.loads(template)
        item["id"] = f"deep-{n:05d}"
        item["properties"]["datetime"] = f"2023-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"  # many ties
        items.append(item)
    catalog.add_items(items, batch_size=1000)
    request = SearchRequest(limit=10, count=False, filter='"eo:cloud_cover" < 50')
    page = catalog.search(request)
    seen = [item["id"] for item in page.items]
    for _ in range(299):
        page = catalog.search(request.model_copy(update={"token": page.next_token}))
        seen.extend(item["id"] for item in page.items)
    assert page.next_token is None
    assert len(seen) == len(set(seen)) == 3_000
    dates = [catalog.get_item("sentinel-2-l2a", i)["properties"]["datetime"] for i in seen[::97]]
    assert dates == sorted(dates, reverse=True)
    catalog.close()


def test_free_text_q(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    event = event_item()
    event["properties"]["title"] = "Flood of the Garonne"
    event["properties"]["keywords"] = ["inondation", "Toulouse"]
    catalog.add_items([event, generated_item(0), generated_item(1)])
    assert {i["id"] for i in catalog.search(SearchRequest(q=["garonne"])).items} == {event["id"]}
    assert catalog.search(SearchRequest(q=["TOULOUSE,nothing"])).number_matched == 1
    assert catalog.search(SearchRequest(q=["s2-gen"])).number_matched == 2
    assert catalog.search(SearchRequest(q=["nothing"])).number_matched == 0
    with pytest.raises(InvalidInputError) as error:
        catalog.search(SearchRequest(q=[" , "]))
    assert error.value.field == "q"
    catalog.close()


RIVERS = ("Garonne", "Ebro", "Po", "Rhône", 'say "cheese"')


def _titled(index: int) -> dict[str, Any]:
    item = generated_item(index % 12)
    item["id"] = f"S2-TXT-{index:05d}"
    item["properties"]["title"] = f"Pass {index % 7} over the {RIVERS[index % len(RIVERS)]}"
    if index % 4 == 0:
        item["properties"]["keywords"] = ["flood", f"k{index % 10}"]
    return item


def _by_hand(items: list[dict[str, Any]], words: list[str]) -> set[str]:
    def text(item: dict[str, Any]) -> str:
        props = item["properties"]
        keywords = orjson.dumps(props["keywords"]).decode() if "keywords" in props else ""
        return "\n".join([item["id"], props.get("title", ""), keywords]).casefold()

    return {item["id"] for item in items if any(word.casefold() in text(item) for word in words)}


@pytest.mark.parametrize(
    "words",
    [
        ["garonne"],
        ["RHÔNE"],
        ["txt-0001"],
        ["pass 3 over the po"],
        ['"cheese"'],
        ["k7"],
        ["po"],
        ["ebro", "k3"],
        ["s2-txt"],
        ["nothing"],
    ],
)
def test_free_text_index_agrees_with_a_scan(tmp_path: Path, words: list[str]) -> None:
    """A bulk load leaves its items to refresh_indexes; before and after, q finds exactly what a scan finds."""
    catalog = _catalog(tmp_path)
    items = [_titled(i) for i in range(2_500)]
    catalog.add_items(items, batch_size=500)
    expected = _by_hand(items, words)

    def found() -> set[str]:
        page = catalog.search(SearchRequest(q=words, limit=10_000))
        assert page.number_matched == len(expected)
        return {item["id"] for item in page.items}

    raw = sqlite3.connect(tmp_path / "c.db")
    row = raw.execute("SELECT value FROM meta WHERE key = 'text_rowid'").fetchone()
    covered = int(row[0]) if row is not None else 0
    assert covered < 2_500  # a bulk load leaves its items to refresh_indexes
    assert found() == expected
    assert catalog.refresh_indexes() == 2_500 - covered
    assert catalog.refresh_indexes() == 0
    assert found() == expected
    raw.close()
    catalog.close()


def test_free_text_index_follows_upserts_and_deletes(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    items = [_titled(i) for i in range(20)]
    catalog.add_items(items)
    assert catalog.refresh_indexes() == 0  # small loads keep the index in step
    assert catalog.search(SearchRequest(q=["s2-txt-00003"])).number_matched == 1
    changed = items[3]
    changed["properties"]["title"] = "Lake Geneva"
    catalog.add_items([changed], mode="upsert")
    assert {i["id"] for i in catalog.search(SearchRequest(q=["geneva"])).items} == {changed["id"]}
    assert changed["id"] not in {i["id"] for i in catalog.search(SearchRequest(q=["pass 3"], limit=100)).items}
    catalog.delete_item(changed["collection"], changed["id"])
    assert catalog.search(SearchRequest(q=["geneva"])).number_matched == 0
    catalog.delete_collection(changed["collection"], force=True)
    assert catalog.search(SearchRequest(q=["pass"])).number_matched == 0
    raw = sqlite3.connect(tmp_path / "c.db")
    assert raw.execute("SELECT count(*) FROM items_text").fetchone()[0] == 0
    raw.close()
    catalog.close()


def test_large_ndjson_is_parsed_by_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from snapearth.catalog import load

    monkeypatch.setattr(load, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(load, "_CHUNK_BYTES", 40_000)  # a few items per chunk: many chunks, ordered results
    catalog = _catalog(tmp_path)
    template = orjson.dumps(generated_item(0))
    lines = []
    for n in range(40):
        item = orjson.loads(template)
        item["id"] = f"par-{n:03d}"
        lines.append(orjson.dumps(item))
    lines[17] = b'{"id": "broken'
    bad = orjson.loads(template)
    bad["id"] = "no-geometry"
    del bad["geometry"]
    lines.append(orjson.dumps(bad))
    lines.append(lines[0])  # the same item twice: refused in insert mode
    path = tmp_path / "items.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert load._loader_workers(catalog, path) >= 1 or (os.cpu_count() or 1) < 2
    handled: list[int] = []
    report = load.load_paths(catalog, [path], mode="insert", batch_size=7, progress=handled.append)
    assert report.inserted == 39
    assert sum(handled) == 42
    assert sorted(((r.item_id, r.field) for r in report.refused), key=str) == [
        ("no-geometry", "geometry"),
        ("par-000", "id"),
        (None, "item"),
    ]
    assert catalog.search(SearchRequest(collections=["sentinel-2-l2a"])).number_matched == 39
    catalog.close()


def test_cql2_beyond_pgstac(tmp_path: Path) -> None:
    """Operators pgstac does not implement (a_containedby, accenti, arithmetic) work on the embedded backend."""
    catalog = _catalog(tmp_path)
    items = [generated_item(i) for i in range(6)]
    items[4]["properties"]["title"] = "Crue de la Garonne à Toulouse"
    catalog.add_items(items)

    def ids(tree: dict) -> set[str]:
        return {i["id"] for i in catalog.iter_items(SearchRequest(filter=tree, limit=100))}

    contained = {"op": "a_containedby", "args": [{"property": "signature:themes"}, ["forest", "snow"]]}
    assert ids(contained) == {"S2-GEN-01", "S2-GEN-02", "S2-GEN-04", "S2-GEN-05"}
    accent = {"op": "like", "args": [{"op": "accenti", "args": [{"property": "title"}]}, "%Garonne a Toulouse"]}
    assert ids(accent) == {"S2-GEN-04"}
    arithmetic = {"op": ">", "args": [{"op": "*", "args": [{"property": "eo:cloud_cover"}, 2]}, 70]}
    assert ids(arithmetic) == {"S2-GEN-05"}  # 8 * 5 = 40 -> 80 > 70
    catalog.close()


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE collections (id TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE items (
    rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, datetime REAL NOT NULL,
    start_datetime REAL NOT NULL, end_datetime REAL NOT NULL, cloud_cover REAL, platform, grid_code, relative_orbit,
    minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL
);
CREATE TABLE items_data (
    rowid INTEGER PRIMARY KEY, properties TEXT NOT NULL, geometry BLOB NOT NULL, body BLOB NOT NULL
);
CREATE UNIQUE INDEX items_collection_id ON items (collection, id);
CREATE VIRTUAL TABLE items_rtree USING rtree (id, minx, maxx, miny, maxy, mint, maxt, +item INTEGER);
CREATE TABLE collection_counts (collection TEXT PRIMARY KEY, items INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', '1');
"""


def test_a_schema_1_catalog_is_migrated_when_opened(tmp_path: Path) -> None:
    """Catalogs written before properties moved beside the columns open, answer and keep every item whole."""
    from snapearth.catalog.sqlite_prepare import compress, prepare_item

    raw = sqlite3.connect(tmp_path / "c.db")
    raw.executescript(SCHEMA_1)
    items = [generated_item(i) for i in range(5)]
    for collection in collections():
        raw.execute("INSERT INTO collections VALUES (?, ?)", (collection["id"], orjson.dumps(collection).decode()))
    for rowid, item in enumerate(items, start=1):
        prepared = prepare_item(item)
        assert not isinstance(prepared, Refusal)
        rest = {k: v for k, v in item.items() if k not in ("properties", "geometry")}
        raw.execute(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rowid, *prepared[:13]),
        )
        raw.execute(
            "INSERT INTO items_data VALUES (?, ?, ?, ?)",
            (rowid, prepared.properties, prepared.geometry, compress(orjson.dumps(rest))),
        )
        west, south, east, north = prepared.boxes[0]
        raw.execute(
            "INSERT INTO items_rtree VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rowid, west, east, south, north, prepared.start, prepared.end, rowid),
        )
    raw.execute("INSERT INTO collection_counts VALUES ('sentinel-2-l2a', 5)")
    raw.commit()
    raw.close()

    catalog = SQLiteCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    assert catalog.get_item("sentinel-2-l2a", items[2]["id"]) == items[2]
    threshold = items[3]["properties"]["eo:cloud_cover"]
    page = catalog.search(SearchRequest(filter=f"eo:cloud_cover >= {threshold}", limit=10))
    assert {i["id"] for i in page.items} == {i["id"] for i in items if i["properties"]["eo:cloud_cover"] >= threshold}
    assert catalog.search(SearchRequest(q=[items[4]["id"].lower()])).number_matched == 1
    catalog.close()
    raw = sqlite3.connect(tmp_path / "c.db")
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert "properties" not in [column[1] for column in raw.execute("PRAGMA table_info(items_data)")]
    raw.close()


@pytest.mark.parametrize("colliding", [False, True])
@pytest.mark.parametrize("mode", ["insert", "ignore", "upsert"])
def test_a_bulk_load_without_its_unique_index_still_knows_its_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, colliding: bool
) -> None:
    """A bulk load drops the (collection, id) index and remembers its keys: duplicates across batches are still
    refused, skipped or replaced, even when every key hashes alike, and the index is back at the end."""
    import snapearth.catalog.sqlite as backend

    if colliding:
        monkeypatch.setattr(backend, "hash", lambda key: 7, raising=False)
    catalog = _catalog(tmp_path)
    items = [_titled(i) for i in range(250)]
    again = copy.deepcopy(items[10])
    again["properties"]["title"] = "second copy"
    report = catalog.add_items([*items, again, copy.deepcopy(items[200])], mode=mode, batch_size=100)  # type: ignore[arg-type]
    expected = {"insert": (250, 0, 0, 2), "ignore": (250, 0, 2, 0), "upsert": (250, 2, 0, 0)}[mode]
    assert (report.inserted, report.updated, report.skipped, len(report.refused)) == expected
    title = catalog.get_item(again["collection"], again["id"])["properties"]["title"]
    assert title == ("second copy" if mode == "upsert" else items[10]["properties"]["title"])
    assert catalog.search(SearchRequest(limit=1)).number_matched == 250
    raw = sqlite3.connect(tmp_path / "c.db")
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'items_collection_id'").fetchone()[0] == 1
    raw.close()
    catalog.close()


def _scattered(count: int) -> list[dict[str, Any]]:
    """Items all over the world, of many sizes; every 25th straddles the antimeridian (two boxes)."""
    rng = random.Random(3)
    items = []
    for index in range(count):
        item = generated_item(index % 12)
        item["id"] = f"S2-WORLD-{index:04d}"
        if index % 25 == 0:
            item["geometry"] = antimeridian_item()["geometry"]
        else:
            item["geometry"] = square(rng.uniform(-175, 170), rng.uniform(-70, 65), rng.uniform(0.1, 4))
        item["bbox"] = bbox_of(item["geometry"])
        items.append(item)
    return items


def _meeting(items: list[dict[str, Any]], bbox: list[float]) -> set[str]:
    west, south, east, north = bbox
    parts = [(west, south, east, north)] if west <= east else [(west, south, 180, north), (-180, south, east, north)]
    area = shapely.union_all([shapely.box(*part) for part in parts])
    return {item["id"] for item in items if shapely.geometry.shape(item["geometry"]).intersects(area)}


def test_a_bulk_load_packs_its_rtree(tmp_path: Path) -> None:
    """The R*Tree of a bulk load is packed at its end: SQLite's own check passes, spatial searches match a brute
    force, an item given twice is where its last copy says, and a second bulk load after emptying the catalog
    (rowids come back) indexes everything again."""
    catalog = _catalog(tmp_path)
    items = _scattered(400)
    moved = copy.deepcopy(items[5])
    moved["geometry"] = square(100.0, 10.0)
    moved["bbox"] = bbox_of(moved["geometry"])
    report = catalog.add_items([*items, moved], mode="upsert", batch_size=100)
    assert (report.inserted, report.updated) == (400, 1)
    catalog.refresh_indexes()  # the text index covers the 400 rowids, which come back after the catalog is emptied
    items[5] = moved
    raw = sqlite3.connect(tmp_path / "c.db")
    assert raw.execute("SELECT rtreecheck('items_rtree')").fetchone()[0] == "ok"
    assert raw.execute("SELECT count(DISTINCT item) FROM items_rtree").fetchone()[0] == 400
    assert raw.execute("SELECT count(*) FROM items_rtree").fetchone()[0] == 400 + 16  # 16 items with two boxes
    assert raw.execute("SELECT value FROM meta WHERE key = 'rtree_rowid'").fetchone()[0] == "400"
    indexes = {
        row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'")
    }
    assert indexes >= {*_SECONDARY_INDEXES, "items_collection_id"}  # kept in step or built at the end
    raw.close()
    rng = random.Random(5)
    queries = [[170.0, -30.0, -170.0, 30.0], [99.5, 9.5, 100.5, 10.5]]
    for _ in range(30):
        x, y = rng.uniform(-180, 140), rng.uniform(-80, 60)
        queries.append([x, y, x + rng.uniform(1, 40), y + rng.uniform(1, 20)])
    for bbox in queries:
        found = catalog.search(SearchRequest(bbox=bbox, limit=1000))
        assert {item["id"] for item in found.items} == _meeting(items, bbox), bbox

    catalog.delete_collection("sentinel-2-l2a", force=True)
    catalog.create_collection(next(c for c in collections() if c["id"] == "sentinel-2-l2a"))
    catalog.add_items(items[:150], batch_size=50)
    catalog.refresh_indexes()
    for bbox in queries[:10]:
        found = catalog.search(SearchRequest(bbox=bbox, limit=1000))
        assert {item["id"] for item in found.items} == _meeting(items[:150], bbox), bbox
    assert catalog.search(SearchRequest(q=["WORLD-0149"], limit=5)).number_matched == 1
    catalog.close()


def test_searches_and_refresh_with_items_the_rtree_does_not_cover(tmp_path: Path) -> None:
    """Items after the R*Tree's watermark (an interrupted load) are found by spatial searches and CQL2 spatial
    filters; ``refresh_indexes`` inserts them into the R*Tree it already has."""
    catalog = _catalog(tmp_path)
    items = _scattered(60)
    catalog.add_items(items)
    raw = sqlite3.connect(tmp_path / "c.db")
    with raw:
        raw.execute("DELETE FROM items_rtree WHERE item > 20")
        raw.execute("UPDATE meta SET value = '20' WHERE key = 'rtree_rowid'")
    bbox = [-180.0, -90.0, 0.0, 90.0]
    expected = _meeting(items, bbox)
    assert {i["id"] for i in catalog.search(SearchRequest(bbox=bbox, limit=100)).items} == expected
    spatial = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": bbox}]}
    found = catalog.search(SearchRequest(filter=spatial, filter_lang="cql2-json", limit=100))
    assert {i["id"] for i in found.items} == expected
    catalog.refresh_indexes()
    assert raw.execute("SELECT value FROM meta WHERE key = 'rtree_rowid'").fetchone()[0] == "60"
    assert raw.execute("SELECT count(DISTINCT item) FROM items_rtree").fetchone()[0] == 60
    assert raw.execute("SELECT rtreecheck('items_rtree')").fetchone()[0] == "ok"
    assert {i["id"] for i in catalog.search(SearchRequest(bbox=bbox, limit=100)).items} == expected
    raw.close()
    catalog.close()
