"""The scale backend: PostgreSQL + PostGIS with pgstac (the schema Planetary Computer runs).

Everything goes through pgstac: collections through its functions, items through pypgstac's ``Loader`` (COPY into
the collection's partition, dehydrated against the collection's base item), searches through its ``search()``
function (CQL2 JSON, keyset ``next:``/``prev:`` tokens with no page cap, ``numberMatched`` from its context).
Aggregations and records, which pgstac has no function for, live in our own ``snapearth`` schema as SQL functions
over pgstac's ``items`` table, built the way pgstac builds its own queries (``stac_search_to_where``).
User input only ever reaches SQL as bound parameters.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

import h3
import hydraters
import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from snapearth.catalog.aggregation import AggregationSpec, frequency_result, parse_aggregations, value_result
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
from snapearth.catalog.search_params import ParsedSearch, apply_fields, parse_search
from snapearth.catalog.validate import ItemRefused, check_collection, check_item
from snapearth.errors import BackendError, ConflictError, InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS snapearth;
CREATE TABLE IF NOT EXISTS snapearth.records (
    namespace text NOT NULL,
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, key)
);
-- Indexed queryables beside pgstac's own datetime, geometry and id: the properties nearly every search filters on,
-- the same ones the embedded backend keeps in indexed columns.
INSERT INTO pgstac.queryables (name, definition, property_index_type)
SELECT q.name, q.definition::jsonb, 'BTREE'
FROM (VALUES
    ('eo:cloud_cover', '{"type": "number", "minimum": 0, "maximum": 100}'),
    ('platform', '{"type": "string"}'),
    ('grid:code', '{"type": "string"}'),
    ('sat:relative_orbit', '{"type": "integer", "minimum": 1}')
) AS q (name, definition)
WHERE NOT EXISTS (SELECT FROM pgstac.queryables WHERE queryables.name = q.name);
"""

# Aggregations over pgstac's items table, filtered by pgstac's own translation of the search to a WHERE clause
# (stac_search_to_where, what search() runs). Kinds are a closed list; parameters reach the SQL text only as
# integers or through format('%L'), the way pgstac builds its own queries.
_AGGREGATE_SQL = r"""
CREATE OR REPLACE FUNCTION snapearth.aggregate(_search jsonb, _kind text, _param text DEFAULT NULL)
RETURNS TABLE (key jsonb, frequency bigint) AS $$
DECLARE
    _where text := pgstac.stac_search_to_where(_search);
    _x text := '((ST_XMin(geometry) + ST_XMax(geometry)) / 2)';
    _y text := '((ST_YMin(geometry) + ST_YMax(geometry)) / 2)';
    _expr text;
BEGIN
    IF _kind IN ('total_count', 'datetime_min', 'datetime_max') THEN
        _expr := CASE _kind
            WHEN 'total_count' THEN 'NULL::jsonb'
            WHEN 'datetime_min' THEN 'to_jsonb(min(datetime))'
            ELSE 'to_jsonb(max(datetime))'
        END;
        RETURN QUERY EXECUTE format('SELECT %s, count(*) FROM pgstac.items WHERE %s', _expr, _where);
        RETURN;
    END IF;
    _expr := CASE _kind
        WHEN 'collection_frequency' THEN 'to_jsonb(collection)'
        WHEN 'datetime_frequency' THEN format(
            $e$to_jsonb(to_char(datetime AT TIME ZONE 'UTC', %L))$e$,
            CASE _param WHEN 'year' THEN 'YYYY' WHEN 'day' THEN 'YYYY-MM-DD' ELSE 'YYYY-MM' END)
        WHEN 'cloud_cover_frequency' THEN format(
            $e$to_jsonb((floor(least((content->'properties'->>'eo:cloud_cover')::float, 99.999999) / %1$s)
                * %1$s)::int)$e$,
            _param::int)
        WHEN 'geohash_frequency' THEN format(
            'to_jsonb(ST_GeoHash(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s))', _x, _y, _param::int)
        WHEN 'centres' THEN format('jsonb_build_array(%s, %s)', _y, _x)
        WHEN 'property_frequency' THEN CASE _param
            WHEN 'datetime' THEN 'to_jsonb(datetime)'
            WHEN 'start_datetime' THEN 'to_jsonb(datetime)'
            WHEN 'end_datetime' THEN 'to_jsonb(end_datetime)'
            WHEN 'id' THEN 'to_jsonb(id)'
            WHEN 'collection' THEN 'to_jsonb(collection)'
            ELSE format($e$(content->'properties') #> %L::text[]$e$, string_to_array(_param, '.'))
        END
    END;
    IF _expr IS NULL THEN
        RAISE EXCEPTION 'unknown aggregation %', _kind USING ERRCODE = '22023';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT %s AS key, count(*) AS frequency FROM pgstac.items WHERE %s GROUP BY 1', _expr, _where);
END;
$$ LANGUAGE PLPGSQL STABLE;
"""

