"""Backend-neutral reading of a STAC search: every backend searches with a validated ``ParsedSearch``.

What a client sends (``SearchRequest``: GET strings already split, or a POST body) is checked here once, with
errors naming the parameter and the reason; filters of all three dialects (CQL2 text, CQL2 JSON, the STAC
``query`` extension) come out as one CQL2 JSON tree, which pgstac takes as is and the SQLite backend compiles.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import orjson

from snapearth.catalog.base import Fields, SearchRequest, SortKey, parse_rfc3339
from snapearth.catalog.geometry import Box, GeometryError, geometry_boxes, validate_geojson_geometry
from snapearth.errors import InvalidInputError

MAX_LIMIT = 10_000
DEFAULT_SORT = (SortKey(field="datetime", direction="desc"),)

# CQL2 JSON operators the backends understand (cql2-json spec names, plus the aliases cql2-rs emits).
COMPARISON_OPS = frozenset({"=", "<>", "<", "<=", ">", ">="})
LOGICAL_OPS = frozenset({"and", "or", "not"})
SPATIAL_OPS = frozenset(
    {"s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains"}
)
TEMPORAL_OPS = frozenset(
    {
        "t_after",
        "t_before",
        "t_contains",
        "t_disjoint",
        "t_during",
        "t_equals",
        "t_finishedby",
        "t_finishes",
        "t_intersects",
        "t_meets",
        "t_metby",
        "t_overlappedby",
        "t_overlaps",
        "t_startedby",
        "t_starts",
    }
)
ARRAY_OPS = frozenset({"a_equals", "a_contains", "a_containedby", "a_overlaps"})
OTHER_OPS = frozenset({"like", "between", "in", "isNull", "casei", "accenti", "+", "-", "*", "/"})
KNOWN_OPS = COMPARISON_OPS | LOGICAL_OPS | SPATIAL_OPS | TEMPORAL_OPS | ARRAY_OPS | OTHER_OPS

# STAC ``query`` extension operators -> CQL2.
_QUERY_OPS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


@dataclass(frozen=True)
class TimeRange:
    """A closed interval; ``None`` is an open end (``..``)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class ParsedSearch:
    """A search the backends can run without re-checking anything."""

    boxes: tuple[Box, ...] | None  # bbox or intersects, split at the antimeridian (west <= east in each)
    geometry: dict[str, Any] | None  # the spatial filter as GeoJSON (bbox as a (Multi)Polygon)
    time: TimeRange | None
    collections: tuple[str, ...] | None
    ids: tuple[str, ...] | None
    filter: dict[str, Any] | None  # CQL2 JSON: ``filter`` and ``query`` combined with "and"
    sortby: tuple[SortKey, ...]
    fields: Fields | None
    limit: int
    token: str | None
    count: bool
    q: tuple[str, ...] | None = None  # free-text terms (any of them, case-insensitive)


def parse_search(request: SearchRequest) -> ParsedSearch:
    """Validate and normalise a search request; raises ``InvalidInputError`` naming the parameter."""
    if request.bbox is not None and request.intersects is not None:
        raise InvalidInputError("bbox and intersects: give one spatial filter, not both", field="intersects")
    boxes: tuple[Box, ...] | None = None
    geometry: dict[str, Any] | None = None
    if request.bbox is not None:
        boxes = parse_bbox(request.bbox)
        geometry = boxes_geometry(boxes)
    elif request.intersects is not None:
        geometry = parse_intersects(request.intersects)
        boxes = tuple(geometry_boxes(geometry))
    filters: list[dict[str, Any]] = []
    if request.filter is not None:
        filters.append(parse_filter(request.filter, request.filter_lang))
    if request.query:
        filters.append(query_to_cql2(request.query))
    combined: dict[str, Any] | None = None
    if len(filters) == 1:
        combined = filters[0]
    elif filters:
        combined = {"op": "and", "args": filters}
    return ParsedSearch(
        boxes=boxes,
        geometry=geometry,
        time=parse_datetime(request.datetime) if request.datetime else None,
        collections=_parse_names(request.collections, "collections"),
        ids=_parse_names(request.ids, "ids"),
        filter=combined,
        sortby=parse_sortby(request.sortby),
        fields=request.fields,
        limit=parse_limit(request.limit),
        token=request.token or None,
        count=request.count,
        q=parse_free_text(request.q),
    )


