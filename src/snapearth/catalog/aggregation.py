"""Aggregations of a search (STAC aggregation extension shapes), named the same for every backend.

A name may carry one parameter after a colon: ``datetime_frequency:year``, ``cloud_cover_frequency:5``,
``geohash_frequency:4``, ``geohex_grid_frequency:5`` (H3 resolution), ``property_frequency:platform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snapearth.catalog.search_params import check_property_name
from snapearth.errors import InvalidInputError

MAX_GEOHASH_PRECISION = 12
MAX_H3_RESOLUTION = 15
DATETIME_UNITS = ("year", "month", "day")

AGGREGATIONS = {
    "total_count": "number of matching items",
    "datetime_min": "earliest datetime",
    "datetime_max": "latest datetime",
    "collection_frequency": "items per collection",
    "datetime_frequency": "items per month (':year', ':month' or ':day')",
    "cloud_cover_frequency": "eo:cloud_cover histogram, bins of 10 (':WIDTH' to change)",
    "geohash_frequency": f"items per geohash cell of the footprint centre (':PRECISION' 1-{MAX_GEOHASH_PRECISION})",
    "geohex_grid_frequency": f"items per H3 cell of the footprint centre (':RESOLUTION' 0-{MAX_H3_RESOLUTION})",
    "property_frequency": "items per value of one property (':NAME', e.g. property_frequency:platform)",
    "platform_frequency": "items per platform",
    "grid_code_frequency": "items per grid:code (MGRS tile)",
}
# Other names for the same thing: STAC aggregation extension names of common properties, short forms.
_ALIASES: dict[str, tuple[str, str]] = {
    "platform_frequency": ("property_frequency", "platform"),
    "grid_code_frequency": ("property_frequency", "grid:code"),
    "h3_frequency": ("geohex_grid_frequency", ""),
    "collection": ("collection_frequency", ""),
    "month": ("datetime_frequency", "month"),
    "year": ("datetime_frequency", "year"),
    "cloud_cover": ("cloud_cover_frequency", ""),
    "geohash": ("geohash_frequency", ""),
}


@dataclass(frozen=True)
class AggregationSpec:
    name: str  # the name as requested (the result carries it back)
    kind: str  # one of AGGREGATIONS
    parameter: Any = None


def parse_aggregations(names: list[str]) -> list[AggregationSpec]:
    if not names:
        raise InvalidInputError(f"aggregations: give at least one of {', '.join(AGGREGATIONS)}", field="aggregations")
    specs = []
    for raw in names:
        name = raw.strip()
        kind, _, parameter = name.partition(":")
        if kind in _ALIASES:
            kind, default = _ALIASES[kind]
            parameter = parameter or default
        if kind not in AGGREGATIONS:
            raise InvalidInputError(
                f"aggregations: unknown aggregation {raw!r} (known: {', '.join(AGGREGATIONS)})", field="aggregations"
            )
        specs.append(AggregationSpec(name=name, kind=kind, parameter=_parameter(kind, parameter, raw)))
    return specs


def _integer(raw: str, text: str, low: int, high: int, default: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(f"aggregations: {raw!r}: {text!r} is not an integer", field="aggregations") from None
    if not low <= value <= high:
        raise InvalidInputError(f"aggregations: {raw!r}: {value} is out of range [{low}, {high}]", field="aggregations")
    return value


def _parameter(kind: str, text: str, raw: str) -> Any:
    if kind == "datetime_frequency":
        unit = text or "month"
        if unit not in DATETIME_UNITS:
            raise InvalidInputError(
                f"aggregations: {raw!r}: unit must be one of {', '.join(DATETIME_UNITS)}", field="aggregations"
            )
        return unit
    if kind == "cloud_cover_frequency":
        return _integer(raw, text, 1, 100, 10)
    if kind == "geohash_frequency":
        return _integer(raw, text, 1, MAX_GEOHASH_PRECISION, 3)
    if kind == "geohex_grid_frequency":
        return _integer(raw, text, 0, MAX_H3_RESOLUTION, 3)
    if kind == "property_frequency":
        if not text:
            raise InvalidInputError(f"aggregations: {raw!r}: name the property after ':'", field="aggregations")
        return check_property_name(text.removeprefix("properties."), field="aggregations")
    if text:
        raise InvalidInputError(f"aggregations: {raw!r}: {kind} takes no parameter", field="aggregations")
    return None


def value_result(spec: AggregationSpec, value: Any, data_type: str) -> dict[str, Any]:
    return {"name": spec.name, "data_type": data_type, "value": value}


def frequency_result(spec: AggregationSpec, counts: list[tuple[Any, int]]) -> dict[str, Any]:
    """Buckets sorted by key (None last); the shape of the STAC aggregation extension."""
    ordered = sorted(
        counts, key=lambda kv: (kv[0] is None, str(kv[0]) if not isinstance(kv[0], int | float) else kv[0])
    )
    return {
        "name": spec.name,
        "data_type": "frequency_distribution",
        "buckets": [{"key": key, "data_type": "frequency_distribution", "frequency": n} for key, n in ordered],
    }


_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lon: float, lat: float, precision: int = MAX_GEOHASH_PRECISION) -> str:
    """The standard geohash of a point (interleaved longitude/latitude bits, base 32)."""
    lon_lo, lon_hi, lat_lo, lat_hi = -180.0, 180.0, -90.0, 90.0
    chars: list[str] = []
    bits = 0
    value = 0
    even = True
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                value = value * 2 + 1
                lon_lo = mid
            else:
                value *= 2
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                value = value * 2 + 1
                lat_lo = mid
            else:
                value *= 2
                lat_hi = mid
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[value])
            bits = 0
            value = 0
    return "".join(chars)
