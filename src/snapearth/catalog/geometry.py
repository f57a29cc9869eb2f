"""GeoJSON checks and antimeridian-aware bounding boxes, without shapely in the hot path.

A footprint that crosses the antimeridian is stored in STAC as a MultiPolygon split at ±180; its naive
bounding box would span the whole globe, so boxes are computed per part and grouped by hemisphere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)


class GeometryError(ValueError):
    """A GeoJSON geometry is malformed; the message says where and why."""


class Box(NamedTuple):
    west: float
    south: float
    east: float
    north: float


def _positions(coordinates: Any, depth: int) -> Iterator[tuple[float, float]]:
    if depth == 0:
        yield coordinates[0], coordinates[1]
        return
    for child in coordinates:
        yield from _positions(child, depth - 1)


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def _parts(geometry: dict[str, Any]) -> Iterator[tuple[Any, int]]:
    """(coordinates, nesting depth) of each part: the polygons of a MultiPolygon, members of a collection."""
    kind = geometry["type"]
    if kind == "GeometryCollection":
        for member in geometry["geometries"]:
            yield from _parts(member)
    elif kind == "MultiPolygon":
        for polygon in geometry["coordinates"]:
            yield polygon, 2
    elif kind == "MultiLineString":
        for line in geometry["coordinates"]:
            yield line, 1
    else:
        yield geometry["coordinates"], _DEPTH[kind]


def geometry_boxes(geometry: dict[str, Any]) -> list[Box]:
    """One box, or two (east and west of the antimeridian) when the parts lie on both sides of it."""
    boxes = []
    for coordinates, depth in _parts(geometry):
        xs, ys = [], []
        for x, y in _positions(coordinates, depth):
            xs.append(x)
            ys.append(y)
        if xs:
            boxes.append(Box(min(xs), min(ys), max(xs), max(ys)))
    if not boxes:
        raise GeometryError("geometry has no coordinates")
    return _group(boxes)


def _group(boxes: list[Box]) -> list[Box]:
    whole = Box(
        min(b.west for b in boxes), min(b.south for b in boxes), max(b.east for b in boxes), max(b.north for b in boxes)
    )
    if len(boxes) == 1 or whole.east - whole.west <= 180:
        return [whole]
    east_side = [b for b in boxes if (b.west + b.east) / 2 >= 0]
    west_side = [b for b in boxes if (b.west + b.east) / 2 < 0]
    return [_union(side) for side in (east_side, west_side) if side]


def _ring_box(ring: Any) -> Box:
    """Check one linear ring (closed, >= 4 numeric positions in range) and return its box, in one pass."""
    if not isinstance(ring, list) or len(ring) < 4:
        raise GeometryError("a polygon ring needs at least 4 positions")
    try:
        xs = [position[0] for position in ring]
        ys = [position[1] for position in ring]
        total = sum(xs) + sum(ys)
        west, east, south, north = min(xs), max(xs), min(ys), max(ys)
        closed = ring[0][0] == ring[-1][0] and ring[0][1] == ring[-1][1]
    except (TypeError, IndexError, KeyError):
        raise GeometryError("a position is not [longitude, latitude] numbers") from None
    if not math.isfinite(total) or any(isinstance(v, bool) for v in (west, east, south, north)):
        raise GeometryError("a position has a non-numeric or non-finite coordinate")
    if west < -180 or east > 180:
        raise GeometryError(f"longitude {west if west < -180 else east} is out of range [-180, 180]")
    if south < -90 or north > 90:
        raise GeometryError(f"latitude {south if south < -90 else north} is out of range [-90, 90]")
    if not closed:
        raise GeometryError("a polygon ring must be closed (first position == last position)")
    return Box(west, south, east, north)


def checked_boxes(geometry: Any) -> list[Box]:
    """``validate_geojson_geometry`` (without topology) and ``geometry_boxes`` together; fast for polygons."""
    if isinstance(geometry, dict):
        kind = geometry.get("type")
        coordinates = geometry.get("coordinates")
        if kind == "Polygon" and isinstance(coordinates, list) and coordinates:
            ring_boxes = [_ring_box(ring) for ring in coordinates]  # holes are checked too; the shell bounds
            return ring_boxes[:1]
        if kind == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
            boxes = []
            for polygon in coordinates:
                if not isinstance(polygon, list) or not polygon:
                    raise GeometryError("MultiPolygon: each polygon must be a non-empty list of rings")
                ring_boxes = [_ring_box(ring) for ring in polygon]
                boxes.append(ring_boxes[0])
            return _group(boxes)
    validate_geojson_geometry(geometry, topology=False)
    return geometry_boxes(geometry)


def _union(boxes: list[Box]) -> Box:
    return Box(
        min(b.west for b in boxes), min(b.south for b in boxes), max(b.east for b in boxes), max(b.north for b in boxes)
    )


def validate_geojson_geometry(geometry: Any, *, topology: bool = True) -> dict[str, Any]:
    """Check a GeoJSON geometry (types, nesting, ranges, closed rings; with ``topology`` also validity)."""
    if not isinstance(geometry, dict):
        raise GeometryError("not a GeoJSON geometry object")
    kind = geometry.get("type")
    if kind not in GEOMETRY_TYPES:
        raise GeometryError(f"unknown geometry type {kind!r} (expected one of {', '.join(sorted(GEOMETRY_TYPES))})")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list) or not members:
            raise GeometryError("a GeometryCollection needs a non-empty 'geometries' list")
        for member in members:
            validate_geojson_geometry(member, topology=topology)
        return geometry
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list):
        raise GeometryError(f"{kind}: 'coordinates' must be a list")
    _check_nesting(kind, coordinates)
    if topology and kind in ("Polygon", "MultiPolygon"):
        import shapely
        from shapely.geometry import shape

        shp = shape(geometry)
        if not shp.is_valid:
            raise GeometryError(f"{kind} is not valid: {shapely.is_valid_reason(shp)}")
    return geometry


def _check_position(position: Any) -> None:
    if not isinstance(position, list | tuple) or len(position) < 2:
        raise GeometryError(f"position {position!r} is not [longitude, latitude]")
    for value in position[:2]:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise GeometryError(f"position {list(position)!r} has a non-numeric coordinate")
    lon, lat = position[0], position[1]
    if not -180 <= lon <= 180:
        raise GeometryError(f"longitude {lon} is out of range [-180, 180]")
    if not -90 <= lat <= 90:
        raise GeometryError(f"latitude {lat} is out of range [-90, 90]")


def _check_ring(ring: Any) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise GeometryError("a polygon ring needs at least 4 positions")
    for position in ring:
        _check_position(position)
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise GeometryError("a polygon ring must be closed (first position == last position)")


def _check_nesting(kind: str, coordinates: list[Any]) -> None:
    if kind == "Point":
        _check_position(coordinates)
    elif kind in ("MultiPoint", "LineString"):
        if kind == "LineString" and len(coordinates) < 2:
            raise GeometryError("a LineString needs at least 2 positions")
        for position in coordinates:
            _check_position(position)
    elif kind == "MultiLineString":
        for line in coordinates:
            if not isinstance(line, list):
                raise GeometryError("MultiLineString: each line must be a list of positions")
            _check_nesting("LineString", line)
    elif kind == "Polygon":
        if not coordinates:
            raise GeometryError("a Polygon needs at least one ring")
        for ring in coordinates:
            _check_ring(ring)
    elif kind == "MultiPolygon":
        if not coordinates:
            raise GeometryError("a MultiPolygon needs at least one polygon")
        for polygon in coordinates:
            if not isinstance(polygon, list) or not polygon:
                raise GeometryError("MultiPolygon: each polygon must be a non-empty list of rings")
            for ring in polygon:
                _check_ring(ring)