def parse_free_text(terms: list[str] | None) -> tuple[str, ...] | None:
    """STAC free-text ``q``: terms (comma-separated in GET) matched case-insensitively; any term matches."""
    if terms is None:
        return None
    words = [word.strip().strip('"').casefold() for term in terms for word in term.split(",")]
    words = [word for word in words if word]
    if not words:
        raise InvalidInputError("q: give at least one word to look for", field="q")
    return tuple(dict.fromkeys(words))


def parse_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit: {limit} is out of range [1, {MAX_LIMIT}]", field="limit")
    return limit


def _parse_names(values: list[str] | None, field: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    cleaned = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{field}: {value!r} is not a non-empty string", field=field)
        cleaned.append(value.strip())
    return tuple(dict.fromkeys(cleaned))


# --- space -------------------------------------------------------------------------------------------------------


def parse_bbox(values: list[float] | str) -> tuple[Box, ...]:
    """``[west, south, east, north]`` or the 6-number 3D form; west > east crosses the antimeridian."""
    if isinstance(values, str):
        try:
            values = [float(v) for v in values.split(",")]
        except ValueError:
            raise InvalidInputError(
                f"bbox: {values!r} is not a comma-separated list of numbers", field="bbox"
            ) from None
    numbers = list(values)
    if len(numbers) not in (4, 6):
        raise InvalidInputError(f"bbox: expected 4 or 6 numbers, got {len(numbers)}", field="bbox")
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise InvalidInputError(f"bbox: {number!r} is not a finite number", field="bbox")
    if len(numbers) == 6:
        west, south, _zmin, east, north, _zmax = numbers
    else:
        west, south, east, north = numbers
    for name, value, limit in (("west", west, 180), ("east", east, 180), ("south", south, 90), ("north", north, 90)):
        if not -limit <= value <= limit:
            raise InvalidInputError(f"bbox: {name} {value:g} is out of range [-{limit}, {limit}]", field="bbox")
    if south > north:
        raise InvalidInputError(f"bbox: south {south:g} is greater than north {north:g}", field="bbox")
    if west > east:  # crosses the antimeridian
        return (Box(west, south, 180.0, north), Box(-180.0, south, east, north))
    return (Box(west, south, east, north),)


def boxes_geometry(boxes: tuple[Box, ...]) -> dict[str, Any]:
    polygons = [
        [[[b.west, b.south], [b.east, b.south], [b.east, b.north], [b.west, b.north], [b.west, b.south]]] for b in boxes
    ]
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def parse_intersects(geometry: Any, field: str = "intersects") -> dict[str, Any]:
    try:
        return validate_geojson_geometry(geometry)
    except GeometryError as exc:
        raise InvalidInputError(f"{field}: {exc}", field=field) from None


# --- time --------------------------------------------------------------------------------------------------------


def parse_instant(text: str, *, end_of_day: bool = False, field: str = "datetime") -> datetime:
    """An RFC 3339 timestamp, or a plain date (its first instant, or its last with ``end_of_day``)."""
    value = text.strip()
    if len(value) == 10:
        try:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidInputError(f"{field}: {text!r} is not a date (YYYY-MM-DD)", field=field) from None
        if end_of_day:
            return datetime.combine(day.date(), time.max, tzinfo=UTC)
        return day
    if "T" not in value.upper():
        raise InvalidInputError(f"{field}: {text!r} is not an RFC 3339 date-time", field=field)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise InvalidInputError(f"{field}: {text!r} is not an RFC 3339 date-time", field=field) from None


def parse_datetime(text: str) -> TimeRange:
    """``instant``, ``start/end``, ``../end``, ``start/..``; an inverted interval is an error."""
    parts = text.split("/")
    if len(parts) == 1:
        if parts[0].strip() in ("", ".."):
            raise InvalidInputError(f"datetime: {text!r} is neither an instant nor an interval", field="datetime")
        instant = parse_instant(parts[0])
        last = parse_instant(parts[0], end_of_day=True) if len(parts[0].strip()) == 10 else instant
        return TimeRange(instant, last)
    if len(parts) != 2:
        raise InvalidInputError(f"datetime: {text!r} has more than one '/'", field="datetime")
    raw_start, raw_end = (p.strip() for p in parts)
    start_at = None if raw_start in ("", "..") else parse_instant(raw_start)
    end_at = None if raw_end in ("", "..") else parse_instant(raw_end, end_of_day=True)
    if start_at is None and end_at is None:
        raise InvalidInputError("datetime: an interval needs at least one bound ('../..' is not one)", field="datetime")
    if start_at is not None and end_at is not None and start_at > end_at:
        raise InvalidInputError(f"datetime: interval start {raw_start} is after its end {raw_end}", field="datetime")
    return TimeRange(start_at, end_at)


# --- sorting and fields ------------------------------------------------------------------------------------------


def parse_sortby(value: list[SortKey] | str | None) -> tuple[SortKey, ...]:
    """A list of keys, or the GET form ``-datetime,+id``; default newest first."""
    if value is None:
        return DEFAULT_SORT
    keys: list[SortKey] = []
    if isinstance(value, str):
        for raw in value.split(","):
            token = raw.strip()
            if not token:
                continue
            keys.append(SortKey(field=token.lstrip("+- "), direction="desc" if token.startswith("-") else "asc"))
    else:
        keys = list(value)
    seen = set()
    for key in keys:
        name = key.field.strip()
        if not name:
            raise InvalidInputError("sortby: empty field name", field="sortby")
        check_property_name(name, field="sortby")
        if name in seen:
            raise InvalidInputError(f"sortby: {name!r} appears twice", field="sortby")
        seen.add(name)
    return tuple(keys) or DEFAULT_SORT


def parse_fields(value: str | None) -> Fields | None:
    """The GET form ``id,properties.datetime,-assets``."""
    if not value:
        return None
    include, exclude = [], []
    for raw in value.split(","):
        token = raw.strip()
        if not token:
            continue
        if token.startswith("-"):
            exclude.append(token[1:])
        else:
            include.append(token.lstrip("+"))
    return Fields(include=include, exclude=exclude)


_ALWAYS_INCLUDED = ("type", "stac_version", "id", "collection")
_DEFAULT_INCLUDED = ("geometry", "bbox", "links", "assets", "stac_extensions", "properties.datetime")


def apply_fields(item: dict[str, Any], fields: Fields | None) -> dict[str, Any]:
    """The STAC fields extension: ``include`` narrows the item, ``exclude`` removes from it.

    ``id``, ``type``, ``stac_version`` and ``collection`` are always kept (links and paging need them).
    """
    if fields is None or (not fields.include and not fields.exclude):
        return item
    if fields.include:
        result: dict[str, Any] = {}
        for path in (*_ALWAYS_INCLUDED, *fields.include):
            copy_path(item, result, path.split("."))
    else:
        result = orjson.loads(orjson.dumps(item))
    for path in fields.exclude:
        if path in _ALWAYS_INCLUDED:
            continue
        drop_path(result, path.split("."))
    return result


def copy_path(source: dict[str, Any], target: dict[str, Any], parts: list[str]) -> None:
    """Copy ``a.b.c`` of ``source`` into ``target``, creating the dicts on the way."""
    head, rest = parts[0], parts[1:]
    if head not in source:
        return
    if not rest:
        target[head] = source[head]
        return
    if isinstance(source[head], dict):
        child = target.setdefault(head, {})
        if isinstance(child, dict):
            copy_path(source[head], child, rest)


def drop_path(target: dict[str, Any], parts: list[str]) -> None:
    """Remove ``a.b.c`` from ``target``; nested dicts on the way are copied, never changed in place."""
    head, rest = parts[0], parts[1:]
    if head not in target:
        return
    if not rest:
        del target[head]
    elif isinstance(target[head], dict):
        target[head] = dict(target[head])
        drop_path(target[head], rest)


# --- filters -----------------------------------------------------------------------------------------------------

# Property names: letters, digits, ``_ : - .`` (nesting); nothing else can reach a JSON path.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-.")


def check_property_name(name: str, *, field: str = "filter") -> str:
    if not name or len(name) > 200 or not set(name) <= _NAME_CHARS or name.startswith(".") or ".." in name:
        raise InvalidInputError(
            f"{field}: property name {name!r} is not valid (letters, digits, '_', ':', '-' and '.' only)", field=field
        )
    return name


def parse_filter(value: dict[str, Any] | str, lang: str | None = None) -> dict[str, Any]:
    """CQL2 text or JSON -> one CQL2 JSON tree, checked; malformed input names ``filter`` and the reason."""
    import cql2

    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInputError("filter: empty expression", field="filter")
        if lang == "cql2-json" or (lang is None and text.startswith("{")):
            try:
                tree = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise InvalidInputError(f"filter: not valid CQL2 JSON: {exc}", field="filter") from None
        else:
            try:
                tree = cql2.parse_text(text).to_json()
            except Exception as exc:  # cql2 raises its own ParseError or a bare Exception
                reason = " ".join(str(exc).split())
                raise InvalidInputError(f"filter: not valid CQL2 text: {reason}", field="filter") from None
    else:
        if lang == "cql2-text":
            raise InvalidInputError("filter: filter-lang is cql2-text but the filter is a JSON object", field="filter")
        tree = value
    if not isinstance(tree, dict):
        raise InvalidInputError("filter: a CQL2 JSON filter must be an object", field="filter")
    check_cql2(tree)
    normalized: dict[str, Any] = _normalize(tree)
    return normalized


def _normalize(node: Any) -> Any:
    """The one form both backends take: ``{"bbox": [...]}`` literals become GeoJSON (split at the antimeridian)."""
    if isinstance(node, list):
        return [_normalize(child) for child in node]
    if not isinstance(node, dict):
        return node
    if "bbox" in node and isinstance(node["bbox"], list) and "op" not in node:
        return boxes_geometry(parse_bbox(node["bbox"]))
    if "args" in node:
        return {**node, "args": [_normalize(arg) for arg in node["args"]]}
    return node


def check_cql2(node: Any, *, depth: int = 0) -> None:
    """Walk a CQL2 JSON tree: every operator known, arities right, property names safe."""
    if depth > 100:
        raise InvalidInputError("filter: expression nested too deeply", field="filter")
    if isinstance(node, list):
        for child in node:
            check_cql2(child, depth=depth + 1)
        return
    if not isinstance(node, dict):
        return
    if "property" in node:
        if not isinstance(node["property"], str):
            raise InvalidInputError("filter: a property name must be a string", field="filter")
        check_property_name(node["property"])
        return
    if "timestamp" in node or "date" in node:
        key = "timestamp" if "timestamp" in node else "date"
        if not isinstance(node[key], str):
            raise InvalidInputError(f"filter: {key} must be a string", field="filter")
        parse_instant(node[key], field="filter")
        return
    if "interval" in node:
        bounds = node["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise InvalidInputError("filter: an interval has exactly two bounds", field="filter")
        for bound in bounds:
            if isinstance(bound, str):
                if bound != "..":
                    parse_instant(bound, field="filter")
            else:
                check_cql2(bound, depth=depth + 1)
        return
    if "bbox" in node:
        if not isinstance(node["bbox"], list):
            raise InvalidInputError("filter: bbox must be a list of numbers", field="filter")
        parse_bbox(node["bbox"])
        return
    if ("type" in node and "coordinates" in node) or node.get("type") == "GeometryCollection":
        parse_intersects(node, field="filter")
        return
    op = node.get("op")
    if op is None:
        raise InvalidInputError(f"filter: object without 'op' or 'property': {_short(node)}", field="filter")
    if op not in KNOWN_OPS:
        raise InvalidInputError(f"filter: unknown operator {op!r}", field="filter")
    args = node.get("args")
    if not isinstance(args, list):
        raise InvalidInputError(f"filter: operator {op!r} needs an 'args' list", field="filter")
    expected = _ARITY.get(op)
    if expected is not None and len(args) != expected:
        raise InvalidInputError(f"filter: operator {op!r} takes {expected} arguments, got {len(args)}", field="filter")
    if op in ("and", "or") and len(args) < 2:
        raise InvalidInputError(f"filter: operator {op!r} needs at least 2 arguments", field="filter")
    if op == "between" and len(args) not in (2, 3):
        raise InvalidInputError("filter: between takes a value and two bounds", field="filter")
    for arg in args:
        check_cql2(arg, depth=depth + 1)


_ARITY: dict[str, int] = {
    **dict.fromkeys(COMPARISON_OPS, 2),
    **dict.fromkeys(SPATIAL_OPS, 2),
    **dict.fromkeys(TEMPORAL_OPS, 2),
    **dict.fromkeys(ARRAY_OPS, 2),
    "not": 1,
    "like": 2,
    "in": 2,
    "isNull": 1,
    "casei": 1,
    "accenti": 1,
    "+": 2,
    "-": 2,
    "*": 2,
    "/": 2,
}


def _short(node: Any) -> str:
    text = orjson.dumps(node).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def query_to_cql2(query: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The STAC ``query`` extension (``{"eo:cloud_cover": {"lt": 20}}``) as CQL2 JSON."""
    clauses: list[dict[str, Any]] = []
    for name, conditions in query.items():
        check_property_name(name, field="query")
        if not isinstance(conditions, dict) or not conditions:
            raise InvalidInputError(f"query: {name}: expected an object of operators, e.g. {{'lt': 20}}", field="query")
        prop = {"property": name}
        for op, operand in conditions.items():
            if op in _QUERY_OPS:
                clauses.append({"op": _QUERY_OPS[op], "args": [prop, operand]})
            elif op == "in":
                if not isinstance(operand, list) or not operand:
                    raise InvalidInputError(f"query: {name}: 'in' needs a non-empty list", field="query")
                clauses.append({"op": "in", "args": [prop, operand]})
            elif op in ("startsWith", "endsWith", "contains"):
                if not isinstance(operand, str):
                    raise InvalidInputError(f"query: {name}: {op!r} needs a string", field="query")
                escaped = operand.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                pattern = {"startsWith": f"{escaped}%", "endsWith": f"%{escaped}", "contains": f"%{escaped}%"}[op]
                clauses.append({"op": "like", "args": [prop, pattern]})
            else:
                known = ", ".join([*_QUERY_OPS, "in", "startsWith", "endsWith", "contains"])
                raise InvalidInputError(f"query: {name}: unknown operator {op!r} (known: {known})", field="query")
    if not clauses:
        raise InvalidInputError("query: no condition given", field="query")
    return clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}


# --- continuation tokens -----------------------------------------------------------------------------------------


def encode_token(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(token: str) -> list[Any]:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidInputError("token: not a continuation token this catalog issued", field="token") from None
    if not isinstance(payload, list):
        raise InvalidInputError("token: not a continuation token this catalog issued", field="token")
    return payload
