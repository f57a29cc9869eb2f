"""The STAC API (stac-fastapi) over the ``Catalog`` contract: the same code serves the SQLite and pgstac backends.

The clients below translate HTTP requests into ``SearchRequest``s and catalog results into STAC responses
(links, continuation tokens, asset URLs); validation of searches is the catalog's (``catalog.search_params``),
this layer only checks what needs HTTP context (known collections, queryables, the API key).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Annotated, Any, Literal, cast
from urllib.parse import quote, urlencode

import attr
import orjson
from fastapi import Body, Depends, FastAPI, Request
from pydantic import BaseModel, Field, field_validator
from stac_fastapi.api.app import StacApi
from stac_fastapi.api.models import (
    ItemCollectionUri,
    create_get_request_model,
    create_post_request_model,
    create_request_model,
)
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.extensions import (
    AggregationExtension,
    FieldsExtension,
    FilterExtension,
    FreeTextExtension,
    ItemCollectionFilterExtension,
    QueryExtension,
    SortExtension,
    TokenPaginationExtension,
)
from stac_fastapi.extensions.aggregation.client import BaseAggregationClient
from stac_fastapi.extensions.aggregation.request import (
    AggregationExtensionGetRequest,
    AggregationExtensionPostRequest,
)
from stac_fastapi.extensions.filter.client import BaseFiltersClient
from stac_fastapi.extensions.filter.request import FilterExtensionPostRequest
from stac_fastapi.extensions.transaction.client import BaseTransactionsClient
from stac_fastapi.extensions.transaction.transaction import PostItem, PutItem, TransactionExtension
from stac_fastapi.types.config import ApiSettings
from stac_fastapi.types.core import BaseCoreClient
from stac_fastapi.types.extension import ApiExtension
from stac_fastapi.types.search import APIRequest, BaseSearchGetRequest, BaseSearchPostRequest, DateTimeQueryType
from stac_pydantic import Item as StacItem
from stac_pydantic import ItemCollection as StacItemCollection
from stac_pydantic.links import Links
from starlette.responses import Response

from snapearth import __version__
from snapearth.api.responses import GeoJSONResponse, JSONResponse
from snapearth.api.tiles import item_render_links
from snapearth.catalog.aggregation import AGGREGATIONS
from snapearth.catalog.base import Catalog, SearchRequest, SortKey
from snapearth.catalog.search_params import copy_path, drop_path
from snapearth.config import Settings
from snapearth.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)

CRS84 = ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "https://www.opengis.net/def/crs/OGC/1.3/CRS84")
GEOJSON = "application/geo+json"
JSON = "application/json"
OWN_LINK_RELS = frozenset(
    {"self", "root", "parent", "collection", "items", "queryables", "aggregate", "next", "prev", "preview", "tilejson"}
)
QUERYABLES_SAMPLE = 200  # items per collection read to discover its properties
QUERYABLES_TTL_S = 60.0
COLLECTION_IDS_TTL_S = 10.0  # searches check their collections against ids this fresh (or re-read on a miss)

# JSON schemas of the properties SnapEarth items carry (STAC names); others found in the data get a schema from
# their JSON type. ``id``/``collection``/``geometry``/``datetime`` are queryable everywhere.
KNOWN_QUERYABLES: dict[str, dict[str, Any]] = {
    "id": {"title": "Item ID", "type": "string"},
    "collection": {"title": "Collection ID", "type": "string"},
    "geometry": {"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"},
    "datetime": {"title": "Acquired", "type": "string", "format": "date-time"},
    "start_datetime": {"title": "Start", "type": "string", "format": "date-time"},
    "end_datetime": {"title": "End", "type": "string", "format": "date-time"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
    "platform": {"title": "Platform", "type": "string"},
    "constellation": {"title": "Constellation", "type": "string"},
    "instruments": {"title": "Instruments", "type": "array", "items": {"type": "string"}},
    "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100},
    "grid:code": {"title": "Grid square", "type": "string"},
    "sat:relative_orbit": {"title": "Relative orbit", "type": "integer", "minimum": 1},
    "sat:orbit_state": {"title": "Orbit direction", "type": "string", "enum": ["ascending", "descending"]},
    "sar:instrument_mode": {"type": "string"},
    "sar:polarizations": {"type": "array", "items": {"type": "string"}},
    "view:sun_azimuth": {"type": "number"},
    "view:sun_elevation": {"type": "number"},
}
_CORE_QUERYABLES = ("id", "collection", "geometry", "datetime")
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


# --- links and assets --------------------------------------------------------------------------------------------


def base_url(request: Request) -> str:
    """The API root as the client reached it, ending with ``/``."""
    settings: Settings = request.app.state.snapearth_settings
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/"
    return str(request.base_url)


class AssetUrls:
    """Local asset files under the data folder become ``{api}/files/...`` URLs the API serves (``api.files``)."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root.resolve()
        self._prefix = str(self.data_root) + "/"

    def to_url(self, href: str, root: str) -> str:
        path = href[7:] if href.startswith("file://") else href
        if path.startswith(self._prefix):
            return f"{root}files/{quote(path[len(self._prefix) :])}"
        return href

    def rewrite(self, item: dict[str, Any], root: str) -> None:
        for asset in (item.get("assets") or {}).values():
            href = asset.get("href") if isinstance(asset, dict) else None
            if isinstance(href, str) and (href.startswith(("/", "file://"))):
                asset["href"] = self.to_url(href, root)


