"""The embedded catalog: one SQLite file (stdlib), WAL, an R*Tree over space and time, keyset paging.

Layout (schema 2): ``items`` keeps the searchable fields as columns (indexed datetime, collection, cloud cover,
platform, grid code, orbit) and, beside them, the properties as JSON text, so a filter on any property reads one
row; ``items_data`` holds the geometry (JSON, for exact spatial tests) and the whole item (JSON, LZ4) that searches
return. ``items_rtree`` holds one or two boxes per item (two when a footprint straddles the antimeridian) in
(lon, lat, time); a spatial search asks the R*Tree first, then tests the exact geometry. ``items_text`` is a
trigram FTS5 index of the free text (``q``). Writes go in one transaction per batch: a batch is in the file whole
or not at all. A bulk load into an empty file writes with a rollback journal, packs the R*Tree and builds the
secondary indexes once at its end, and leaves the free-text index to ``refresh_indexes``. Two watermarks in
``meta`` (``rtree_rowid``, ``text_rowid``) say which items the R*Tree and the text index cover; searches test the
items after them directly, so results are right at every moment, and ``refresh_indexes`` catches up.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import h3
import numpy as np
import orjson
import shapely

from snapearth.catalog import sqlite_rtree
from snapearth.catalog.aggregation import (
    AggregationSpec,
    frequency_result,
    geohash,
    parse_aggregations,
    value_result,
)
from snapearth.catalog.base import (
    Collection,
    Item,
    LoadMode,
    LoadReport,
    ProgressCallback,
    Refusal,
    SearchPage,
    SearchRequest,
    parse_rfc3339,
)
from snapearth.catalog.geometry import Box, checked_boxes
from snapearth.catalog.search_params import (
    ParsedSearch,
    apply_fields,
    decode_token,
    encode_token,
    parse_search,
)
from snapearth.catalog.sqlite_cql2 import NOT_NULL_COLUMNS, CQL2Compiler, SqlExpr, property_expr
from snapearth.catalog.sqlite_prepare import (
    AFTER,
    BEFORE,
    BODY,
    BOXES,
    COLUMNS,
    END,
    GEOMETRY,
    PROPERTIES,
    START,
    Prepared,
    compress,
    item_from_body,
    item_from_row,
    prepare_item,
)
from snapearth.catalog.validate import check_collection
from snapearth.errors import BackendError, ConflictError, InvalidInputError, NotFoundError

SCHEMA_VERSION = 2
_TOKEN_VERSION = "s1"
# A spatial filter smaller than this (square degrees) drives the query from the R*Tree.
_RTREE_DRIVES_BELOW = 400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections (id TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    rowid INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    datetime REAL NOT NULL,
    start_datetime REAL NOT NULL,
    end_datetime REAL NOT NULL,
    cloud_cover REAL,
    platform,
    grid_code,
    relative_orbit,
    minx REAL NOT NULL,
    miny REAL NOT NULL,
    maxx REAL NOT NULL,
    maxy REAL NOT NULL,
    properties TEXT NOT NULL  -- JSON, what property filters read: beside the columns, no second lookup
);
CREATE TABLE IF NOT EXISTS items_data (
    rowid INTEGER PRIMARY KEY,
    geometry BLOB NOT NULL,  -- JSON, for exact spatial tests
    body BLOB NOT NULL  -- the whole item, JSON, LZ4
);
{unique};
{secondary}
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree (id, minx, maxx, miny, maxy, mint, maxt, +item INTEGER);
-- kept in step with items in the same transactions: numberMatched of a whole collection without counting
CREATE TABLE IF NOT EXISTS collection_counts (collection TEXT PRIMARY KEY, items INTEGER NOT NULL) WITHOUT ROWID;
-- free text (q): id, title, description, keywords, case-folded, as trigrams (substring search); it covers the items
-- up to meta 'text_rowid' (bulk loads leave the rest to ``refresh_indexes``; searches scan what is not covered yet)
CREATE VIRTUAL TABLE IF NOT EXISTS items_text USING fts5(text, tokenize = 'trigram');
CREATE TABLE IF NOT EXISTS records (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"""

# Search indexes of ``items``; opening a catalog creates any that are missing. No index on platform: two or three
# values, half the catalog each, the planner never takes it (the column still filters). A bulk load into an empty
# catalog builds the ones whose keys come in no order once at its end, sorted (each row would otherwise dirty a
# random page of them); those whose keys follow an archive's acquisition stream (time; runs of one orbit) it keeps
# in step, appending costing less than sorting at the end.
_SECONDARY_INDEXES = {
    "items_datetime": "datetime",
    "items_collection_datetime": "collection, datetime",
    "items_cloud_cover": "cloud_cover",
    "items_grid_code": "grid_code",
    "items_relative_orbit": "relative_orbit",
}
_CREATE_SECONDARY = [f"CREATE INDEX IF NOT EXISTS {name} ON items ({on})" for name, on in _SECONDARY_INDEXES.items()]
_BUILT_AFTER_BULK_LOADS = ("items_cloud_cover", "items_grid_code", "items_collection_id")
# helper threads of SQLite's sorter while a bulk load builds its indexes (the loader's workers are done by then)
_SORTER_THREADS = max(0, min(4, (os.cpu_count() or 1) - 1))
_CREATE_UNIQUE = "CREATE UNIQUE INDEX IF NOT EXISTS items_collection_id ON items (collection, id)"
_SCHEMA = _SCHEMA.format(unique=_CREATE_UNIQUE, secondary="\n".join(f"{statement};" for statement in _CREATE_SECONDARY))

_INSERT_ITEM = (
    "INSERT INTO items (rowid, collection, id, datetime, start_datetime, end_datetime, cloud_cover, platform,"
    " grid_code, relative_orbit, minx, miny, maxx, maxy, properties)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_ITEM = (
    "UPDATE items SET datetime = ?, start_datetime = ?, end_datetime = ?, cloud_cover = ?, platform = ?,"
    " grid_code = ?, relative_orbit = ?, minx = ?, miny = ?, maxx = ?, maxy = ?, properties = ? WHERE rowid = ?"
)
_UPSERT_DATA = "INSERT OR REPLACE INTO items_data (rowid, geometry, body) VALUES (?, ?, ?)"
_INSERT_BOX = "INSERT INTO items_rtree (id, minx, maxx, miny, maxy, mint, maxt, item) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


