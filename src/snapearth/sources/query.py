"""Harvest inputs, validated before anything is written: area, time window, collection."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapely import wkt
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from snapearth.catalog.base import parse_rfc3339
from snapearth.errors import InvalidInputError
from snapearth.sources.eodag_source import COLLECTIONS

# Start of each archive: a harvest without a start date covers the whole mission.
MISSION_START = {
    "sentinel-1-grd": datetime(2014, 4, 3, tzinfo=UTC),
    "sentinel-2-l1c": datetime(2015, 6, 23, tzinfo=UTC),
    "sentinel-2-l2a": datetime(2015, 6, 23, tzinfo=UTC),
}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_list(self) -> list[str]:
        return [_iso(self.start), _iso(self.end)]

    @classmethod
    def from_list(cls, value: list[str]) -> Window:
        return cls(parse_rfc3339(value[0]), parse_rfc3339(value[1]))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_collection(collection: str) -> str:
    if collection not in COLLECTIONS:
        raise InvalidInputError(
            f"collection: unknown collection {collection!r}; use one of {', '.join(sorted(COLLECTIONS))}",
            field="collection",
        )
    return collection


def parse_bbox(text: str | list[float]) -> BaseGeometry:
    values: list[Any] = text.split(",") if isinstance(text, str) else list(text)
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidInputError(f"bbox: {text!r} is not four numbers west,south,east,north", field="bbox") from None
    if len(numbers) != 4:
        raise InvalidInputError(f"bbox: expected 4 numbers west,south,east,north, got {len(numbers)}", field="bbox")
    west, south, east, north = numbers
    for name, value, limit in (("west", west, 180), ("east", east, 180), ("south", south, 90), ("north", north, 90)):
        if not -limit <= value <= limit:
            raise InvalidInputError(f"bbox: {name} {value:g} is out of range [-{limit}, {limit}]", field="bbox")
    if south >= north:
        raise InvalidInputError(f"bbox: south {south:g} must be below north {north:g}", field="bbox")
    if west >= east:
        raise InvalidInputError(
            f"bbox: west {west:g} must be less than east {east:g} (split areas crossing the antimeridian)",
            field="bbox",
        )
    return box(west, south, east, north)


def parse_geometry(value: str | dict[str, Any]) -> BaseGeometry:
    """GeoJSON (text, a file path, a dict; Feature or geometry) or WKT -> a valid lon/lat geometry."""
    data: Any = value
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("{", "[")) and Path(text).is_file():
            text = Path(text).read_text()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise InvalidInputError(f"intersects: not valid JSON: {error}", field="intersects") from None
        else:
            try:
                return _checked(wkt.loads(text))
            except InvalidInputError:
                raise
            except Exception as error:
                raise InvalidInputError(f"intersects: neither GeoJSON nor WKT: {error}", field="intersects") from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        if len(features) != 1:
            raise InvalidInputError("intersects: give one feature, not a collection of several", field="intersects")
        data = features[0].get("geometry")
    if not isinstance(data, dict) or "type" not in data:
        raise InvalidInputError("intersects: expected a GeoJSON geometry object", field="intersects")
    try:
        geom = shape(data)
    except Exception as error:
        raise InvalidInputError(
            f"intersects: malformed {data.get('type')} geometry: {error}", field="intersects"
        ) from None
    return _checked(geom)


def _checked(geom: BaseGeometry) -> BaseGeometry:
    if geom.is_empty:
        raise InvalidInputError("intersects: the geometry is empty", field="intersects")
    if geom.geom_type not in ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString"):
        raise InvalidInputError(f"intersects: {geom.geom_type} is not supported as a search area", field="intersects")
    if not geom.is_valid:
        raise InvalidInputError(f"intersects: invalid geometry ({explain_validity(geom)})", field="intersects")
    west, south, east, north = geom.bounds
    if not (west >= -180 and east <= 180 and south >= -90 and north <= 90):
        raise InvalidInputError("intersects: coordinates must be longitude/latitude (EPSG:4326)", field="intersects")
    return geom


def parse_window(text: str | None, collection: str, *, now: datetime | None = None) -> Window:
    """``2024-01-01/2024-02-01``, ``2024-01-01/..``, ``../2024-02-01``, ``2024-01-05`` -> a closed window."""
    now = now or datetime.now(UTC)
    floor = MISSION_START.get(collection, datetime(2014, 1, 1, tzinfo=UTC))
    if not text:
        return Window(floor, now)
    parts = text.split("/")
    if len(parts) > 2:
        raise InvalidInputError(f"datetime: {text!r} has more than one '/'", field="datetime")

    def one(part: str, *, end: bool) -> datetime | None:
        part = part.strip()
        if part in ("", ".."):
            return None
        try:
            if len(part) == 10:
                day = datetime.fromisoformat(part).replace(tzinfo=UTC)
                return day.replace(hour=23, minute=59, second=59, microsecond=999999) if end else day
            return parse_rfc3339(part)
        except ValueError:
            raise InvalidInputError(
                f"datetime: {part!r} is not an RFC 3339 date or date-time", field="datetime"
            ) from None

    if len(parts) == 1:
        start, end = one(parts[0], end=False), one(parts[0], end=True)
    else:
        start, end = one(parts[0], end=False), one(parts[1], end=True)
    start = max(start or floor, floor)
    end = min(end or now, now)
    if start > end:
        raise InvalidInputError(f"datetime: start {_iso(start)} is after end {_iso(end)}", field="datetime")
    return Window(start, end)


def area_key(geom: BaseGeometry) -> str:
    """A stable name for an area (harvest state is kept per provider, collection and area)."""
    return hashlib.sha256(wkt.dumps(geom, rounding_precision=6).encode()).hexdigest()[:16]


def subtract(window: Window, covered: list[Window]) -> list[Window]:
    """The parts of ``window`` not in any of ``covered``."""
    gaps = [window]
    for done in sorted(covered, key=lambda w: w.start):
        next_gaps: list[Window] = []
        for gap in gaps:
            if done.end <= gap.start or done.start >= gap.end:
                next_gaps.append(gap)
                continue
            if done.start > gap.start:
                next_gaps.append(Window(gap.start, done.start))
            if done.end < gap.end:
                next_gaps.append(Window(done.end, gap.end))
        gaps = next_gaps
    return [g for g in gaps if g.end > g.start]


def union(windows: list[Window]) -> list[Window]:
    merged: list[Window] = []
    for window in sorted(windows, key=lambda w: w.start):
        if merged and window.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Window(last.start, max(last.end, window.end))
        else:
            merged.append(window)
    return merged
