"""CQL2 JSON -> a parameterised SQLite WHERE clause over the ``items`` table (alias ``i``).

Only fixed SQL text comes from this module: operators and column names are looked up in whitelists, every
value (including JSON paths built from property names) is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import shapely

from snapearth.catalog.geometry import geometry_boxes
from snapearth.catalog.search_params import check_property_name, parse_instant
from snapearth.errors import InvalidInputError

# Properties held in their own columns (indexed or cheap); everything else is read from the JSON.
TIME_COLUMNS = {"datetime": "i.datetime", "start_datetime": "i.start_datetime", "end_datetime": "i.end_datetime"}
VALUE_COLUMNS = {
    "id": "i.id",
    "collection": "i.collection",
    "eo:cloud_cover": "i.cloud_cover",
    "platform": "i.platform",
    "grid:code": "i.grid_code",
    "sat:relative_orbit": "i.relative_orbit",
}
NOT_NULL_COLUMNS = frozenset({"i.id", "i.collection", "i.datetime", "i.start_datetime", "i.end_datetime"})

_COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITHMETIC = {"+": "+", "-": "-", "*": "*", "/": "/"}
_SWAPPED_SPATIAL = {"s_within": "s_contains", "s_contains": "s_within"}
_SWAPPED_ARRAY = {"a_contains": "a_containedby", "a_containedby": "a_contains"}
OPEN_START = -1e18
OPEN_END = 1e18


def json_path(name: str) -> str:
    """``a.b:c`` -> ``$."a"."b:c"``; names are checked first, so no quote can appear inside."""
    return "$." + ".".join(f'"{part}"' for part in check_property_name(name).split("."))


def property_name(name: str) -> str:
    return name.removeprefix("properties.")


@dataclass
class SqlExpr:
    sql: str
    kind: str = "value"  # value | time | bool | geometry | interval | array
    params: list[Any] = field(default_factory=list)
    interval: tuple[SqlExpr, SqlExpr] | None = None  # start/end expressions of a time value


def property_expr(name: str) -> SqlExpr:
    """The SQL reading property ``name`` of an item."""
    name = property_name(name)
    if name in TIME_COLUMNS:
        return SqlExpr(TIME_COLUMNS[name], "time")
    if name in VALUE_COLUMNS:
        return SqlExpr(VALUE_COLUMNS[name])
    if name == "geometry":
        return SqlExpr("d.geometry", "geometry")
    if name.startswith(("assets.", "links.")) or name in ("bbox", "assets", "links"):
        raise InvalidInputError(f"filter: property {name!r} is not queryable (item properties only)", field="filter")
    return SqlExpr("json_extract(i.properties, ?)", params=[json_path(name)])


class CQL2Compiler:
    """Compile one CQL2 JSON tree; ``boxes_sql`` builds the R*Tree prefilter for spatial operators."""

    def __init__(self, rtree_subquery: Any) -> None:
        self._rtree_subquery = rtree_subquery

    def compile(self, node: Any) -> tuple[str, list[Any]]:
        expr = self._bool(node)
        return expr.sql, expr.params

    # booleans -----------------------------------------------------------------------------------------------
    def _bool(self, node: Any) -> SqlExpr:
        if isinstance(node, bool):
            return SqlExpr("1" if node else "0", "bool")
        if not isinstance(node, dict) or "op" not in node:
            raise InvalidInputError(f"filter: expected a condition, got {node!r}", field="filter")
        op, args = node["op"], node["args"]
        if op in ("and", "or"):
            parts = [self._bool(arg) for arg in args]
            return SqlExpr(
                "(" + f" {op.upper()} ".join(p.sql for p in parts) + ")", "bool", [x for p in parts for x in p.params]
            )
        if op == "not":
            inner = self._bool(args[0])
            return SqlExpr(f"(NOT {inner.sql})", "bool", inner.params)
        if op in _COMPARISONS:
            return self._comparison(_COMPARISONS[op], args[0], args[1])
        if op == "between":
            low, high = (args[1], args[2]) if len(args) == 3 else (args[1][0], args[1][1])
            value, lo, hi = self._pair_values(args[0], low, high)
            return SqlExpr(f"({value.sql} BETWEEN {lo.sql} AND {hi.sql})", "bool", value.params + lo.params + hi.params)
        if op == "in":
            value = self._value(args[0])
            options = args[1]
            if not isinstance(options, list) or not options:
                raise InvalidInputError("filter: 'in' needs a non-empty list of values", field="filter")
            compiled = [self._literal_for(value, option) for option in options]
            marks = ", ".join(c.sql for c in compiled)
            return SqlExpr(
                f"({value.sql} IN ({marks}))", "bool", value.params + [p for c in compiled for p in c.params]
            )
        if op == "like":
            value = self._value(args[0])
            pattern = args[1]
            if not isinstance(pattern, str):
                raise InvalidInputError("filter: the pattern of 'like' must be a string literal", field="filter")
            return SqlExpr(f"({value.sql} GLOB ?)", "bool", [*value.params, like_to_glob(pattern)])
        if op == "isNull":
            value = self._value(args[0])
            return SqlExpr(f"({value.sql} IS NULL)", "bool", value.params)
        if op.startswith("s_"):
            return self._spatial(op, args[0], args[1])
        if op.startswith("t_"):
            return self._temporal(op, args[0], args[1])
        if op.startswith("a_"):
            return self._array(op, args[0], args[1])
        raise InvalidInputError(f"filter: operator {op!r} does not give true/false here", field="filter")

    def _comparison(self, sql_op: str, left: Any, right: Any) -> SqlExpr:
        lhs, rhs = self._pair_values(left, right)
        return SqlExpr(f"({lhs.sql} {sql_op} {rhs.sql})", "bool", lhs.params + rhs.params)

    def _pair_values(self, *nodes: Any) -> list[SqlExpr]:
        """Compile operands together: when one side is a time, the others are read as times."""
        exprs = [self._value(n) for n in nodes]
        if any(e.kind == "time" for e in exprs):
            exprs = [self._as_time(e) for e in exprs]
        return exprs

    # values -------------------------------------------------------------------------------------------------
    def _value(self, node: Any) -> SqlExpr:
        if node is None:
            return SqlExpr("NULL")
        if isinstance(node, bool):
            return SqlExpr("?", params=[1 if node else 0])
        if isinstance(node, int | float):
            return SqlExpr("?", params=[node])
        if isinstance(node, str):
            return SqlExpr("?", params=[node])
        if isinstance(node, list):
            raise InvalidInputError("filter: a list is only allowed with 'in' and the array operators", field="filter")
        if not isinstance(node, dict):
            raise InvalidInputError(f"filter: unsupported value {node!r}", field="filter")
        if "property" in node:
            return property_expr(node["property"])
        if "timestamp" in node:
            instant = parse_instant(node["timestamp"], field="filter").timestamp()
            return SqlExpr("?", "time", [instant])
        if "date" in node:
            start = parse_instant(node["date"], field="filter").timestamp()
            return SqlExpr("?", "time", [start])
        op = node.get("op")
        if op == "casei":
            inner = self._value(node["args"][0])
            return SqlExpr(f"se_casei({inner.sql})", params=inner.params)
        if op == "accenti":
            inner = self._value(node["args"][0])
            return SqlExpr(f"se_accenti({inner.sql})", params=inner.params)
        if op in _ARITHMETIC:
            lhs, rhs = self._value(node["args"][0]), self._value(node["args"][1])
            return SqlExpr(f"({lhs.sql} {_ARITHMETIC[op]} {rhs.sql})", params=lhs.params + rhs.params)
        if op is not None:
            return self._bool(node)
        raise InvalidInputError(f"filter: unsupported value {node!r}", field="filter")

    def _literal_for(self, target: SqlExpr, option: Any) -> SqlExpr:
        expr = self._value(option)
        return self._as_time(expr) if target.kind == "time" else expr

    @staticmethod
    def _as_time(expr: SqlExpr) -> SqlExpr:
        """Times compare as epoch seconds; a JSON property or string literal is parsed on the fly."""
        if expr.kind == "time":
            return expr
        if expr.sql == "?" and isinstance(expr.params[0], str):
            return SqlExpr("?", "time", [parse_instant(expr.params[0], field="filter").timestamp()])
        return SqlExpr(f"se_epoch({expr.sql})", "time", expr.params)

    # temporal -----------------------------------------------------------------------------------------------
    def _interval(self, node: Any) -> tuple[SqlExpr, SqlExpr]:
        if isinstance(node, dict) and "interval" in node:
            bounds = []
            for index, bound in enumerate(node["interval"]):
                if bound == "..":
                    bounds.append(SqlExpr("?", "time", [OPEN_START if index == 0 else OPEN_END]))
                elif isinstance(bound, str):
                    instant = parse_instant(bound, end_of_day=index == 1, field="filter")
                    bounds.append(SqlExpr("?", "time", [instant.timestamp()]))
                else:
                    bounds.append(self._as_time(self._value(bound)))
            return bounds[0], bounds[1]
        if isinstance(node, dict) and "date" in node:
            return (
                SqlExpr("?", "time", [parse_instant(node["date"], field="filter").timestamp()]),
                SqlExpr("?", "time", [parse_instant(node["date"], end_of_day=True, field="filter").timestamp()]),
            )
        if isinstance(node, dict) and node.get("property") in ("datetime", "properties.datetime"):
            return SqlExpr("i.start_datetime", "time"), SqlExpr("i.end_datetime", "time")
        expr = self._as_time(self._value(node))
        return expr, expr

    def _temporal(self, op: str, left: Any, right: Any) -> SqlExpr:
        (s1, e1), (s2, e2) = self._interval(left), self._interval(right)
        relations: dict[str, list[tuple[SqlExpr, str, SqlExpr]]] = {
            "t_after": [(s1, ">", e2)],
            "t_before": [(e1, "<", s2)],
            "t_contains": [(s1, "<", s2), (e1, ">", e2)],
            "t_during": [(s1, ">", s2), (e1, "<", e2)],
            "t_equals": [(s1, "=", s2), (e1, "=", e2)],
            "t_finishedby": [(s1, "<", s2), (e1, "=", e2)],
            "t_finishes": [(s1, ">", s2), (e1, "=", e2)],
            "t_intersects": [(s1, "<=", e2), (e1, ">=", s2)],
            "t_meets": [(e1, "=", s2)],
            "t_metby": [(s1, "=", e2)],
            "t_overlappedby": [(s1, ">", s2), (s1, "<", e2), (e1, ">", e2)],
            "t_overlaps": [(s1, "<", s2), (e1, ">", s2), (e1, "<", e2)],
            "t_startedby": [(s1, "=", s2), (e1, ">", e2)],
            "t_starts": [(s1, "=", s2), (e1, "<", e2)],
        }
        if op == "t_disjoint":
            inner = self._temporal("t_intersects", left, right)
            return SqlExpr(f"(NOT {inner.sql})", "bool", inner.params)
        terms = relations[op]
        sql = " AND ".join(f"{a.sql} {cmp} {b.sql}" for a, cmp, b in terms)
        return SqlExpr(f"({sql})", "bool", [p for a, _, b in terms for p in a.params + b.params])

    # spatial ------------------------------------------------------------------------------------------------
    def _spatial(self, op: str, left: Any, right: Any) -> SqlExpr:
        left_is_item = isinstance(left, dict) and property_name(left.get("property", "")) == "geometry"
        right_is_item = isinstance(right, dict) and property_name(right.get("property", "")) == "geometry"
        if left_is_item == right_is_item:
            raise InvalidInputError(
                f"filter: {op} compares the item 'geometry' property with a literal geometry", field="filter"
            )
        literal = right if left_is_item else left
        if not left_is_item:
            op = _SWAPPED_SPATIAL.get(op, op)
        geometry = _literal_geometry(literal)
        wkb = shapely.to_wkb(shapely.geometry.shape(geometry))
        exact = SqlExpr("se_geom(d.geometry, ?, ?)", "bool", [wkb, op[2:]])
        if op == "s_disjoint":
            return exact
        prefilter_sql, prefilter_params = self._rtree_subquery(geometry_boxes(geometry))
        return SqlExpr(f"(i.rowid IN ({prefilter_sql}) AND {exact.sql})", "bool", prefilter_params + exact.params)

    # arrays -------------------------------------------------------------------------------------------------
    def _array(self, op: str, left: Any, right: Any) -> SqlExpr:
        if isinstance(left, list) and isinstance(right, dict):
            left, right = right, left
            op = _SWAPPED_ARRAY.get(op, op)
        if not (isinstance(left, dict) and "property" in left and isinstance(right, list)):
            raise InvalidInputError(f"filter: {op} compares an array property with a literal array", field="filter")
        name = property_name(left["property"])
        if name in TIME_COLUMNS or name in VALUE_COLUMNS or name == "geometry":
            raise InvalidInputError(f"filter: {op}: property {name!r} is not an array", field="filter")
        import orjson

        path, literal = json_path(name), orjson.dumps(right).decode()
        contains = (
            "NOT EXISTS (SELECT 1 FROM json_each(?) b"
            " WHERE b.value NOT IN (SELECT value FROM json_each(i.properties, ?)))"
        )
        contained = (
            "NOT EXISTS (SELECT 1 FROM json_each(i.properties, ?) a"
            " WHERE a.value NOT IN (SELECT value FROM json_each(?)))"
        )
        is_array = "json_type(i.properties, ?) = 'array'"
        if op == "a_contains":
            return SqlExpr(f"({is_array} AND {contains})", "bool", [path, literal, path])
        if op == "a_containedby":
            return SqlExpr(f"({is_array} AND {contained})", "bool", [path, path, literal])
        if op == "a_overlaps":
            overlaps = (
                "EXISTS (SELECT 1 FROM json_each(i.properties, ?) a WHERE a.value IN (SELECT value FROM json_each(?)))"
            )
            return SqlExpr(f"({overlaps})", "bool", [path, literal])
        return SqlExpr(f"({is_array} AND {contains} AND {contained})", "bool", [path, literal, path, path, literal])


def _literal_geometry(node: Any) -> dict[str, Any]:
    from snapearth.catalog.search_params import boxes_geometry, parse_bbox, parse_intersects

    if isinstance(node, dict) and "bbox" in node:
        return boxes_geometry(parse_bbox(node["bbox"]))
    return parse_intersects(node, field="filter")


def like_to_glob(pattern: str) -> str:
    """CQL2 ``like`` (``%``, ``_``, backslash escapes; case-sensitive) as an SQLite GLOB pattern."""
    out = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out)