# The searchable text of an item: its fields separated by a character no search word holds (words are stripped).
_TEXT_FIELDS = ("title", "description", "keywords")
_TEXT_EXPR = (
    "se_casei(CASE WHEN "
    + " OR ".join(f"instr(i.properties, '\"{name}\"')" for name in _TEXT_FIELDS)
    + " THEN i.id || char(10) || "
    + " || char(10) || ".join(f"coalesce(json_extract(i.properties, '$.{name}'), '')" for name in _TEXT_FIELDS)
    + " ELSE i.id END)"
)  # (parsing the properties only when they can hold one of the fields: most Sentinel items have none)
_INDEX_TEXT = (
    f"INSERT INTO items_text (rowid, text) SELECT i.rowid, {_TEXT_EXPR} FROM items AS i"
    " WHERE i.rowid > ? AND i.rowid <= ?"
)
# the scanned share of a free-text search: a subquery whose ``i`` shadows the outer query's
_TEXT_SCAN = "SELECT i.rowid FROM items AS i"
_RARE_MATCHES = 2_000  # fewer index matches than this: the search is driven from the index
_SHORTEST_TRIGRAM_WORD = 3
_TEXT_CHUNK = 50_000


def path_from_url(url: str) -> str:
    """``sqlite:///abs/path.db`` (also ``sqlite:////abs``), ``sqlite://relative.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite://"):
        raise InvalidInputError(f"catalog: {url!r} is not a sqlite:// URL", field="catalog")
    path = url[len("sqlite://") :]
    while path.startswith("//"):
        path = path[1:]
    if path in ("/:memory:", ":memory:", ""):
        return ":memory:"
    return path


# --- SQL functions (registered on every connection) -------------------------------------------------------------

_RELATIONS = {  # item <relation> query  ==  prepared-query <function> item
    "intersects": shapely.intersects,
    "equals": shapely.equals,
    "disjoint": shapely.disjoint,
    "touches": shapely.touches,
    "overlaps": shapely.overlaps,
    "crosses": shapely.crosses,
    "within": shapely.contains,
    "contains": shapely.within,
}


@lru_cache(maxsize=128)
def _prepared(wkb: bytes) -> shapely.Geometry:
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def _se_geom(geometry_json: bytes | None, query_wkb: bytes, relation: str) -> int | None:
    if geometry_json is None:
        return None
    try:
        return int(bool(_RELATIONS[relation](_prepared(query_wkb), shapely.from_geojson(geometry_json))))
    except shapely.errors.GEOSException:  # a stored footprint GEOS cannot relate (e.g. self-intersecting): unknown
        return None


def _se_epoch(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return parse_rfc3339(value).timestamp()
        except ValueError:
            return None
    return None


def _se_casei(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _se_accenti(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


# Searches read pages through a memory map (no read() call and copy per page): as much of the file as the library
# allows (2 GB in Debian's build). A bulk load maps less: mapped pages it touches count in its resident memory.
_MMAP_BYTES = 16 * 2**30
_LOAD_MMAP_BYTES = 256 * 2**20


def _connect(path: str, uri: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, uri=uri, isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA busy_timeout = 60000")
    # 16 KiB pages for a new file (no effect on an existing one): three items' documents (~5 KB each) to a page,
    # and a load writes a quarter of the WAL frames it would with 4 KiB pages
    conn.execute("PRAGMA page_size = 16384")
    if not uri:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA wal_autocheckpoint = {2**26 // page_size}")  # checkpoint every 64 MiB of WAL, not every batch
    conn.create_function("se_geom", 3, _se_geom, deterministic=True)
    conn.create_function("se_epoch", 1, _se_epoch, deterministic=True)
    conn.create_function("se_casei", 1, _se_casei, deterministic=True)
    conn.create_function("se_accenti", 1, _se_accenti, deterministic=True)
    return conn


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


class SQLiteCatalog:
    """The embedded STAC catalog; safe to share between threads (one connection per thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._uri = False
        self._keepalive: sqlite3.Connection | None = None
        if self.path == ":memory:":
            # one shared in-memory database for every thread of this catalog
            self.path = f"file:snapearth-{id(self)}?mode=memory&cache=shared"
            self._uri = True
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._plans: dict[str, bool] = {}  # query text -> whether its plan sorts every match
        # during a bulk load (no unique index; new items wait for ``refresh_indexes``): hash of (collection, id)
        # -> rowid(s) of the items it wrote
        self._bulk_keys: dict[int, int | list[int]] | None = None
        # during a bulk load: the boxes of the items it committed (``_INSERT_BOX`` parameter rows), packed at the end
        self._bulk_boxes: list[np.ndarray] | None = None
        conn = self._conn()
        if self._uri:
            self._keepalive = conn
        try:
            self._migrate(conn)
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            # catalogs written before the R*Tree had a watermark: their R*Tree covers every item
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) SELECT 'rtree_rowid', coalesce(max(rowid), 0) FROM items"
            )
        except sqlite3.DatabaseError as exc:
            raise BackendError(f"catalog: cannot open {self.path}: {exc}", field="catalog") from exc

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Schema 1 -> 2: properties move from ``items_data`` to ``items`` (beside the columns that filters read),
        and bodies become the whole item. One transaction: an interrupted migration leaves schema 1 as it was."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            return  # a new file
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"catalog: {conn.execute('PRAGMA database_list').fetchone()[2]} has schema {version}, newer than this"
                f" SnapEarth ({SCHEMA_VERSION}): upgrade SnapEarth",
                field="catalog",
            )
        if version != 1:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("ALTER TABLE items ADD COLUMN properties TEXT NOT NULL DEFAULT '{}'")
            conn.execute(
                "UPDATE items SET properties = (SELECT properties FROM items_data AS d WHERE d.rowid = items.rowid)"
            )
            rows = conn.execute(
                "SELECT d.rowid, d.body, i.properties, d.geometry"
                " FROM items_data AS d JOIN items AS i ON i.rowid = d.rowid"
            )
            bodies = [
                (compress(orjson.dumps(item_from_row(body, properties, geometry))), rowid)
                for rowid, body, properties, geometry in rows
            ]
            conn.executemany("UPDATE items_data SET body = ? WHERE rowid = ?", bodies)
            conn.execute("ALTER TABLE items_data DROP COLUMN properties")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # connections ----------------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._uri)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> SQLiteCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn())

    # collections ----------------------------------------------------------------------------------------------
    def create_collection(self, collection: Collection, *, exist_ok: bool = False) -> None:
        check_collection(collection)
        with self._transaction() as conn:
            exists = conn.execute("SELECT 1 FROM collections WHERE id = ?", (collection["id"],)).fetchone()
            if exists:
                if exist_ok:
                    return
                raise ConflictError(f"collection {collection['id']!r} already exists", field="id")
            conn.execute(
                "INSERT INTO collections (id, content) VALUES (?, ?)",
                (collection["id"], orjson.dumps(collection).decode()),
            )

    def update_collection(self, collection: Collection) -> None:
        check_collection(collection)
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE collections SET content = ? WHERE id = ?", (orjson.dumps(collection).decode(), collection["id"])
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"collection {collection['id']!r} does not exist", field="collection")

    def get_collection(self, collection_id: str) -> Collection:
        row = self._conn().execute("SELECT content FROM collections WHERE id = ?", (collection_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist", field="collection")
        result: Collection = orjson.loads(row[0])
        return result

    def list_collections(self) -> list[Collection]:
        rows = self._conn().execute("SELECT content FROM collections ORDER BY id").fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def delete_collection(self, collection_id: str, *, force: bool = False) -> None:
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM collections WHERE id = ?", (collection_id,)).fetchone() is None:
                raise NotFoundError(f"collection {collection_id!r} does not exist", field="collection")
            count = conn.execute("SELECT count(*) FROM items WHERE collection = ?", (collection_id,)).fetchone()[0]
            if count and not force:
                raise ConflictError(
                    f"collection {collection_id!r} holds {count} items: delete them first or force", field="collection"
                )
            conn.execute(
                "DELETE FROM items_rtree WHERE id IN (SELECT rowid FROM items WHERE collection = ?)"
                " OR id IN (SELECT -rowid FROM items WHERE collection = ?)",
                (collection_id, collection_id),
            )
            for table in ("items_data", "items_text"):
                conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM items WHERE collection = ?)",
                    (collection_id,),
                )
            conn.execute("DELETE FROM items WHERE collection = ?", (collection_id,))
            conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
            conn.execute("DELETE FROM collection_counts WHERE collection = ?", (collection_id,))

    # items ----------------------------------------------------------------------------------------------------
    def add_items(
        self,
        items: Iterable[Item],
        *,
        mode: LoadMode = "insert",
        batch_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        return self.add_prepared(
            (prepare_item(item) for item in items), mode=mode, batch_size=batch_size, progress=progress
        )

    def add_prepared(
        self,
        records: Iterable[Prepared | tuple[Any, ...] | Refusal],
        *,
        mode: LoadMode = "insert",
        batch_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """``add_items`` for items already checked and serialised (``prepare_item``, possibly in other processes)."""
        if mode not in ("insert", "upsert", "ignore"):
            raise InvalidInputError(f"mode: {mode!r} is not one of insert, upsert, ignore", field="mode")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size: {batch_size} must be at least 1", field="batch_size")
        report = LoadReport()
        known = {row[0] for row in self._conn().execute("SELECT id FROM collections")}
        batch: list[tuple[Any, ...]] = []
        handled = 0
        # a load into an empty catalog that fills a whole batch is a bulk load: index once at the end
        bulk = self._conn().execute("SELECT 1 FROM items LIMIT 1").fetchone() is None
        deferred = journaled = False
        self._conn().execute(f"PRAGMA mmap_size = {_LOAD_MMAP_BYTES}")
        try:
            # records are acyclic: the cyclic collector would only walk the batches in flight, again and again
            with _collector_paused():
                for record in records:
                    handled += 1
                    if isinstance(record, Refusal):
                        report.refused.append(record)
                        continue
                    if record[0] not in known:  # a streamed static catalog creates its collections as it goes
                        known = {row[0] for row in self._conn().execute("SELECT id FROM collections")}
                    if record[0] not in known:
                        reason = f"collection {record[0]!r} does not exist: create it first"
                        report.refused.append(Refusal(record[1], "collection", reason))
                        continue
                    batch.append(record)
                    if len(batch) >= batch_size:
                        if bulk:  # decided once, at the first full batch
                            bulk = False
                            deferred = self._drop_secondary_indexes()
                            journaled = deferred and self._rollback_journal()
                        self._write_batch(batch, mode, report)
                        batch = []
                        if progress:
                            progress(handled)
                        handled = 0
            if batch:
                self._write_batch(batch, mode, report)
            if deferred:
                deferred = False
                self._finish_bulk()
            if report.inserted >= 1000:  # the planner's statistics of items' indexes, sampled (not the documents)
                self._conn().executescript("PRAGMA analysis_limit = 1000; ANALYZE items;")
                self._plans.clear()
        finally:
            if deferred:  # a failed load leaves a catalog as searchable as before
                self._finish_bulk()
            if journaled:
                self._conn().execute("PRAGMA journal_mode = WAL")
            self._conn().execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        if progress and handled:
            progress(handled)
        return report

    def _drop_secondary_indexes(self) -> bool:
        """Drop the indexes whose keys come in no order while the catalog is still empty (a crash leaves them to
        the next open).

        The unique (collection, id) index goes too: the load keeps the keys it wrote in memory instead
        (``_bulk_keys``), the only items the catalog holds until the index is built again, once, sorted, at the
        end."""
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None:
                return False
            for name in _BUILT_AFTER_BULK_LOADS:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            # no item: the free-text index and the R*Tree cover nothing (rowids of deleted items come back)
            _set_watermark(conn, _TEXT, 0)
            _set_watermark(conn, _BOXES, 0)
        self._bulk_keys = {}
        self._bulk_boxes = []
        return True

    def _rollback_journal(self) -> bool:
        """A bulk load into an empty file writes its pages once with a rollback journal (WAL writes them twice: to
        the log, then to the file at checkpoints; appended pages need no journal). Only when no other connection
        has the file open; crash safety is the same (a hot journal is rolled back at the next open)."""
        if self._uri:
            return False
        conn = self._conn()
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            return str(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower() == "delete"
        except sqlite3.OperationalError:  # another connection is using the file
            return False
        finally:
            conn.execute("PRAGMA busy_timeout = 60000")

    def _finish_bulk(self) -> None:
        """The end of a bulk load (or of a failed one): the secondary indexes, and the R*Tree of what it committed,
        packed in a thread while SQLite sorts the indexes (both release the GIL)."""
        stored, self._bulk_boxes = self._bulk_boxes, None
        if not stored:
            self._create_secondary_indexes()
            return
        boxes = np.concatenate(stored)
        del stored
        node_bytes = sqlite_rtree.node_size(self._conn(), "items_rtree")
        with ThreadPoolExecutor(max_workers=1) as pool:
            packing = pool.submit(_pack_boxes, boxes, node_bytes)
            self._create_secondary_indexes()
            tree = packing.result()
        items = np.unique(boxes[:, 7])
        with self._transaction() as conn:
            if _watermark(conn, _BOXES) != 0 or items[-1] != items.size:
                return  # another connection wrote items meanwhile: ``refresh_indexes`` indexes them all
            sqlite_rtree.write(conn, "items_rtree", tree)
            _set_watermark(conn, _BOXES, int(items[-1]))

    def _create_secondary_indexes(self) -> None:
        conn = self._conn()
        conn.execute(f"PRAGMA threads = {_SORTER_THREADS}")  # the sorter merges in helper threads
        try:
            with self._transaction() as conn:
                conn.execute(_CREATE_UNIQUE)
                for statement in _CREATE_SECONDARY:
                    conn.execute(statement)
        finally:
            conn.execute("PRAGMA threads = 0")
        self._bulk_keys = None

    def _write_batch(self, batch: list[tuple[Any, ...]], mode: LoadMode, report: LoadReport) -> None:
        """Write prepared items (``Prepared`` fields, by position) in one transaction."""
        rows: list[tuple[Any, ...]] = []
        data: list[tuple[Any, ...]] = []
        boxes: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        stale_boxes: list[tuple[int]] = []
        inserted = updated = skipped = 0
        refused: list[Refusal] = []
        max_before = max_after = 0.0
        if mode == "upsert":  # an item given twice in one batch: its last copy replaces the first
            last = {(checked[0], checked[1]): index for index, checked in enumerate(batch)}
            if len(last) < len(batch):
                updated += len(batch) - len(last)
                batch = [item for index, item in enumerate(batch) if last[(item[0], item[1])] == index]
        with self._transaction() as conn:
            existing = self._existing_rowids(conn, batch)
            next_rowid = (conn.execute("SELECT max(rowid) FROM items").fetchone()[0] or 0) + 1
            boxed = _watermark(conn, _BOXES)  # the R*Tree covers the items up to this rowid
            pending: dict[tuple[str, str], int] = {}
            for checked in batch:
                key = (checked[0], checked[1])
                rowid = existing.get(key) or pending.get(key)
                if rowid is not None and mode != "upsert":
                    if mode == "ignore":
                        skipped += 1
                    else:
                        reason = f"already in collection {checked[0]!r} (use upsert or ignore)"
                        refused.append(Refusal(checked[1], "id", reason))
                    continue
                max_before = max(max_before, checked[BEFORE])
                max_after = max(max_after, checked[AFTER])
                columns = checked[COLUMNS]
                if rowid is None:
                    rowid = next_rowid
                    next_rowid += 1
                    pending[key] = rowid
                    rows.append((rowid, *checked[:2], *columns, checked[PROPERTIES]))
                    inserted += 1
                else:
                    updates.append((*columns, checked[PROPERTIES], rowid))
                    if rowid <= boxed:
                        stale_boxes.append((rowid,))
                        stale_boxes.append((-rowid,))
                    updated += 1
                data.append((rowid, checked[GEOMETRY], checked[BODY]))
                start, end = checked[START], checked[END]
                for index, (west, south, east, north) in enumerate(checked[BOXES]):
                    box_id = rowid if index == 0 else -rowid
                    boxes.append((box_id, west, east, south, north, start, end, rowid))
            # new items join the R*Tree when it covers every item before them; a bulk load packs it at the end
            joining = bool(rows) and self._bulk_boxes is None and boxed >= rows[0][0] - 1
            indexed = boxes if joining or not boxes else [box for box in boxes if box[7] <= boxed]
            if stale_boxes:
                conn.executemany("DELETE FROM items_rtree WHERE id = ?", stale_boxes)
            if rows:
                conn.executemany(_INSERT_ITEM, rows)
                if self._bulk_keys is not None:
                    self._remember_keys(self._bulk_keys, rows)
            if updates:
                conn.executemany(_UPDATE_ITEM, updates)
            if data:
                conn.executemany(_UPSERT_DATA, data)
            if indexed:
                conn.executemany(_INSERT_BOX, indexed)
            if joining:
                _set_watermark(conn, _BOXES, next_rowid - 1)
            self._index_batch_text(conn, updates, rows, next_rowid)
            self._widen_durations(conn, max_before, max_after)
            new_by_collection: dict[str, int] = {}
            for row in rows:
                new_by_collection[row[1]] = new_by_collection.get(row[1], 0) + 1
            for collection, added in new_by_collection.items():
                _count(conn, collection, added)
        if self._bulk_boxes is not None and boxes:  # committed: their boxes wait for the packing
            self._bulk_boxes.append(np.array(boxes, np.float64))
        report.inserted += inserted
        report.updated += updated
        report.skipped += skipped
        report.refused.extend(refused)
        report.batches += 1

    def _index_batch_text(
        self, conn: sqlite3.Connection, updates: list[tuple[Any, ...]], rows: list[tuple[Any, ...]], next_rowid: int
    ) -> None:
        """Keep the free-text index in step with a batch: replaced items it covers are indexed again; new items
        join it when it covers everything before them (a bulk load into an empty catalog leaves them to
        ``refresh_indexes``, which indexes a million items far faster in one pass than batch by batch)."""
        covered = _watermark(conn, _TEXT)
        stale = [(update[-1],) for update in updates if update[-1] <= covered]
        if stale:
            conn.executemany("DELETE FROM items_text WHERE rowid = ?", stale)
            conn.executemany(_INDEX_TEXT, [(rowid - 1, rowid) for (rowid,) in stale])
        if rows and self._bulk_keys is None and covered >= rows[0][0] - 1:
            conn.execute(_INDEX_TEXT, (covered, next_rowid - 1))
            _set_watermark(conn, _TEXT, next_rowid - 1)

    def refresh_indexes(self, progress: ProgressCallback | None = None) -> int:
        """Index the items a load left out: the free text after a bulk load, the boxes after an interrupted one
        (in chunks, one transaction each); how many items' text was indexed."""
        self._conn().execute(f"PRAGMA mmap_size = {_LOAD_MMAP_BYTES}")  # it reads every document once
        try:
            self._index_boxes()
            return self._index_text(progress)
        finally:
            self._conn().execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")

    def _catch_up(
        self,
        key: str,
        step: Callable[[sqlite3.Connection, int, int], tuple[int, int]],
        progress: ProgressCallback | None = None,
    ) -> int:
        """Until the index ``key`` covers every item: ``step(conn, covered, last)`` indexes some of the items after
        the watermark and says (up to which rowid, how many), in a transaction of its own that moves the watermark."""
        done = 0
        while True:
            with self._transaction() as conn:
                if (behind := _behind(conn, key)) is None:
                    return done
                upto, added = step(conn, *behind)
                _set_watermark(conn, key, upto)
            done += added
            if progress is not None:
                progress(added)

    def _index_boxes(self) -> int:
        """Put the items the R*Tree does not cover into it, boxes from their geometry: packed when it is empty (a
        bulk load interrupted before its end), else inserted chunk by chunk; how many items."""
        return self._catch_up(_BOXES, _box_step)

    def _index_text(self, progress: ProgressCallback | None) -> int:
        def step(conn: sqlite3.Connection, covered: int, last: int) -> tuple[int, int]:
            upto = min(last, covered + _TEXT_CHUNK)
            return upto, max(conn.execute(_INDEX_TEXT, (covered, upto)).rowcount, 0)

        return self._catch_up(_TEXT, step, progress)

    def _existing_rowids(self, conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        if self._bulk_keys is not None:
            return self._bulk_existing(conn, batch, self._bulk_keys)
        found: dict[tuple[str, str], int] = {}
        by_collection: dict[str, list[str]] = {}
        for checked in batch:
            by_collection.setdefault(checked[0], []).append(checked[1])
        for collection, ids in by_collection.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id, rowid FROM items WHERE collection = ? AND id IN ({marks})"
                for item_id, rowid in conn.execute(sql, (collection, *chunk)):
                    found[(collection, item_id)] = rowid
        return found

    @staticmethod
    def _bulk_existing(
        conn: sqlite3.Connection, batch: list[tuple[Any, ...]], keys: dict[int, int | list[int]]
    ) -> dict[tuple[str, str], int]:
        """``_existing_rowids`` during a bulk load: the keys it wrote, a hash hit checked against the row."""
        found: dict[tuple[str, str], int] = {}
        for checked in batch:
            hit = keys.get(hash((checked[0], checked[1])))
            if hit is None:
                continue
            for rowid in [hit] if isinstance(hit, int) else hit:
                row = conn.execute("SELECT collection, id FROM items WHERE rowid = ?", (rowid,)).fetchone()
                if row is not None and (row[0], row[1]) == (checked[0], checked[1]):
                    found[(checked[0], checked[1])] = rowid
        return found

    @staticmethod
    def _remember_keys(keys: dict[int, int | list[int]], rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            key = hash((row[1], row[2]))
            hit = keys.setdefault(key, row[0])
            if hit != row[0]:  # another (collection, id) with the same hash: keep both
                keys[key] = [*([hit] if isinstance(hit, int) else hit), row[0]]

    @staticmethod
    def _widen_durations(conn: sqlite3.Connection, before: float, after: float) -> None:
        """Remember the longest item time ranges so a time filter can also bound the indexed datetime."""
        for key, value in (("max_before", before), ("max_after", after)):
            if value > 0:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS REAL), CAST(excluded.value AS REAL))",
                    (key, repr(value)),
                )

    def get_item(self, collection_id: str, item_id: str) -> Item:
        row = (
            self._conn()
            .execute(
                "SELECT d.body FROM items AS i JOIN items_data AS d ON d.rowid = i.rowid"
                " WHERE i.collection = ? AND i.id = ?",
                (collection_id, item_id),
            )
            .fetchone()
        )
        if row is None:
            self.get_collection(collection_id)  # a missing collection is its own error
            raise NotFoundError(f"item {item_id!r} is not in collection {collection_id!r}", field="item")
        return item_from_body(row[0])

    def delete_item(self, collection_id: str, item_id: str) -> None:
        with self._transaction() as conn:
            row = conn.execute("SELECT rowid FROM items WHERE collection = ? AND id = ?", (collection_id, item_id))
            found = row.fetchone()
            if found is None:
                raise NotFoundError(f"item {item_id!r} is not in collection {collection_id!r}", field="item")
            conn.execute("DELETE FROM items_rtree WHERE id IN (?, ?)", (found[0], -found[0]))
            conn.execute("DELETE FROM items WHERE rowid = ?", (found[0],))
            conn.execute("DELETE FROM items_data WHERE rowid = ?", (found[0],))
            conn.execute("DELETE FROM items_text WHERE rowid = ?", (found[0],))
            _count(conn, collection_id, -1)

    # search ---------------------------------------------------------------------------------------------------
    def search(self, request: SearchRequest) -> SearchPage:
        parsed = parse_search(request)
        return self._search(parsed)

    def _search(self, parsed: ParsedSearch) -> SearchPage:
        conn = self._conn()
        source, where, params = self._where(conn, parsed)
        sort = self._sort_exprs(parsed)
        keyset_sql, keyset_params = "", list[Any]()
        carried: int | None = None  # numberMatched, counted on the first page and carried by the tokens
        if parsed.token:
            payload = decode_token(parsed.token)
            keyset_sql, keyset_params = _keyset(sort, parsed, payload)
            if len(payload) == 4 and isinstance(payload[3], int):
                carried = payload[3]
        conditions = [*where, keyset_sql] if keyset_sql else where
        sort_params = [p for expr, _ in sort for p in expr.params]
        if any("d." in expr.sql for expr, _ in sort) and "items_data" not in source:
            source += " JOIN items_data AS d ON d.rowid = i.rowid"
        body = (
            f" FROM {source}"
            + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            + f" ORDER BY {', '.join(f'{expr.sql} {direction.upper()}' for expr, direction in sort)} LIMIT ?"
        )
        columns = f"i.rowid, {', '.join(expr.sql for expr, _ in sort)}"
        all_params = [*sort_params, *params, *keyset_params, *sort_params, parsed.limit + 1]
        # numberMatched of a first page: when the plan sorts every match anyway, count them in the same pass
        counting = parsed.count and carried is None and not _whole_collections(parsed)
        windowed = counting and self._sorts_every_match(conn, f"SELECT {columns}{body}", all_params)
        sql = f"SELECT {columns}, count(*) OVER (){body}" if windowed else f"SELECT {columns}{body}"
        try:
            rows = conn.execute(sql, all_params).fetchall()
        except sqlite3.OperationalError as exc:
            raise InvalidInputError(f"filter: cannot be evaluated: {exc}", field="filter") from exc
        matched = None
        if windowed:
            matched = rows[0][-1] if rows else 0
            rows = [row[:-1] for row in rows]
        elif parsed.count:
            if carried is not None:
                matched = carried
            elif not parsed.token and len(rows) <= parsed.limit:  # the first page holds every match
                matched = len(rows)
            else:
                matched = self._count_matches(conn, parsed, source, where, params)
        next_token = None
        if len(rows) > parsed.limit:
            rows = rows[: parsed.limit]
            signature = [[key.field, key.direction] for key in parsed.sortby]
            next_token = encode_token([_TOKEN_VERSION, signature, list(rows[-1][1:]), matched])
        items = [apply_fields(item, parsed.fields) for item in self._fetch(conn, [row[0] for row in rows])]
        return SearchPage(items=items, number_matched=matched, next_token=next_token)

    def _sorts_every_match(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> bool:
        """Whether SQLite's plan for ``sql`` sorts in a temporary B-tree (plans depend on the text, not the values)."""
        known = self._plans.get(sql)
        if known is None:
            try:
                plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            except sqlite3.OperationalError:
                return False  # the search itself reports the error
            known = any("TEMP B-TREE FOR ORDER BY" in str(row[-1]) for row in plan)
            if len(self._plans) >= 512:
                self._plans.clear()
            self._plans[sql] = known
        return known

    @staticmethod
    def _count_matches(
        conn: sqlite3.Connection, parsed: ParsedSearch, source: str, where: list[str], params: list[Any]
    ) -> int:
        if _whole_collections(parsed):  # kept per collection as items come and go
            if parsed.collections is None:
                row = conn.execute("SELECT coalesce(sum(items), 0) FROM collection_counts").fetchone()
            else:
                marks = ",".join("?" * len(parsed.collections))
                sql = f"SELECT coalesce(sum(items), 0) FROM collection_counts WHERE collection IN ({marks})"
                row = conn.execute(sql, parsed.collections).fetchone()
            return int(row[0])
        count_sql = f"SELECT count(*) FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
        return int(conn.execute(count_sql, params).fetchone()[0])

    @staticmethod
    def _fetch(conn: sqlite3.Connection, rowids: list[int]) -> list[Item]:
        """The documents of ``rowids``, in that order."""
        if not rowids:
            return []
        found: dict[int, Item] = {}
        with _collector_paused():
            for start in range(0, len(rowids), 500):
                chunk = rowids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT rowid, body FROM items_data WHERE rowid IN ({marks})"
                for rowid, body in conn.execute(sql, chunk):
                    found[rowid] = item_from_body(body)
        return [found[rowid] for rowid in rowids]

    def iter_items(self, request: SearchRequest) -> Iterator[Item]:
        """Every matching item, streamed page by page (``limit`` is the page size, not a cap)."""
        parsed = parse_search(request)
        page_size = max(parsed.limit, 500)
        token = parsed.token
        while True:
            page = self._search(_replace(parsed, limit=page_size, token=token, count=False))
            yield from page.items
            if page.next_token is None:
                return
            token = page.next_token

    def _sort_exprs(self, parsed: ParsedSearch) -> list[tuple[SqlExpr, str]]:
        sort: list[tuple[SqlExpr, str]] = []
        for key in parsed.sortby:
            expr = property_expr(key.field)
            if expr.kind == "geometry":
                raise InvalidInputError("sortby: cannot sort by geometry", field="sortby")
            sort.append((expr, key.direction))
        sort.append((SqlExpr("i.rowid"), parsed.sortby[-1].direction))
        return sort

    def _where(self, conn: sqlite3.Connection, parsed: ParsedSearch) -> tuple[str, list[str], list[Any]]:
        """FROM clause, AND-ed conditions and their parameters (in textual order) for a search."""
        conditions: list[str] = []
        params: list[Any] = []
        source = "items AS i"
        start = parsed.time.start.timestamp() if parsed.time and parsed.time.start else None
        end = parsed.time.end.timestamp() if parsed.time and parsed.time.end else None
        if parsed.boxes is not None:
            time_range = (start, end) if parsed.time else None
            subquery, sub_params = _rtree_subquery(list(parsed.boxes), time_range, _unboxed(conn))
            area = sum((b.east - b.west) * (b.north - b.south) for b in parsed.boxes)
            if area < _RTREE_DRIVES_BELOW:  # few candidates: walk the R*Tree, then look the items up
                source = f"({subquery}) AS r CROSS JOIN items AS i"
                conditions.append("i.rowid = r.item")
            else:
                conditions.append(f"i.rowid IN ({subquery})")
            params.extend(sub_params)
        if parsed.collections is not None:
            conditions.append(f"i.collection IN ({','.join('?' * len(parsed.collections))})")
            params.extend(parsed.collections)
        if parsed.ids is not None:
            conditions.append(f"i.id IN ({','.join('?' * len(parsed.ids))})")
            params.extend(parsed.ids)
        if parsed.time is not None:
            before, after = self._durations(conn)
            if end is not None:
                conditions.append("i.start_datetime <= ?")
                conditions.append("i.datetime <= ?")
                params.extend([end, end + before])
            if start is not None:
                conditions.append("i.end_datetime >= ?")
                conditions.append("i.datetime >= ?")
                params.extend([start, start - after])
        if parsed.filter is not None:
            # the watermark is read only by a spatial operator's prefilter, not by every filter
            compiler = CQL2Compiler(lambda boxes: _rtree_subquery(boxes, None, _unboxed(conn)))
            sql, filter_params = compiler.compile(parsed.filter)
            conditions.append(sql)
            params.extend(filter_params)
        if parsed.q:
            sql, text_params = _free_text(conn, parsed.q)
            conditions.append(sql)
            params.extend(text_params)
        if parsed.geometry is not None and parsed.boxes is not None:
            sql, exact_params = exact_intersects(parsed.geometry, parsed.boxes)
            conditions.append(sql)
            params.extend(exact_params)
        if any("d." in condition for condition in conditions):
            source += " JOIN items_data AS d ON d.rowid = i.rowid"
        return source, conditions, params

    @staticmethod
    def _durations(conn: sqlite3.Connection) -> tuple[float, float]:
        values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('max_before', 'max_after')").fetchall())
        return float(values.get("max_before", 0)), float(values.get("max_after", 0))

    # aggregation ----------------------------------------------------------------------------------------------
    def aggregate(self, request: SearchRequest, aggregations: list[str]) -> dict[str, Any]:
        specs = parse_aggregations(aggregations)
        parsed = parse_search(request)
        conn = self._conn()
        source, where, params = self._where(conn, parsed)
        if len(specs) > 1 and (parsed.boxes is not None or parsed.filter is not None or parsed.q):
            # exact geometry tests and JSON filters once, then every aggregation over the matched rows
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS matched (rowid INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM temp.matched")
            select = f"SELECT i.rowid FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
            conn.execute(f"INSERT OR IGNORE INTO temp.matched {select}", params)
            source, where, params = "temp.matched AS m CROSS JOIN items AS i", ["i.rowid = m.rowid"], []
        where_sql = f" WHERE {' AND '.join(where)}" if where else ""
        results = [self._aggregate_one(conn, spec, source, where_sql, params) for spec in specs]
        return {"aggregations": results}

    def _aggregate_one(
        self, conn: sqlite3.Connection, spec: AggregationSpec, source: str, where_sql: str, params: list[Any]
    ) -> dict[str, Any]:
        def grouped(expr: str, extra: list[Any] | None = None) -> list[tuple[Any, int]]:
            sql = f"SELECT {expr} AS k, count(*) FROM {source}{where_sql} GROUP BY k"
            return [(k, n) for k, n in conn.execute(sql, [*(extra or []), *params])]

        if spec.kind == "total_count":
            count = conn.execute(f"SELECT count(*) FROM {source}{where_sql}", params).fetchone()[0]
            return value_result(spec, count, "integer")
        if spec.kind in ("datetime_min", "datetime_max"):
            function = "min" if spec.kind == "datetime_min" else "max"
            value = conn.execute(f"SELECT {function}(i.datetime) FROM {source}{where_sql}", params).fetchone()[0]
            return value_result(spec, _iso(value) if value is not None else None, "datetime")
        if spec.kind == "collection_frequency":
            return frequency_result(spec, grouped("i.collection"))
        if spec.kind == "datetime_frequency":
            pattern = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}[spec.parameter]
            return frequency_result(spec, grouped("strftime(?, i.datetime, 'unixepoch')", [pattern]))
        if spec.kind == "cloud_cover_frequency":
            width = spec.parameter
            counts = grouped("CAST(min(i.cloud_cover, 99.999999) / ? AS INTEGER) * ?", [width, width])
            return frequency_result(spec, [(None if k is None else int(k), n) for k, n in counts])
        if spec.kind == "geohash_frequency":
            # geohash cells are a 2^a x 2^b grid: group in SQL by grid cell, name each cell by its centre
            lon_cells, lat_cells = 2 ** ((5 * spec.parameter + 1) // 2), 2 ** (5 * spec.parameter // 2)
            x = "min(CAST(((i.minx + i.maxx) / 2 + 180) / 360 * ? AS INTEGER), ? - 1)"
            y = "min(CAST(((i.miny + i.maxy) / 2 + 90) / 180 * ? AS INTEGER), ? - 1)"
            sql = f"SELECT {x} AS gx, {y} AS gy, count(*) FROM {source}{where_sql} GROUP BY gx, gy"
            cells = conn.execute(sql, [lon_cells, lon_cells, lat_cells, lat_cells, *params])
            counts = [
                (geohash((gx + 0.5) * 360 / lon_cells - 180, (gy + 0.5) * 180 / lat_cells - 90, spec.parameter), n)
                for gx, gy, n in cells
            ]
            return frequency_result(spec, counts)
        if spec.kind == "geohex_grid_frequency":
            merged: dict[str, int] = {}
            sql = f"SELECT (i.miny + i.maxy) / 2, (i.minx + i.maxx) / 2 FROM {source}{where_sql}"
            for lat, lon in conn.execute(sql, params):
                cell = h3.latlng_to_cell(lat, lon, spec.parameter)
                merged[cell] = merged.get(cell, 0) + 1
            return frequency_result(spec, list(merged.items()))
        if spec.kind == "property_frequency":
            expr = property_expr(spec.parameter)
            counts = grouped(expr.sql, expr.params)
            if expr.kind == "time":
                counts = [(_iso(k) if k is not None else None, n) for k, n in counts]
            return frequency_result(spec, counts)
        raise InvalidInputError(f"aggregations: {spec.name!r} is not supported", field="aggregations")

    # records --------------------------------------------------------------------------------------------------
    def put_record(self, namespace: str, key: str, value: dict[str, Any]) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO records (namespace, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, orjson.dumps(value).decode()),
            )

    def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM records WHERE namespace = ? AND key = ?", (namespace, key))
        found = row.fetchone()
        return None if found is None else orjson.loads(found[0])

    def list_records(self, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._conn().execute("SELECT key, value FROM records WHERE namespace = ? ORDER BY key", (namespace,))
        return [(key, orjson.loads(value)) for key, value in rows]

    def delete_record(self, namespace: str, key: str) -> None:
        with self._transaction() as conn:
            cursor = conn.execute("DELETE FROM records WHERE namespace = ? AND key = ?", (namespace, key))
            if cursor.rowcount == 0:
                raise NotFoundError(f"record {namespace}/{key} does not exist", field="key")


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error: all of it or none of it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


# what the derived indexes cover: the items up to these rowids (``meta`` keys)
_TEXT = "text_rowid"  # the free-text index
_BOXES = "rtree_rowid"  # the R*Tree


def _watermark(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row is not None else 0


def _set_watermark(conn: sqlite3.Connection, key: str, rowid: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(rowid)))


def _behind(conn: sqlite3.Connection, key: str) -> tuple[int, int] | None:
    """(watermark, last rowid) when items after the watermark are not covered yet, else None."""
    covered, last = conn.execute(
        "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), (SELECT max(rowid) FROM items)", (key,)
    ).fetchone()
    covered = int(covered or 0)
    return (covered, int(last)) if last is not None and covered < last else None


def _count(conn: sqlite3.Connection, collection: str, change: int) -> None:
    conn.execute(
        "INSERT INTO collection_counts (collection, items) VALUES (?, ?)"
        " ON CONFLICT (collection) DO UPDATE SET items = items + excluded.items",
        (collection, change),
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Decoding a page builds thousands of acyclic containers; left on, the cyclic collector would run many young
    collections in the middle and promote the page to the oldest generation, whose full collections (the whole
    heap) then come every few pages. Paused, one young collection sees the page afterwards and it dies young."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _free_text(conn: sqlite3.Connection, words: tuple[str, ...]) -> tuple[str, list[Any]]:
    """Any word anywhere in the id, title, description or keywords, ignoring case (``instr`` semantics).

    Words of three characters or more are looked up in the trigram index for the items it covers; shorter ones,
    and the items the index does not cover yet, are scanned. Rare words drive the search from the index (the
    matches are fetched by rowid, then sorted); common ones are tested item by item in the order of the sort,
    which stops at the page's end.
    """
    covered = _watermark(conn, _TEXT)
    indexed = [word for word in words if len(word) >= _SHORTEST_TRIGRAM_WORD]
    short = [word for word in words if len(word) < _SHORTEST_TRIGRAM_WORD]
    if not indexed:
        return f"i.rowid IN ({_TEXT_SCAN} WHERE {_any_word(len(short))})", list(short)
    match = " OR ".join('"' + word.replace('"', '""') + '"' for word in indexed)
    matched = "SELECT rowid FROM items_text WHERE items_text MATCH ?"
    scanned = f"{_TEXT_SCAN} WHERE (i.rowid > ? AND {_any_word(len(indexed))})"
    params: list[Any] = [match, covered, *indexed]
    if short:
        scanned += f" OR {_any_word(len(short))}"
        params.extend(short)
    elif (
        conn.execute(f"SELECT count(*) FROM ({matched} LIMIT ?)", (match, _RARE_MATCHES)).fetchone()[0] < _RARE_MATCHES
    ):
        return f"i.rowid IN ({matched} UNION ALL {scanned})", params
    return f"(i.rowid IN ({matched}) OR i.rowid IN ({scanned}))", params


def _any_word(count: int) -> str:
    return "(" + " OR ".join([f"instr({_TEXT_EXPR}, ?) > 0"] * count) + ")"


def exact_intersects(geometry: dict[str, Any], boxes: tuple[Box, ...]) -> tuple[str, list[Any]]:
    """Footprint meets ``geometry``: sure when an item's box lies inside a rectangular query, else shapely."""
    shape = shapely.geometry.shape(geometry)
    test = "se_geom(d.geometry, ?, 'intersects')"
    params: list[Any] = [shapely.to_wkb(shape)]
    rectangular = all(shapely.equals(shapely.box(b.west, b.south, b.east, b.north), shape) for b in boxes[:1])
    if len(boxes) > 1:  # a bbox split at the antimeridian is two rectangles
        rectangular = shapely.equals(shapely.union_all([shapely.box(*b) for b in boxes]), shape)
    if not rectangular:
        return test, params
    inside = " OR ".join("(i.minx >= ? AND i.maxx <= ? AND i.miny >= ? AND i.maxy <= ?)" for _ in boxes)
    inside_params = [v for b in boxes for v in (b.west, b.east, b.south, b.north)]
    return f"({inside} OR {test})", [*inside_params, *params]


def _box_step(conn: sqlite3.Connection, boxed: int, last: int) -> tuple[int, int]:
    """Boxes from the geometry of the items after the R*Tree's watermark: all of them packed when it is empty,
    else the next chunk inserted."""
    packing = boxed == 0 and conn.execute("SELECT 1 FROM items_rtree_rowid LIMIT 1").fetchone() is None
    upto = last if packing else min(last, boxed + _TEXT_CHUNK)
    rows = conn.execute(
        "SELECT i.rowid, i.start_datetime, i.end_datetime, d.geometry FROM items AS i"
        " JOIN items_data AS d ON d.rowid = i.rowid WHERE i.rowid > ? AND i.rowid <= ?",
        (boxed, upto),
    )
    chunks: list[np.ndarray] = []  # of _INSERT_BOX parameter rows, compact (a million items: 64 MB)
    done = 0
    while chunk := rows.fetchmany(_TEXT_CHUNK):
        boxes = [
            (rowid if index == 0 else -rowid, box.west, box.east, box.south, box.north, start, end, rowid)
            for rowid, start, end, geometry in chunk
            for index, box in enumerate(checked_boxes(orjson.loads(geometry)))
        ]
        if packing:
            chunks.append(np.array(boxes, np.float64))
        else:
            conn.executemany(_INSERT_BOX, boxes)
        done += len(chunk)
    if chunks:
        node_bytes = sqlite_rtree.node_size(conn, "items_rtree")
        sqlite_rtree.write(conn, "items_rtree", _pack_boxes(np.concatenate(chunks), node_bytes))
    return upto, done


def _pack_boxes(boxes: np.ndarray, node_bytes: int) -> sqlite_rtree.PackedTree:
    """The packed R*Tree of rows of ``_INSERT_BOX`` parameters; an item given twice keeps its last boxes."""
    ids = boxes[:, 0].astype(np.int64)
    last = np.sort(boxes.shape[0] - 1 - np.unique(ids[::-1], return_index=True)[1])
    boxes = boxes[last]
    return sqlite_rtree.pack(ids[last], boxes[:, 1:7], boxes[:, 7].astype(np.int64), node_bytes)


def _unboxed(conn: sqlite3.Connection) -> int | None:
    """The R*Tree's watermark when items after it are not in it yet (``refresh_indexes``), else None."""
    behind = _behind(conn, _BOXES)
    return behind[0] if behind is not None else None


def _rtree_subquery(
    boxes: list[Box], time_range: tuple[float | None, float | None] | None, unboxed: int | None = None
) -> tuple[str, list[Any]]:
    """Rowids of items whose boxes meet any of ``boxes`` (and the time range); UNION removes doubles.

    Items the R*Tree does not cover yet (after ``unboxed``) are all candidates: every spatial condition also tests
    the exact geometry."""
    selects, params = [], []
    for box in boxes:
        sql = "SELECT item FROM items_rtree WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?"
        params.extend([box.east, box.west, box.north, box.south])
        if time_range is not None:
            start, end = time_range
            if end is not None:
                sql += " AND mint <= ?"
                params.append(end)
            if start is not None:
                sql += " AND maxt >= ?"
                params.append(start)
        selects.append(sql)
    if unboxed is not None:
        selects.append("SELECT rowid FROM items WHERE rowid > ?")
        params.append(unboxed)
    return " UNION ".join(selects), params


def _keyset(sort: list[tuple[SqlExpr, str]], parsed: ParsedSearch, payload: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after the token's position in the sort order (NULLs first ascending, last descending)."""
    signature = [[key.field, key.direction] for key in parsed.sortby]
    if len(payload) not in (3, 4) or payload[0] != _TOKEN_VERSION or not isinstance(payload[2], list):
        raise InvalidInputError("token: not a continuation token this catalog issued", field="token")
    if payload[1] != signature:
        raise InvalidInputError("token: issued for another sort order; start again without a token", field="token")
    values = payload[2]
    if len(values) != len(sort):
        raise InvalidInputError("token: not a continuation token this catalog issued", field="token")
    directions = {direction for _, direction in sort}
    if all(expr.sql in NOT_NULL_COLUMNS or expr.sql == "i.rowid" for expr, _ in sort) and len(directions) == 1:
        op = "<" if directions == {"desc"} else ">"
        columns = ", ".join(expr.sql for expr, _ in sort)
        return f"(({columns}) {op} ({', '.join('?' * len(values))}))", list(values)
    disjuncts, params = [], []
    for index, (expr, direction) in enumerate(sort):
        terms, term_params = [], []
        for prior, prior_value in zip(sort[:index], values[:index], strict=True):
            terms.append(f"{prior[0].sql} IS ?")
            term_params.extend([*prior[0].params, prior_value])
        value = values[index]
        if direction == "asc" and value is None:
            after, after_params = f"{expr.sql} IS NOT NULL", [*expr.params]
        elif direction == "asc":
            after, after_params = f"{expr.sql} > ?", [*expr.params, value]
        elif value is None:
            after, after_params = "0", []
        else:
            after, after_params = f"({expr.sql} < ? OR {expr.sql} IS NULL)", [*expr.params, value, *expr.params]
        terms.append(after)
        term_params.extend(after_params)
        disjuncts.append("(" + " AND ".join(terms) + ")")
        params.extend(term_params)
    return "(" + " OR ".join(disjuncts) + ")", params


def _whole_collections(parsed: ParsedSearch) -> bool:
    """No condition narrows the search below whole collections (their counts are kept, not counted)."""
    return all(part is None for part in (parsed.boxes, parsed.ids, parsed.time, parsed.filter, parsed.q))


def _replace(parsed: ParsedSearch, **changes: Any) -> ParsedSearch:
    from dataclasses import replace

    return replace(parsed, **changes)