def _own_links(links: Any) -> list[dict[str, Any]]:
    kept = [link for link in links or [] if isinstance(link, dict) and link.get("rel") not in OWN_LINK_RELS]
    return [
        link if link.get("title") else {**link, "title": str(link.get("rel", "link")).capitalize()} for link in kept
    ]


def collection_links(collection_id: str, root: str) -> list[dict[str, Any]]:
    here = f"{root}collections/{quote(collection_id)}"
    return [
        {"rel": "self", "type": JSON, "href": here, "title": collection_id},
        {"rel": "parent", "type": JSON, "href": root, "title": "SnapEarth"},
        {"rel": "root", "type": JSON, "href": root, "title": "SnapEarth"},
        {"rel": "items", "type": GEOJSON, "href": f"{here}/items", "title": "Items"},
        {"rel": "queryables", "type": "application/schema+json", "href": f"{here}/queryables", "title": "Queryables"},
        {"rel": "aggregate", "type": JSON, "href": f"{here}/aggregate", "method": "GET", "title": "Aggregate"},
    ]


@lru_cache(maxsize=256)
def _quoted_collection(collection_id: str) -> str:
    return quote(collection_id)


def item_links(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    """``self`` (first: the item's URL), ``parent``, ``collection``, ``root``."""
    collection = f"{root}collections/{_quoted_collection(str(item.get('collection', '')))}"
    return [
        {"rel": "self", "type": GEOJSON, "href": f"{collection}/items/{quote(str(item['id']))}"},
        {"rel": "parent", "type": JSON, "href": collection},
        {"rel": "collection", "type": JSON, "href": collection},
        {"rel": "root", "type": JSON, "href": root},
    ]


# --- request translation -----------------------------------------------------------------------------------------


def _json_param(value: Any, field: str) -> Any:
    if value is None or not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{field}: not valid JSON ({exc})", field=field) from None


def _sort_field(name: str) -> str:
    return name[len("properties.") :] if name.startswith("properties.") else name


def _sortby(value: Any) -> list[SortKey] | None:
    if not value:
        return None
    keys: list[SortKey] = []
    for entry in value:
        direction: Literal["asc", "desc"] = "asc"
        if isinstance(entry, str):
            text = entry.strip()
            if not text:
                continue
            if text.startswith("-"):
                direction = "desc"
            keys.append(SortKey(field=_sort_field(text.lstrip("+- ")), direction=direction))
            continue
        record = (
            entry
            if isinstance(entry, dict)
            else {"field": getattr(entry, "field", None), "direction": getattr(entry, "direction", None)}
        )
        field = record.get("field")
        raw = getattr(record.get("direction"), "value", record.get("direction")) or "asc"
        if not isinstance(field, str) or raw not in ("asc", "desc"):
            raise InvalidInputError(f"sortby: {entry!r} needs a field and direction asc|desc", field="sortby")
        direction = "desc" if raw == "desc" else "asc"
        keys.append(SortKey(field=_sort_field(field), direction=direction))
    return keys or None


IDENTITY_FIELDS = ("type", "stac_version", "id", "collection")
DEFAULT_FIELDS = (
    "type",
    "stac_version",
    "id",
    "collection",
    "geometry",
    "bbox",
    "links",
    "assets",
    "properties.datetime",
    "properties.start_datetime",
    "properties.end_datetime",
)


@dataclass(frozen=True)
class FieldSelection:
    """The STAC fields extension, applied here (after links and asset URLs) so every backend behaves the same.

    ``include`` given (non-empty): those paths plus the identity of the item (``type``, ``stac_version``, ``id``,
    ``collection``, as pgstac does); ``include`` explicitly empty or null: the default set;
    ``include`` absent: the whole item. ``exclude`` then removes paths, except where a path (or one below it) is
    also included: the more specific include wins.
    """

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    include_given: bool

    @classmethod
    def parse(cls, value: Any) -> FieldSelection | None:
        if value is None:
            return None
        if isinstance(value, list):  # GET: ["id", "-properties.datetime", "+assets"]
            include = tuple(v.strip().lstrip("+") for v in value if v.strip() and not v.strip().startswith("-"))
            exclude = tuple(v.strip()[1:] for v in value if v.strip().startswith("-"))
            return cls(include, exclude, include_given=bool(include))
        include_set = getattr(value, "include", None) or set()
        exclude_set = getattr(value, "exclude", None) or set()
        given = "include" in getattr(value, "model_fields_set", set())
        return cls(tuple(sorted(include_set)), tuple(sorted(exclude_set)), include_given=given)

    def apply(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.include:
            paths = (*IDENTITY_FIELDS, *self.include)
        elif self.include_given or not self.exclude:
            paths = DEFAULT_FIELDS
        else:
            paths = ()
        result: dict[str, Any] = {}
        if paths:
            for path in paths:
                copy_path(item, result, path.split("."))
        else:
            result = dict(item)
            if isinstance(result.get("properties"), dict):
                result["properties"] = dict(result["properties"])
        for path in self.exclude:
            if any(inc == path or inc.startswith(path + ".") for inc in self.include):
                continue
            drop_path(result, path.split("."))
        return result


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value)


def build_search(params: dict[str, Any]) -> SearchRequest:
    """GET keyword arguments or a POST body (as a dict of its fields) -> ``SearchRequest``."""
    crs = params.get("filter_crs")
    if crs and crs not in CRS84:
        raise InvalidInputError(f"filter-crs: only {CRS84[0]} is supported, got {crs!r}", field="filter-crs")
    intersects = _json_param(params.get("intersects"), "intersects")
    if isinstance(intersects, BaseModel):
        intersects = intersects.model_dump(mode="json", exclude_none=True)
    if intersects is not None and not isinstance(intersects, dict):
        raise InvalidInputError("intersects: expected a GeoJSON geometry object", field="intersects")
    query = _json_param(params.get("query"), "query")
    if query is not None and not isinstance(query, dict):
        raise InvalidInputError('query: expected an object such as {"eo:cloud_cover": {"lt": 20}}', field="query")
    filter_expr = params.get("filter_expr")
    filter_lang = params.get("filter_lang")
    if isinstance(filter_expr, dict):
        if filter_lang == "cql2-text":
            raise InvalidInputError("filter: an object is CQL2 JSON, but filter-lang says cql2-text", field="filter")
        filter_lang = "cql2-json"
    elif isinstance(filter_expr, str) and filter_lang == "cql2-json":
        filter_expr = _json_param(filter_expr, "filter")
    elif isinstance(filter_expr, str):
        filter_lang = "cql2-text"
    limit = params.get("limit")
    q = params.get("q")
    if isinstance(q, str):
        q = [part for part in q.split(",") if part.strip()]
    dt = params.get("datetime")
    if dt is not None and not isinstance(dt, str):
        dt = str(dt)
    try:
        return SearchRequest(
            bbox=_as_list(params.get("bbox")),
            intersects=intersects,
            datetime=dt or None,
            collections=_as_list(params.get("collections")),
            ids=_as_list(params.get("ids")),
            filter=filter_expr or None,
            filter_lang=filter_lang if filter_expr else None,
            query=query or None,
            q=q or None,
            sortby=_sortby(params.get("sortby")),
            limit=10 if limit is None else int(limit),
            token=params.get("token") or None,
        )
    except ValueError as exc:  # pydantic: a shape the contract does not accept
        raise InvalidInputError(f"search: {exc}", field="search") from None


def _filter_properties(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        prop = node.get("property")
        if isinstance(prop, str):
            found.add(prop)
        for value in node.values():
            _filter_properties(value, found)
    elif isinstance(node, list):
        for value in node:
            _filter_properties(value, found)


# --- queryables ----------------------------------------------------------------------------------------------------


class Queryables:
    """Per-collection queryables, discovered from the items themselves (a sample), cached briefly."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cache: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._ids: tuple[float, tuple[str, ...], frozenset[str]] | None = None
        self._lock = Lock()

    def collection_ids(self, *, fresh: bool = False) -> tuple[tuple[str, ...], frozenset[str]]:
        """The catalog's collection ids, in its order and as a set; read again after a while or when ``fresh``."""
        now = time.monotonic()
        with self._lock:
            if not fresh and self._ids is not None and now - self._ids[0] < COLLECTION_IDS_TTL_S:
                return self._ids[1], self._ids[2]
        ids = tuple(c["id"] for c in self.catalog.list_collections())
        with self._lock:
            self._ids = (now, ids, frozenset(ids))
        return ids, frozenset(ids)

    def check_collections(self, collections: list[str] | None) -> None:
        """Unknown collections are a 404 naming ``collections``; a miss re-reads the catalog before saying so."""
        if not collections:
            return
        known = self.collection_ids()[1]
        if all(c in known for c in collections):
            return
        known = self.collection_ids(fresh=True)[1]
        unknown = [c for c in collections if c not in known]
        if unknown:
            raise NotFoundError(f"collections: unknown collection {unknown[0]!r}", field="collections")

    def of(self, collection_id: str) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(collection_id)
            if hit and now - hit[0] < QUERYABLES_TTL_S:
                return hit[1]
        collection = self.catalog.get_collection(collection_id)  # NotFoundError for an unknown collection
        found: dict[str, dict[str, Any]] = {name: KNOWN_QUERYABLES[name] for name in _CORE_QUERYABLES}
        for name in collection.get("summaries") or {}:
            if name in KNOWN_QUERYABLES:
                found[name] = KNOWN_QUERYABLES[name]
        page = self.catalog.search(SearchRequest(collections=[collection_id], limit=QUERYABLES_SAMPLE, count=False))
        for item in page.items:
            for name, value in (item.get("properties") or {}).items():
                if name not in found and value is not None:
                    found[name] = KNOWN_QUERYABLES.get(name) or {"type": _JSON_TYPES.get(type(value), "string")}
        with self._lock:
            self._cache[collection_id] = (now, found)
        return found

    def union(self, collection_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        ids = collection_ids or self.collection_ids()[0]
        merged: dict[str, dict[str, Any]] = {name: KNOWN_QUERYABLES[name] for name in _CORE_QUERYABLES}
        for collection_id in ids:
            merged.update(self.of(collection_id))
        return merged

    def forget(self, collection_id: str | None = None) -> None:
        with self._lock:
            self._ids = None
            if collection_id is None:
                self._cache.clear()
            else:
                self._cache.pop(collection_id, None)

    def check(self, request: SearchRequest) -> None:
        """Every property a filter or sort names must be queryable in the searched collections."""
        if request.filter is None and not request.query and not request.sortby:
            return
        from snapearth.catalog.search_params import parse_filter

        names: set[str] = set()
        if request.filter is not None:
            _filter_properties(parse_filter(request.filter, request.filter_lang), names)
        named_by = dict.fromkeys(names, "filter")
        for name in request.query or {}:
            named_by.setdefault(name, "query")
        for key in request.sortby or []:
            named_by.setdefault(key.field, "sortby")
        if not named_by:
            return
        known = self.union(request.collections)
        for name, field in sorted(named_by.items()):
            base = name[len("properties.") :] if name.startswith("properties.") else name
            if base not in known:
                raise InvalidInputError(
                    f"{field}: unknown queryable {name!r}; see /queryables for the properties you can use",
                    field=field,
                )


# --- clients -------------------------------------------------------------------------------------------------------


@attr.s
class CoreClient(BaseCoreClient):
    """STAC core, features, collections and item search over the ``Catalog`` contract."""

    catalog: Catalog = attr.ib(kw_only=True)
    assets: AssetUrls = attr.ib(kw_only=True)
    queryables: Queryables = attr.ib(kw_only=True)

    def landing_page(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        request: Request = kwargs["request"]
        page: dict[str, Any] = dict(super().landing_page(**kwargs))
        root = base_url(request)
        page["links"] = [dict(link) for link in page["links"]]
        for link in page["links"]:
            if link.get("rel") == "search":
                link["type"] = GEOJSON
        if not any(str(link.get("rel", "")).endswith("queryables") for link in page["links"]):
            page["links"].append(
                {
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                    "type": "application/schema+json",
                    "title": "Queryables",
                    "href": f"{root}queryables",
                }
            )
        for collection in self.catalog.list_collections():
            page["links"].append(
                {
                    "rel": "child",
                    "type": JSON,
                    "title": collection.get("title") or collection["id"],
                    "href": f"{root}collections/{quote(collection['id'])}",
                }
            )
        return page

    def _collection(self, collection: dict[str, Any], root: str) -> dict[str, Any]:
        body = dict(collection)
        body["links"] = collection_links(body["id"], root) + _own_links(body.get("links"))
        return body

    def all_collections(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        root = base_url(kwargs["request"])
        collections = [self._collection(c, root) for c in self.catalog.list_collections()]
        return {
            "collections": collections,
            "links": [
                {"rel": "self", "type": JSON, "href": f"{root}collections", "title": "Collections"},
                {"rel": "parent", "type": JSON, "href": root, "title": "SnapEarth"},
                {"rel": "root", "type": JSON, "href": root, "title": "SnapEarth"},
            ],
            "numberMatched": len(collections),
            "numberReturned": len(collections),
        }

    def get_collection(self, collection_id: str, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self._collection(self.catalog.get_collection(collection_id), base_url(kwargs["request"]))

    def get_item(self, item_id: str, collection_id: str, **kwargs: Any) -> Any:
        item = self.catalog.get_item(collection_id, item_id)
        return GeoJSONResponse(self._decorate(item, base_url(kwargs["request"])))

    def _decorate(self, item: dict[str, Any], root: str) -> dict[str, Any]:
        if "links" in item or "assets" in item:
            self.assets.rewrite(item, root)
        links = item_links(item, root)
        links += _own_links(item.get("links"))
        links += item_render_links(item, root, base=links[0]["href"])
        item["links"] = links
        return item

    def _search(
        self,
        search: SearchRequest,
        request: Request,
        post_body: dict[str, Any] | None,
        fields: FieldSelection | None = None,
    ) -> Any:
        self.queryables.check_collections(search.collections)
        self.queryables.check(search)
        page = self.catalog.search(search)
        root = base_url(request)
        features = [self._decorate(item, root) for item in page.items]
        if fields is not None:
            features = [fields.apply(item) for item in features]
        self_href = str(request.url)
        if request.app.state.snapearth_settings.public_url:
            self_href = root.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        links: list[dict[str, Any]] = [
            {"rel": "self", "type": GEOJSON, "href": self_href},
            {"rel": "root", "type": JSON, "href": root},
        ]
        if page.next_token:
            if post_body is None:
                query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                query.append(("token", page.next_token))
                href = self_href.split("?", 1)[0] + "?" + urlencode(query)
                links.append({"rel": "next", "type": GEOJSON, "method": "GET", "href": href})
            else:
                body = {**post_body, "token": page.next_token}
                links.append(
                    {"rel": "next", "type": GEOJSON, "method": "POST", "href": self_href, "body": body, "merge": False}
                )
        collection = {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberReturned": len(features),
        }
        if page.number_matched is not None:
            collection["numberMatched"] = page.number_matched
        return GeoJSONResponse(collection)

    def get_search(self, **kwargs: Any) -> Any:  # type: ignore[override]
        request: Request = kwargs.pop("request")
        return self._search(build_search(kwargs), request, None, FieldSelection.parse(kwargs.get("fields")))

    def post_search(self, search_request: BaseModel, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        params = {name: getattr(search_request, name, None) for name in type(search_request).model_fields}
        if "fields" in search_request.model_fields_set and params.get("fields") is None:
            raise InvalidInputError("fields: null is not allowed; give an object with include/exclude", field="fields")
        body = search_request.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)
        fields = FieldSelection.parse(params.get("fields")) if "fields" in search_request.model_fields_set else None
        return self._search(build_search(params), request, body, fields)

    def item_collection(self, collection_id: str, **kwargs: Any) -> Any:  # type: ignore[override]
        request: Request = kwargs.pop("request")
        if collection_id not in self.queryables.collection_ids()[1]:
            self.catalog.get_collection(collection_id)  # 404 for an unknown collection (or one just created)
        search = build_search({**kwargs, "collections": [collection_id]})
        return self._search(search, request, None, FieldSelection.parse(kwargs.get("fields")))


@attr.s
class FiltersClient(BaseFiltersClient):
    queryables: Queryables = attr.ib(kw_only=True)

    def get_queryables(self, collection_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        root = base_url(kwargs["request"])
        if collection_id is None:
            properties = self.queryables.union()
            schema_id = f"{root}queryables"
            title = "Queryables of all SnapEarth collections"
        else:
            properties = self.queryables.of(collection_id)
            schema_id = f"{root}collections/{quote(collection_id)}/queryables"
            title = f"Queryables of {collection_id}"
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": schema_id,
            "type": "object",
            "title": title,
            "properties": properties,
            "additionalProperties": False,
        }


@attr.s
class TransactionsClient(BaseTransactionsClient):
    """Create, replace, patch and delete items and collections (behind the API key, see ``require_api_key``)."""

    catalog: Catalog = attr.ib(kw_only=True)
    queryables: Queryables = attr.ib(kw_only=True)

    @staticmethod
    def _body(value: Any) -> dict[str, Any]:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dict(value)

    def _add(self, items: list[dict[str, Any]], mode: str) -> None:
        report = self.catalog.add_items(items, mode=mode)  # type: ignore[arg-type]
        if report.refused:
            refusal = report.refused[0]
            raise InvalidInputError(str(refusal), field=refusal.field or "item")
        if mode == "insert" and report.skipped:
            raise ConflictError(f"item {items[0].get('id')!r} already exists", field="id")

    def create_item(self, collection_id: str, item: Any, **kwargs: Any) -> Any:
        body = self._body(item)
        self.catalog.get_collection(collection_id)
        features = body.get("features") if body.get("type") == "FeatureCollection" else [body]
        if not isinstance(features, list) or not features:
            raise InvalidInputError("body: expected a STAC Item or a non-empty ItemCollection", field="body")
        for feature in features:
            if feature.get("collection") not in (None, collection_id):
                raise InvalidInputError(
                    f"collection: item says {feature.get('collection')!r} but was posted to {collection_id!r}",
                    field="collection",
                )
            feature["collection"] = collection_id
            if feature.get("id") is not None:
                try:
                    self.catalog.get_item(collection_id, str(feature["id"]))
                except NotFoundError:
                    pass
                else:
                    raise ConflictError(f"id: item {feature['id']!r} already exists in {collection_id!r}", field="id")
        self._add(features, "insert")
        self.queryables.forget(collection_id)
        if len(features) == 1:
            stored = self.catalog.get_item(collection_id, features[0]["id"])
            root = base_url(kwargs["request"])
            stored["links"] = item_links(stored, root) + _own_links(stored.get("links"))
            return GeoJSONResponse(stored, status_code=201, headers={"Location": stored["links"][0]["href"]})
        return JSONResponse({"inserted": len(features)}, status_code=201)

    def update_item(self, collection_id: str, item_id: str, item: Any, **kwargs: Any) -> Any:
        body = self._body(item)
        if body.get("id") not in (None, item_id):
            raise InvalidInputError(f"id: body says {body.get('id')!r}, the URL {item_id!r}", field="id")
        if body.get("collection") not in (None, collection_id):
            raise InvalidInputError(
                f"collection: body says {body.get('collection')!r}, the URL {collection_id!r}", field="collection"
            )
        self.catalog.get_item(collection_id, item_id)  # 404 when it does not exist
        body.update(id=item_id, collection=collection_id)
        self._add([body], "upsert")
        self.queryables.forget(collection_id)
        return Response(status_code=204)

    def patch_item(self, collection_id: str, item_id: str, patch: Any, **kwargs: Any) -> Any:
        """A JSON merge patch (RFC 7396, an object) or a JSON Patch (RFC 6902, a list of operations)."""
        current = self.catalog.get_item(collection_id, item_id)
        if isinstance(patch, list):
            operations = [op.model_dump(by_alias=True) if isinstance(op, BaseModel) else op for op in patch]
            patched = _json_patch(current, operations)
        else:
            patched = _merge_patch(current, self._body(patch))
        return self.update_item(collection_id, item_id, patched, **kwargs)

    def delete_item(self, item_id: str, collection_id: str, **kwargs: Any) -> Any:
        """Idempotent: deleting an item that is already gone succeeds (204), as STAC clients expect."""
        self.catalog.get_collection(collection_id)
        with contextlib.suppress(NotFoundError):
            self.catalog.delete_item(collection_id, item_id)
        self.queryables.forget(collection_id)
        return Response(status_code=204)

    def create_collection(self, collection: Any, **kwargs: Any) -> Any:
        body = self._body(collection)
        self.catalog.create_collection(body)
        self.queryables.forget(body["id"])
        stored = self.catalog.get_collection(body["id"])
        root = base_url(kwargs["request"])
        stored["links"] = collection_links(stored["id"], root) + _own_links(stored.get("links"))
        return JSONResponse(stored, status_code=201, headers={"Location": stored["links"][0]["href"]})

    def update_collection(self, collection_id: str, collection: Any, **kwargs: Any) -> Any:
        body = self._body(collection)
        if body.get("id") not in (None, collection_id):
            raise InvalidInputError(f"id: body says {body.get('id')!r}, the URL {collection_id!r}", field="id")
        body["id"] = collection_id
        self.catalog.update_collection(body)
        self.queryables.forget(collection_id)
        return Response(status_code=204)

    def patch_collection(self, collection_id: str, patch: Any, **kwargs: Any) -> Any:
        current = self.catalog.get_collection(collection_id)
        if isinstance(patch, list):
            operations = [op.model_dump(by_alias=True) if isinstance(op, BaseModel) else op for op in patch]
            return self.update_collection(collection_id, _json_patch(current, operations), **kwargs)
        return self.update_collection(collection_id, _merge_patch(current, self._body(patch)), **kwargs)

    def delete_collection(self, collection_id: str, **kwargs: Any) -> Any:
        self.catalog.delete_collection(collection_id, force=True)
        self.queryables.forget(collection_id)
        return Response(status_code=204)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    """An RFC 6901 JSON Pointer as its reference tokens."""
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise InvalidInputError(f"body: {path!r} is not a JSON Pointer such as '/properties/foo'", field="body")
    return [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")[1:]]


def _resolve(document: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    """The container holding the last token of ``tokens``, and that token."""
    if not tokens:
        raise InvalidInputError(f"body: the operation on {path!r} would replace the whole document", field="body")
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise InvalidInputError(f"body: path {path!r} does not exist in the document", field="body")
    if not isinstance(node, dict | list):
        raise InvalidInputError(f"body: path {path!r} does not exist in the document", field="body")
    return node, tokens[-1]


def _get(document: Any, path: str) -> Any:
    container, token = _resolve(document, _pointer(path), path)
    if isinstance(container, dict) and token in container:
        return container[token]
    if isinstance(container, list) and token.isdigit() and int(token) < len(container):
        return container[int(token)]
    raise InvalidInputError(f"body: path {path!r} does not exist in the document", field="body")


def _remove(document: Any, path: str) -> Any:
    value = _get(document, path)
    container, token = _resolve(document, _pointer(path), path)
    if isinstance(container, dict):
        del container[token]
    else:
        del container[int(token)]
    return value


def _add(document: Any, path: str, value: Any) -> None:
    container, token = _resolve(document, _pointer(path), path)
    if isinstance(container, dict):
        container[token] = value
    elif token == "-":
        container.append(value)
    elif token.isdigit() and int(token) <= len(container):
        container.insert(int(token), value)
    else:
        raise InvalidInputError(f"body: array index in {path!r} is out of range", field="body")


def _json_patch(target: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """Apply a JSON Patch (RFC 6902) to a copy of ``target``; a failed ``test`` is a conflict (409)."""
    document = orjson.loads(orjson.dumps(target))
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
            raise InvalidInputError(f"body: operation {number} needs 'op' and 'path'", field="body")
        op, path = operation.get("op"), operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise InvalidInputError(f"body: operation {number} ({op}) needs a 'value'", field="body")
        if op == "add":
            _add(document, path, operation["value"])
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            _remove(document, path)
            _add(document, path, operation["value"])
        elif op == "test":
            if _get(document, path) != operation["value"]:
                raise ConflictError(f"body: test of {path!r} failed (operation {number})", field="body")
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise InvalidInputError(f"body: operation {number} ({op}) needs 'from'", field="body")
            if op == "move" and (path + "/").startswith(source + "/") and path != source:
                raise InvalidInputError(f"body: cannot move {source!r} into itself", field="body")
            value = _remove(document, source) if op == "move" else orjson.loads(orjson.dumps(_get(document, source)))
            _add(document, path, value)
        else:
            raise InvalidInputError(f"body: operation {number} has unknown op {op!r}", field="body")
    if not isinstance(document, dict):
        raise InvalidInputError("body: the patched document is not an object", field="body")
    return document


@attr.s
class AggregationClient(BaseAggregationClient):
    catalog: Catalog = attr.ib(kw_only=True)

    def get_aggregations(self, collection_id: str | None = None, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        root = base_url(kwargs["request"])
        if collection_id is not None:
            self.catalog.get_collection(collection_id)
        here = f"{root}collections/{quote(collection_id)}/aggregations" if collection_id else f"{root}aggregations"
        return {
            "type": "AggregationCollection",
            "aggregations": [
                {
                    "name": name,
                    "data_type": "integer" if name == "total_count" else "frequency_distribution",
                    "description": text,
                }
                for name, text in AGGREGATIONS.items()
            ],
            "links": [{"rel": "root", "type": JSON, "href": root}, {"rel": "self", "type": JSON, "href": here}],
        }

    def aggregate(self, aggregate_request: BaseModel | None = None, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """GET passes the parameters as keywords, POST the body model as the first argument."""
        request: Request = kwargs.pop("request")
        collection_id = request.path_params.get("collection_id")
        params = dict(kwargs)
        if aggregate_request is not None:
            params = {name: getattr(aggregate_request, name, None) for name in type(aggregate_request).model_fields}
        names = params.pop("aggregations", None) or ["total_count"]
        if collection_id:
            self.catalog.get_collection(collection_id)
            params["collections"] = [collection_id]
        params["limit"] = 1
        search = build_search(params)
        result = self.catalog.aggregate(search, list(names))
        aggregations = result.get("aggregations", result) if isinstance(result, dict) else result
        if isinstance(aggregations, dict):
            aggregations = [
                {"name": k, **v} if isinstance(v, dict) else {"name": k, "value": v} for k, v in aggregations.items()
            ]
        root = base_url(request)
        return {
            "type": "AggregationCollection",
            "aggregations": aggregations,
            "links": [
                {"rel": "root", "type": JSON, "href": root},
                {"rel": "self", "type": JSON, "href": str(request.url)},
            ],
        }


# --- assembly ------------------------------------------------------------------------------------------------------


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def check_datetime(value: str | None) -> None:
    """``datetime`` must be RFC 3339 date-times (``..`` or empty for an open end), start before end."""
    if value is None:
        return
    ends = value.split("/")
    if len(ends) > 2 or not value.strip():
        raise InvalidInputError(f"datetime: {value!r} is not an RFC 3339 date-time or interval", field="datetime")
    for end in ends:
        if end not in ("", "..") and not _RFC3339.match(end):
            raise InvalidInputError(
                f"datetime: {end!r} is not an RFC 3339 date-time (e.g. 2024-05-01T00:00:00Z)", field="datetime"
            )
    from snapearth.catalog.search_params import parse_datetime

    parse_datetime(value)  # open on both ends, start after end: the catalog names the reason


def _check_datetime(instance: Any, attribute: Any, value: str | None) -> None:
    check_datetime(value)


@attr.s
class SearchGetRequest(BaseSearchGetRequest):
    datetime: DateTimeQueryType = attr.ib(default=None, validator=_check_datetime)


class FilterPostRequest(FilterExtensionPostRequest):
    """POST ``filter`` in either encoding: CQL2 JSON (an object) or CQL2 text (a string, as pystac-client sends)."""

    filter_expr: dict[str, Any] | str | None = Field(  # type: ignore[assignment]
        None, alias="filter", description="A CQL2 filter expression."
    )
    filter_lang: Literal["cql2-json", "cql2-text"] | None = Field(  # type: ignore[assignment]
        None, alias="filter-lang", description="The CQL2 encoding of `filter` (default: from its JSON type)."
    )


@attr.s
class SnapEarthFilterExtension(FilterExtension):
    POST: type[BaseModel] = FilterPostRequest


class SearchPostRequest(BaseSearchPostRequest):
    """POST /search; a single collection or id given as a string is accepted as a list of one."""

    @field_validator("collections", "ids", mode="before")
    @classmethod
    def _one_as_list(cls, value: Any) -> Any:
        return [part for part in value.split(",") if part] if isinstance(value, str) else value


@attr.s
class ItemsGetRequest(ItemCollectionUri):
    datetime: DateTimeQueryType = attr.ib(default=None, validator=_check_datetime)


class TransactionItem(StacItem):
    """A STAC item as a transaction body: ``links`` may be left out, the server writes its own.

    The Transaction extension lets a client send a partial item the server can complete into a valid one (its
    ``self``/``parent``/``collection``/``root`` links are ours anyway); stac-pydantic's ``Item`` requires them.
    """

    links: Links | None = None  # type: ignore[assignment]


class TransactionItemCollection(StacItemCollection):
    features: Sequence[TransactionItem]


@attr.s
class CreateItemRequest(PostItem):
    item: Annotated[TransactionItem | TransactionItemCollection, Body()] = attr.ib(default=None)


@attr.s
class ReplaceItemRequest(PutItem):
    item: Annotated[TransactionItem, Body()] = attr.ib(default=None)


@attr.s
class SnapEarthTransactionExtension(TransactionExtension):
    """stac-fastapi's transaction routes, with item bodies that may leave ``links`` out."""

    def register_create_item(self) -> None:
        self.router.add_api_route(
            name="Create Item",
            path="/collections/{collection_id}/items",
            status_code=201,
            response_model=None,
            responses={201: {"content": {GEOJSON: {}}, "model": StacItem}},
            response_class=self.response_class,
            methods=["POST"],
            endpoint=create_async_endpoint(self.client.create_item, CreateItemRequest),
            dependencies=self.route_dependencies,
        )

    def register_update_item(self) -> None:
        self.router.add_api_route(
            name="Update Item",
            path="/collections/{collection_id}/items/{item_id}",
            status_code=204,
            response_model=None,
            responses={204: {"description": "Replaced"}},
            response_class=self.response_class,
            methods=["PUT"],
            endpoint=create_async_endpoint(self.client.update_item, ReplaceItemRequest),
            dependencies=self.route_dependencies,
        )


def require_api_key(request: Request) -> None:
    """Writes need ``SNAPEARTH_API_KEY``: in ``X-API-Key``, ``Authorization: Bearer``, or ``?api_key=``."""
    expected = request.app.state.snapearth_settings.api_key
    if not expected:
        raise ForbiddenError("transactions are disabled on this server: set SNAPEARTH_API_KEY", field="api_key")
    supplied = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization", "")
    if not supplied and authorization.lower().startswith("bearer "):
        supplied = authorization[7:].strip()
    supplied = supplied or request.query_params.get("api_key")
    if not supplied:
        raise AuthenticationError(
            "api_key: missing; send it as X-API-Key, Authorization: Bearer <key> or ?api_key=", field="api_key"
        )
    if not secrets.compare_digest(supplied.encode(), expected.encode()):
        raise ForbiddenError("api_key: not valid for this server", field="api_key")


TRANSACTION_SCOPES: list[dict[str, str]] = [
    {"path": "/collections", "method": "POST"},
    {"path": "/collections/{collection_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/items", "method": "POST"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "DELETE"},
]


def add_stac_api(app: FastAPI, catalog: Catalog, settings: Settings) -> StacApi:
    """Mount the STAC API at the root of ``app`` (landing page ``/``, OpenAPI at ``/api``)."""
    queryables = Queryables(catalog)
    assets = AssetUrls(settings.data)
    search_extensions: list[ApiExtension] = [
        SnapEarthFilterExtension(client=FiltersClient(queryables=queryables)),
        SortExtension(),
        FieldsExtension(),
        QueryExtension(),
        FreeTextExtension(),
        TokenPaginationExtension(),
    ]
    item_extensions: list[ApiExtension] = [
        ItemCollectionFilterExtension(client=FiltersClient(queryables=queryables)),
        SortExtension(),
        FieldsExtension(),
        QueryExtension(),
        TokenPaginationExtension(),
    ]
    get_model = create_get_request_model(search_extensions, base_model=SearchGetRequest)
    post_model = create_post_request_model(search_extensions, base_model=SearchPostRequest)
    aggregation = AggregationExtension(client=AggregationClient(catalog=catalog))
    aggregation.GET = create_get_request_model(search_extensions, base_model=AggregationExtensionGetRequest)
    aggregation.POST = create_post_request_model(search_extensions, base_model=AggregationExtensionPostRequest)
    transactions = SnapEarthTransactionExtension(
        client=TransactionsClient(catalog=catalog, queryables=queryables),
        settings=ApiSettings(),
        response_class=JSONResponse,
    )
    api_settings = ApiSettings(
        stac_fastapi_title="SnapEarth",
        stac_fastapi_description="The Copernicus Sentinel archive with AI-derived signatures, as a STAC API.",
        stac_fastapi_version=__version__,
        stac_fastapi_landing_id="snapearth",
        openapi_url="/api",
        docs_url="/api.html",
    )
    items_model = cast(
        type[APIRequest],
        create_request_model(
            "ItemCollectionUri", base_model=ItemsGetRequest, extensions=item_extensions, request_type="GET"
        ),
    )
    return StacApi(
        app=app,
        settings=api_settings,
        client=CoreClient(catalog=catalog, assets=assets, queryables=queryables, landing_page_id="snapearth"),
        extensions=[*search_extensions, aggregation, transactions],
        exceptions={},
        middlewares=[],
        response_class=JSONResponse,
        search_get_request_model=get_model,
        search_post_request_model=post_model,
        items_get_request_model=items_model,
        route_dependencies=[(TRANSACTION_SCOPES, [Depends(require_api_key)])],  # type: ignore[list-item]
    )
