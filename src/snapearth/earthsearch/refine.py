"""Refinements: what a person changes of what was understood (the web UI's chips and filters).

A refinement replaces one understood field; ``"none"`` / ``"any"`` clears it. Errors name the parameter.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime

from snapearth.earthsearch.dates import Interval
from snapearth.earthsearch.lexicon import THEMES
from snapearth.earthsearch.parser import ParsedQuery
from snapearth.errors import InvalidInputError

CLEAR = frozenset({"none", "any", ""})
FIRST_DAY = date(2014, 4, 3)  # Sentinel-1A's first acquisitions: nothing in the archive is older
KNOWN_COLLECTIONS = ("sentinel-1-grd", "sentinel-2-l2a")


def _bbox(value: str) -> tuple[float, float, float, float]:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidInputError(f"bbox: {value!r} is not four numbers west,south,east,north", field="bbox") from None
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise InvalidInputError(f"bbox: {value!r} is not four numbers west,south,east,north", field="bbox")
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidInputError("bbox: longitudes must be within [-180, 180]", field="bbox")
    if not (-90 <= south <= north <= 90):
        raise InvalidInputError("bbox: latitudes must be within [-90, 90] with south <= north", field="bbox")
    return west, south, east, north


def _day(text: str, field: str, default: date) -> date:
    if text in ("", ".."):
        return default
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        raise InvalidInputError(f"{field}: {text!r} is not an RFC 3339 date or date-time", field=field) from None


def _interval(value: str, today: date) -> Interval:
    start_text, sep, end_text = value.partition("/")
    if not sep:
        day = _day(start_text, "datetime", today)
        return Interval(day, day)
    start = _day(start_text, "datetime", FIRST_DAY)
    end = _day(end_text, "datetime", today)
    if start > end:
        raise InvalidInputError(f"datetime: the interval {value!r} ends before it starts", field="datetime")
    return Interval(start, end)


def refine(
    parsed: ParsedQuery,
    *,
    bbox: str | None = None,
    datetime_: str | None = None,
    max_cloud_cover: float | None = None,
    collections: list[str] | None = None,
    themes: list[str] | None = None,
    today: date | None = None,
) -> ParsedQuery:
    """``parsed`` with the given fields replaced (``None``: keep what was understood)."""
    changes: dict[str, object] = {}
    if bbox is not None:
        if bbox.strip().lower() in CLEAR:
            changes.update(bbox=None, geometry=None, place=None, place_name=None, near=False)
        else:
            box = _bbox(bbox)
            changes.update(bbox=box, geometry=None, place=None, place_name=", ".join(f"{v:g}" for v in box))
    if datetime_ is not None:
        text = datetime_.strip()
        changes["interval"] = None if text.lower() in CLEAR else _interval(text, today or datetime.now(UTC).date())
    if max_cloud_cover is not None:
        if not 0 <= max_cloud_cover <= 100:
            raise InvalidInputError("max_cloud_cover: must be within [0, 100] (percent)", field="max_cloud_cover")
        changes["max_cloud_cover"] = None if max_cloud_cover >= 100 else max_cloud_cover
    if collections is not None:
        wanted = [c for c in collections if c.strip().lower() not in CLEAR]
        unknown = [c for c in wanted if c not in KNOWN_COLLECTIONS]
        if unknown:
            raise InvalidInputError(
                f"collections: unknown {', '.join(unknown)} (known: {', '.join(KNOWN_COLLECTIONS)})",
                field="collections",
            )
        changes["collections"] = wanted
    if themes is not None:
        wanted = [t for t in themes if t.strip().lower() not in CLEAR]
        unknown = [t for t in wanted if t not in THEMES]
        if unknown:
            raise InvalidInputError(
                f"themes: unknown {', '.join(unknown)} (known: {', '.join(THEMES)})", field="themes"
            )
        changes["themes"] = wanted
    return replace(parsed, **changes) if changes else parsed  # type: ignore[arg-type]