_TIME_PROPERTIES = frozenset({"datetime", "start_datetime", "end_datetime"})

_PG_MODES = {"insert": "insert", "upsert": "upsert", "ignore": "insert_ignore"}


def _configure(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(orjson.loads, conn)
    conn.execute("SET search_path TO pgstac, public")
    conn.commit()


def _plain_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


class PgSTACCatalog:
    """A STAC catalog in a pgstac database (``postgresql://user@host:port/db``; pgstac already migrated)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, connect_timeout: float = 30.0) -> None:
        self.url = url
        self._pool = ConnectionPool(
            _plain_url(url),
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="snapearth-pgstac",
        )
        self._numeric_queryables: set[str] | None = None
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            raise BackendError(f"catalog: cannot connect to {_redact(url)}: {exc}", field="catalog") from None
        self._ensure_schema()

    # plumbing --------------------------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self._connection() as conn:
            row = conn.execute("SELECT to_regproc('pgstac.search')").fetchone()
            if row is None or row[0] is None:
                raise BackendError(
                    f"catalog: {_redact(self.url)} has no pgstac schema; run `pypgstac migrate` first", field="catalog"
                )
            with conn.transaction():
                # Serialise concurrent first opens: CREATE ... IF NOT EXISTS is not race-free on its own.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('snapearth.schema'))")
                conn.execute(_SCHEMA_SQL)
                conn.execute(_AGGREGATE_SQL)

    def refresh_indexes(self, progress: ProgressCallback | None = None) -> int:
        """pgstac keeps its indexes in step as it writes: nothing is left to index."""
        return 0

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PgSTACCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; a server that is gone or unreachable is a BackendError, not a driver trace."""
        try:
            with self._pool.connection(timeout=30) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as exc:
            message = " ".join(str(exc).split())
            raise BackendError(f"catalog: the database at {_redact(self.url)} failed: {message}") from exc

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with self._connection() as conn:
            row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _invalidate_counts(self, conn: psycopg.Connection[Any]) -> None:
        # pgstac caches numberMatched per WHERE clause for context_stats_ttl; after a write they are stale.
        conn.execute("UPDATE pgstac.search_wheres SET statslastupdated = NULL WHERE statslastupdated IS NOT NULL")

    # collections -----------------------------------------------------------------------------------------------

    def create_collection(self, collection: Collection, *, exist_ok: bool = False) -> None:
        collection_id = check_collection(collection)["id"]
        with self._connection() as conn:
            try:
                conn.execute("SELECT create_collection(%s)", (Jsonb(collection),))
            except psycopg.errors.UniqueViolation:
                if exist_ok:
                    return
                raise ConflictError(f"collection {collection_id!r} already exists", field="id") from None

    def update_collection(self, collection: Collection) -> None:
        collection_id = check_collection(collection)["id"]
        with self._connection() as conn:
            try:
                conn.execute("SELECT update_collection(%s)", (Jsonb(collection),))
            except psycopg.errors.NoDataFound:
                raise NotFoundError(f"collection {collection_id!r} does not exist", field="collection") from None

    def get_collection(self, collection_id: str) -> Collection:
        content = self._one("SELECT get_collection(%s)", (collection_id,))
        if content is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist", field="collection")
        return dict(content)

    def list_collections(self) -> list[Collection]:
        content = self._one("SELECT all_collections()")
        return sorted((dict(c) for c in content or []), key=lambda c: str(c.get("id")))

    def delete_collection(self, collection_id: str, *, force: bool = False) -> None:
        with self._connection() as conn, conn.transaction():
            exists = conn.execute("SELECT 1 FROM collections WHERE id = %s FOR UPDATE", (collection_id,)).fetchone()
            if exists is None:
                raise NotFoundError(f"collection {collection_id!r} does not exist", field="collection")
            if not force:
                count = conn.execute("SELECT count(*) FROM items WHERE collection = %s", (collection_id,)).fetchone()
                if count is not None and count[0]:
                    raise ConflictError(
                        f"collection {collection_id!r} holds {count[0]} items: delete them first or force",
                        field="collection",
                    )
            conn.execute("SELECT delete_collection(%s)", (collection_id,))
            self._invalidate_counts(conn)

    # items -----------------------------------------------------------------------------------------------------

    def add_items(
        self,
        items: Iterable[Item],
        *,
        mode: LoadMode = "insert",
        batch_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load items in batches, each batch one transaction (pypgstac's COPY into the partition).

        Items that cannot be stored are refused (reported, not loaded) and the rest of their batch goes on;
        in ``insert`` mode an id that already exists is refused too, ``ignore`` skips it, ``upsert`` replaces it.
        """
        if mode not in _PG_MODES:
            raise InvalidInputError(f"mode: {mode!r} is not one of insert, upsert, ignore", field="mode")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size: {batch_size} must be at least 1", field="batch_size")
        report = LoadReport()
        known_collections: set[str] = set()
        batch: list[Item] = []
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                self._load_batch(batch, mode, report, known_collections)
                if progress is not None:
                    progress(len(batch))
                batch = []
        if batch:
            self._load_batch(batch, mode, report, known_collections)
            if progress is not None:
                progress(len(batch))
        return report

    def _load_batch(self, batch: list[Item], mode: LoadMode, report: LoadReport, known: set[str]) -> None:
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods

        accepted: dict[tuple[str, str], Item] = {}
        for raw in batch:
            try:
                check_item(raw)
            except ItemRefused as exc:
                report.refused.append(exc.refusal)
                continue
            key = (raw["collection"], raw["id"])
            if key in accepted:
                if mode == "insert":
                    report.refused.append(Refusal(raw["id"], "id", "appears twice in the same load"))
                    continue
                if mode == "ignore":
                    report.skipped += 1
                    continue
            accepted[key] = raw
        if not accepted:
            report.batches += 1
            return
        with self._connection() as conn:
            missing = {c for c, _ in accepted} - known
            if missing:
                rows = conn.execute("SELECT id FROM collections WHERE id = ANY(%s)", (sorted(missing),)).fetchall()
                known.update(r[0] for r in rows)
            for key in [k for k in accepted if k[0] not in known]:
                item = accepted.pop(key)
                report.refused.append(Refusal(item["id"], "collection", f"collection {key[0]!r} does not exist"))
            existing: set[tuple[str, str]] = set()
            by_collection: dict[str, list[str]] = {}
            for collection_id, item_id in accepted:
                by_collection.setdefault(collection_id, []).append(item_id)
            for collection_id, ids in by_collection.items():
                rows = conn.execute(
                    "SELECT id FROM items WHERE collection = %s AND id = ANY(%s)", (collection_id, ids)
                ).fetchall()
                existing.update((collection_id, r[0]) for r in rows)
            if mode == "insert":
                for key in existing:
                    item = accepted.pop(key)
                    report.refused.append(
                        Refusal(item["id"], "id", f"already exists in collection {key[0]!r} (load with upsert/ignore)")
                    )
            elif mode == "ignore":
                for key in existing:
                    accepted.pop(key)
                    report.skipped += 1
            if accepted:
                self._register_numeric_queryables(conn, accepted.values())
                loader = Loader(PgstacDB(connection=conn, commit_on_exit=False))
                try:
                    with conn.transaction():
                        loader.load_items(
                            iter(list(accepted.values())),
                            insert_mode=Methods(_PG_MODES[mode]),
                            chunksize=len(accepted) + 1,
                        )
                        self._invalidate_counts(conn)
                except psycopg.Error as exc:
                    raise BackendError(f"items: the batch could not be stored: {_pg_message(exc)}") from exc
                except Exception as exc:  # pypgstac raises bare Exception for items it cannot format
                    raise InvalidInputError(f"items: the batch was refused by pgstac: {exc}", field="items") from exc
            updated = len(existing) if mode == "upsert" else 0
            report.updated += updated
            report.inserted += len(accepted) - updated
            report.batches += 1

    def _register_numeric_queryables(self, conn: psycopg.Connection[Any], items: Iterable[Item]) -> None:
        """Declare numeric properties to pgstac, which otherwise sorts every property it does not know as text."""
        if self._numeric_queryables is None:
            rows = conn.execute("SELECT name FROM queryables").fetchall()
            self._numeric_queryables = {r[0] for r in rows}
        known = self._numeric_queryables
        new: set[str] = set()
        for item in items:
            for name, value in item["properties"].items():
                if name not in known and isinstance(value, int | float) and not isinstance(value, bool):
                    new.add(name)
        for name in sorted(new):
            # A concurrent loader may declare the same property first: pgstac's trigger then refuses ours.
            with contextlib.suppress(psycopg.errors.UniqueViolation), conn.transaction():
                conn.execute(
                    """INSERT INTO queryables (name, definition) SELECT %s, '{"type": "number"}'
                       WHERE NOT EXISTS (SELECT FROM queryables WHERE name = %s)""",
                    (name, name),
                )
        known.update(new)

    def get_item(self, collection_id: str, item_id: str) -> Item:
        content = self._one("SELECT get_item(%s, %s)", (item_id, collection_id))
        if content is None:
            self.get_collection(collection_id)  # NotFoundError naming the collection when it is that
            raise NotFoundError(f"item {item_id!r} does not exist in collection {collection_id!r}", field="id")
        return dict(content)

    def delete_item(self, collection_id: str, item_id: str) -> None:
        with self._connection() as conn, conn.transaction():
            try:
                conn.execute("SELECT delete_item(%s, %s)", (item_id, collection_id))
            except psycopg.errors.NoDataFound:
                raise NotFoundError(
                    f"item {item_id!r} does not exist in collection {collection_id!r}", field="id"
                ) from None
            self._invalidate_counts(conn)

    # search ----------------------------------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchPage:
        parsed = parse_search(request)
        if parsed.token is not None:
            check_token(parsed.token)
        body = to_pgstac_search(parsed)
        with self._connection() as conn:
            try:
                row = conn.execute("SELECT search(%s)", (Jsonb(body),)).fetchone()
            except psycopg.errors.RaiseException as exc:
                raise _search_error(exc, parsed) from None
            except (psycopg.errors.DataError, psycopg.errors.SyntaxErrorOrAccessRuleViolation) as exc:
                raise _search_error(exc, parsed) from None
        result: dict[str, Any] = row[0] if row else {}
        features = [apply_fields(_hydrate(f), parsed.fields) for f in result.get("features", [])]
        next_token = prev_token = None
        for link in result.get("links", []):
            href = str(link.get("href", ""))
            if link.get("rel") in ("next", "prev") and "token=" in href:
                token = href.split("token=", 1)[1]
                if link["rel"] == "next":
                    next_token = token
                else:
                    prev_token = token
        matched = result.get("numberMatched")
        return SearchPage(
            items=features,
            number_matched=int(matched) if matched is not None else None,
            next_token=next_token,
            prev_token=prev_token,
        )

    def iter_items(self, request: SearchRequest) -> Iterator[Item]:
        """Every item a search matches, page by page through pgstac's tokens (constant memory)."""
        page_request = request.model_copy(update={"count": False})
        while True:
            page = self.search(page_request)
            yield from page.items
            if not page.next_token:
                return
            page_request = page_request.model_copy(update={"token": page.next_token})

    def aggregate(self, request: SearchRequest, aggregations: list[str]) -> dict[str, Any]:
        """The aggregation extension's results (names and shapes of ``catalog.aggregation``), computed in SQL."""
        specs = parse_aggregations(aggregations)
        parsed = parse_search(request)
        body = to_pgstac_search(parsed)
        for unused in ("sortby", "token", "limit", "conf"):
            body.pop(unused, None)
        results = []
        with self._connection() as conn:
            for spec in specs:
                results.append(self._aggregate_one(conn, spec, body, parsed))
        return {"aggregations": results}

    def _aggregate_one(
        self, conn: psycopg.Connection[Any], spec: AggregationSpec, body: dict[str, Any], parsed: ParsedSearch
    ) -> dict[str, Any]:
        kind = "centres" if spec.kind == "geohex_grid_frequency" else spec.kind
        param = None if spec.parameter is None else str(spec.parameter)
        try:
            rows = conn.execute(
                "SELECT key, frequency FROM snapearth.aggregate(%s, %s, %s)", (Jsonb(body), kind, param)
            ).fetchall()
        except (psycopg.errors.RaiseException, psycopg.errors.DataError) as exc:
            raise _search_error(exc, parsed) from None
        if spec.kind == "total_count":
            return value_result(spec, int(rows[0][1]), "integer")
        if spec.kind in ("datetime_min", "datetime_max"):
            value = rows[0][0]
            return value_result(spec, None if value is None else _iso(value), "datetime")
        if spec.kind == "geohex_grid_frequency":
            cells: dict[str, int] = {}
            for (lat, lon), count in rows:
                cell = h3.latlng_to_cell(lat, lon, spec.parameter)
                cells[cell] = cells.get(cell, 0) + int(count)
            return frequency_result(spec, list(cells.items()))
        if spec.kind == "property_frequency" and spec.parameter in _TIME_PROPERTIES:
            return frequency_result(spec, [(None if k is None else _iso(k), int(n)) for k, n in rows])
        return frequency_result(spec, [(key, int(count)) for key, count in rows])

    # records ---------------------------------------------------------------------------------------------------

    def put_record(self, namespace: str, key: str, value: dict[str, Any]) -> None:
        _check_record_key(namespace, key)
        if not isinstance(value, dict):
            raise InvalidInputError("value: a record is a JSON object", field="value")
        with self._connection() as conn:
            conn.execute(
                """INSERT INTO snapearth.records (namespace, key, value) VALUES (%s, %s, %s)
                   ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
                (namespace, key, Jsonb(value)),
            )

    def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        _check_record_key(namespace, key)
        value = self._one("SELECT value FROM snapearth.records WHERE namespace = %s AND key = %s", (namespace, key))
        return None if value is None else dict(value)

    def list_records(self, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        _check_record_key(namespace, "-")
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT key, value FROM snapearth.records WHERE namespace = %s ORDER BY key", (namespace,)
            ).fetchall()
        return [(key, dict(value)) for key, value in rows]

    def delete_record(self, namespace: str, key: str) -> None:
        _check_record_key(namespace, key)
        with self._connection() as conn:
            conn.execute("DELETE FROM snapearth.records WHERE namespace = %s AND key = %s", (namespace, key))


# --- translation to pgstac ---------------------------------------------------------------------------------------


def to_pgstac_search(parsed: ParsedSearch) -> dict[str, Any]:
    """A validated search as the JSON body pgstac's ``search()`` takes."""
    body: dict[str, Any] = {"limit": parsed.limit}
    if parsed.collections is not None:
        body["collections"] = list(parsed.collections)
    if parsed.ids is not None:
        body["ids"] = list(parsed.ids)
    if parsed.geometry is not None:
        body["intersects"] = parsed.geometry
    if parsed.time is not None:
        start = parsed.time.start.isoformat() if parsed.time.start else ".."
        end = parsed.time.end.isoformat() if parsed.time.end else ".."
        body["datetime"] = f"{start}/{end}"
    filters = [parsed.filter] if parsed.filter is not None else []
    if parsed.q:
        filters.append(free_text_filter(parsed.q))
    if filters:
        body["filter"] = filters[0] if len(filters) == 1 else {"op": "and", "args": filters}
        body["filter-lang"] = "cql2-json"
    body["sortby"] = [{"field": key.field, "direction": key.direction} for key in parsed.sortby]
    if parsed.token:
        body["token"] = parsed.token
    # Hydration (merging each item with its collection's base item) runs here rather than in PL/pgSQL, where it
    # costs ~2 ms an item: the stac-fastapi-pgstac "API hydrate" mode.
    body["conf"] = {"context": "on" if parsed.count else "off", "nohydrate": True}
    return body


FREE_TEXT_FIELDS = ("id", "title", "description", "keywords")


def free_text_filter(words: tuple[str, ...]) -> dict[str, Any]:
    """Free-text ``q`` as CQL2: any word, anywhere in the id, title, description or keywords, ignoring case.

    (pgstac's own ``q`` is an English full-text search without the id; this keeps both backends' answers equal.)
    """
    clauses = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for name in FREE_TEXT_FIELDS:
            casei_property = {"op": "casei", "args": [{"property": name}]}
            clauses.append({"op": "like", "args": [casei_property, {"op": "casei", "args": [pattern]}]})
    return clauses[0] if len(clauses) == 1 else {"op": "or", "args": clauses}


_TOKEN = re.compile(r"^(next|prev):((?:[0-9a-f]{2})+):((?:[0-9a-f]{2})+)$", re.IGNORECASE)


def check_token(token: str) -> None:
    """pgstac's ``next:``/``prev:`` tokens: a direction, then the hex of the collection and the id of an item."""
    match = _TOKEN.match(token)
    try:
        if match is None:
            raise ValueError
        for part in match.group(2, 3):
            if "\x00" in bytes.fromhex(part).decode("utf-8"):
                raise ValueError
    except ValueError:
        raise InvalidInputError("token: not a continuation token this catalog issued", field="token") from None


def _hydrate(feature: dict[str, Any]) -> dict[str, Any]:
    """A dehydrated search result (``nohydrate``) made whole with the base item pgstac sends beside it."""
    base = feature.pop("pgstac:base_item", None)
    if not base:
        return feature
    hydrated: dict[str, Any] = hydraters.hydrate(base, feature)
    return hydrated


# --- errors ------------------------------------------------------------------------------------------------------


def _pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag.message_primary if exc.diag is not None else None
    return " ".join(str(diag or exc).split())


def _search_error(exc: psycopg.Error, parsed: ParsedSearch) -> InvalidInputError:
    """pgstac refused a search that passed our checks: name the parameter its message is about."""
    message = _pg_message(exc)
    lowered = message.lower()
    if "token" in lowered:
        return InvalidInputError(f"token: {message} (the page it points to may have been deleted)", field="token")
    if "sort" in lowered or "direction" in lowered:
        return InvalidInputError(f"sortby: {message}", field="sortby")
    if "aggregation" in lowered:
        return InvalidInputError(f"aggregations: {message}", field="aggregations")
    if "geometry" in lowered or "geojson" in lowered:
        field = "intersects" if parsed.geometry is not None else "filter"
        return InvalidInputError(f"{field}: {message}", field=field)
    if "datetime" in lowered or "timestamp" in lowered or "range" in lowered:
        field = "filter" if parsed.time is None else "datetime"
        return InvalidInputError(f"{field}: {message}", field=field)
    return InvalidInputError(f"filter: {message}", field="filter")


def _iso(value: str) -> str:
    """A timestamp as the catalog writes it everywhere (``...Z``, microseconds only when there are some)."""
    return parse_rfc3339(value).isoformat().replace("+00:00", "Z")


def _check_record_key(namespace: str, key: str) -> None:
    for field, value in (("namespace", namespace), ("key", key)):
        if not isinstance(value, str) or not value or len(value) > 512:
            raise InvalidInputError(f"{field}: must be a non-empty string of at most 512 characters", field=field)


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"
