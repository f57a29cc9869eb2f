"""Answering a parsed query from the catalog: search, rank, explain (``snapearth ask``, ``GET /earthsearch``).

The parse becomes one STAC search (bbox, datetime, collections, cloud ceiling) for candidates and one over
the ``events`` collection. Candidates are ranked by spatial fit, temporal fit, cloud cover and theme evidence
from EarthSignature (``signature:*`` fractions and events of the theme's type that link to the image); every
part degrades to neutral when the catalog has no signatures or events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from snapearth.catalog.base import Catalog, SearchRequest, parse_rfc3339
from snapearth.earthsearch.lexicon import SENTINEL1, SENTINEL2
from snapearth.earthsearch.parser import ParsedQuery, QueryParser, get_parser
from snapearth.errors import InvalidInputError, NotFoundError

EVENTS = "events"
IMAGE_COLLECTIONS = [SENTINEL2, SENTINEL1]
MAX_CANDIDATES = 100  # ranked in Python: the cost is decoding them, not the catalog's size
EVENT_MARGIN = timedelta(days=3)
MAX_CLOUD_FOR_NORMAL = 0.8
MAX_LIMIT = 100

# theme -> (signature property that shows it, the value at which the evidence is full, event types)
THEME_EVIDENCE: dict[str, tuple[str | None, float, tuple[str, ...]]] = {
    "flood": ("signature:water_fraction", 0.3, ("flood",)),
    "water": ("signature:water_fraction", 0.3, ("flood",)),
    "wildfire": ("signature:burn_fraction", 0.2, ("wildfire",)),
    "snow": ("signature:snow_fraction", 0.5, ("snow",)),
    "drought": (None, 1.0, ("drought",)),
    "crops": ("signature:vegetation_fraction", 0.6, ("harvest",)),
    "deforestation": (None, 1.0, ("deforestation",)),
    "urban": ("signature:built_up_fraction", 0.4, ()),
}
WEIGHTS = {"space": 0.25, "time": 0.2, "cloud": 0.15, "theme": 0.4}


@dataclass
class Ranked:
    item: dict[str, Any]
    score: float
    reason: str


def _bbox_of(item: dict[str, Any]) -> tuple[float, float, float, float] | None:
    bbox = item.get("bbox")
    if bbox and len(bbox) >= 4:
        if len(bbox) == 6:
            return (bbox[0], bbox[1], bbox[3], bbox[4])
        return (bbox[0], bbox[1], bbox[2], bbox[3])
    return None


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    west, south = max(a[0], b[0]), max(a[1], b[1])
    east, north = min(a[2], b[2]), min(a[3], b[3])
    if east <= west or north <= south:
        return 0.0
    return (east - west) * (north - south)


def _area(b: tuple[float, float, float, float]) -> float:
    return max((b[2] - b[0]) * (b[3] - b[1]), 1e-12)


def _item_time(item: dict[str, Any]) -> datetime | None:
    props = item.get("properties", {})
    value = props.get("datetime") or props.get("start_datetime")
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


class Answerer:
    """Ranks catalog items for parsed queries."""

    def __init__(self, catalog: Catalog, parser: QueryParser | None = None) -> None:
        self.catalog = catalog
        self.parser = parser or get_parser()
        self._collections: set[str] | None = None

    def collections(self) -> set[str]:
        if self._collections is None:
            self._collections = {c["id"] for c in self.catalog.list_collections()}
        return self._collections

    def ask(self, query: str, *, now: date | None = None, limit: int = 10) -> dict[str, Any]:
        if limit < 1 or limit > MAX_LIMIT:
            raise InvalidInputError(f"limit: {limit} is out of range [1, {MAX_LIMIT}]", field="limit")
        parsed = self.parser.parse(query, now)
        return self.answer(parsed, limit=limit)

    # -- searching ------------------------------------------------------------------------------------
    def _request(
        self,
        parsed: ParsedQuery,
        collections: list[str],
        limit: int,
        span: tuple[datetime, datetime] | None = None,
    ) -> SearchRequest:
        span = span or parsed.datetime_range
        query: dict[str, dict[str, Any]] | None = None
        if parsed.max_cloud_cover is not None and collections == [SENTINEL2]:
            query = {"eo:cloud_cover": {"lte": parsed.max_cloud_cover}}
        return SearchRequest(
            bbox=list(parsed.bbox) if parsed.bbox else None,
            datetime=None
            if span is None
            else f"{span[0].strftime('%Y-%m-%dT%H:%M:%SZ')}/{span[1].strftime('%Y-%m-%dT%H:%M:%SZ')}",
            collections=collections,
            query=query,
            limit=limit,
            count=False,
        )

    def _search(self, request: SearchRequest) -> list[dict[str, Any]]:
        try:
            return self.catalog.search(request).items
        except NotFoundError:
            return []

    def image_collections(self, parsed: ParsedQuery) -> list[str]:
        known = self.collections()
        wanted = list(parsed.collections)
        if not wanted:
            wanted = [SENTINEL2] if parsed.max_cloud_cover is not None else list(IMAGE_COLLECTIONS)
            extra = sorted(c for c in known if c not in IMAGE_COLLECTIONS and c != EVENTS)
            if parsed.max_cloud_cover is None:
                wanted += extra
        return [c for c in wanted if c in known]

    def events(self, parsed: ParsedQuery, limit: int = 50) -> list[dict[str, Any]]:
        if EVENTS not in self.collections():
            return []
        found = self._search(self._request(parsed, [EVENTS], limit))
        types = {t for theme in parsed.themes for t in THEME_EVIDENCE[theme][2]}
        if types:
            found = [e for e in found if e.get("properties", {}).get("signature:event_type") in types]
        return found

    # -- answering ------------------------------------------------------------------------------------
    def answer(self, parsed: ParsedQuery, *, limit: int = 10) -> dict[str, Any]:
        collections = self.image_collections(parsed)
        events = self.events(parsed)
        span = self.search_span(parsed, events)
        candidates: list[dict[str, Any]] = []
        if collections:
            candidates = self._search(self._request(parsed, collections, MAX_CANDIDATES, span))
        linked = _event_links(events)
        normal = _normal_levels(candidates, parsed.themes)
        ranked = sorted((self.score(item, parsed, linked, span, normal) for item in candidates), key=lambda r: -r.score)
        features = []
        for entry in ranked[:limit]:
            item = dict(entry.item)
            item["properties"] = {
                **item.get("properties", {}),
                "earthsearch:score": round(entry.score, 4),
                "earthsearch:reason": entry.reason,
            }
            features.append(item)
        pair = self.best_pair(parsed, ranked, events) if parsed.compare else None
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": len(candidates),
            "numberReturned": len(features),
            "parse": parsed.to_dict(),
            "events": events,
            "pair": pair,
            "notes": parsed.notes + _advice(parsed, collections, candidates),
        }

    @staticmethod
    def search_span(parsed: ParsedQuery, events: list[dict[str, Any]]) -> tuple[datetime, datetime] | None:
        """The asked period, stretched to the whole of the asked-about events that overlap it
        ("floods in Valencia November 2024": the flood began on 29 October)."""
        span = parsed.datetime_range
        if span is None or not parsed.themes or not events:
            return span
        start, end = span
        for event in events:
            props = event.get("properties", {})
            try:
                first = parse_rfc3339(props.get("start_datetime") or props["datetime"])
                last = parse_rfc3339(props.get("end_datetime") or props.get("start_datetime") or props["datetime"])
            except (KeyError, TypeError, ValueError):
                continue
            start, end = min(start, first - EVENT_MARGIN), max(end, last + EVENT_MARGIN)
        return start, end

    def score(
        self,
        item: dict[str, Any],
        parsed: ParsedQuery,
        linked: dict[str, list[tuple[str, str, str]]],
        span: tuple[datetime, datetime] | None = None,
        normal: dict[tuple[str, str], float] | None = None,
    ) -> Ranked:
        props = item.get("properties", {})
        reasons: list[str] = []
        # spatial fit: the share of the asked area the image covers, mildly preferring tight footprints
        space = 1.0
        bbox = _bbox_of(item)
        if parsed.bbox is not None and bbox is not None:
            covered = _overlap(parsed.bbox, bbox) / _area(parsed.bbox)
            focus = _overlap(parsed.bbox, bbox) / _area(bbox)
            space = 0.8 * min(covered, 1.0) + 0.2 * min(focus, 1.0)
            reasons.append(f"covers {min(covered, 1.0):.0%} of {parsed.place_name}")
        # temporal fit: inside the asked interval = 1, decaying outside; images the search took in only because
        # an event of the theme lasts beyond the asked period decay slowly (they still show the event)
        time_fit = 1.0
        when = _item_time(item)
        asked = parsed.datetime_range or span
        if asked is not None and when is not None:
            if asked[0] <= when <= asked[1]:
                reasons.append(f"taken {when:%Y-%m-%d}, within the period")
            else:
                gap = min(abs((when - asked[0]).days), abs((when - asked[1]).days))
                during_event = span is not None and span[0] <= when <= span[1]
                time_fit = math.exp(-gap / (90.0 if during_event else 30.0))
                where = "during the event, " if during_event else ""
                reasons.append(f"taken {when:%Y-%m-%d}, {where}{gap} days from the period")
        elif when is not None:
            reasons.append(f"taken {when:%Y-%m-%d}")
        # cloud cover (optical only; radar sees through clouds)
        cloud_fit = 1.0
        cloud = props.get("signature:cloud_fraction")
        cloud_pct = float(cloud) * 100 if isinstance(cloud, (int, float)) else props.get("eo:cloud_cover")
        if isinstance(cloud_pct, (int, float)):
            cloud_fit = 1.0 - min(max(float(cloud_pct), 0.0), 100.0) / 100.0
            reasons.append(f"{float(cloud_pct):.0f}% clouds")
        elif item.get("collection") == SENTINEL1:
            reasons.append("radar: not affected by clouds")
        # theme evidence from the signature and from events that point at this image
        theme_fit = 0.5
        if parsed.themes:
            best = 0.0
            for theme in parsed.themes:
                prop, full, types = THEME_EVIDENCE[theme]
                value = props.get(prop) if prop else None
                evidence = 0.0
                if prop and isinstance(value, (int, float)):
                    # how far above its usual level (other images of the same kind), trusted as far as it is seen
                    usual = (normal or {}).get((str(item.get("collection")), prop), 0.0)
                    level = min(float(value) / full, 1.0)
                    anomaly = min(max(float(value) - usual, 0.0) / full, 1.0)
                    evidence = (0.4 * level + 0.6 * anomaly) * max(0.1, cloud_fit)
                    label = prop.split(":", 1)[1].replace("_", " ")
                    reasons.append(f"{label} {float(value):.2f} (usually {usual:.2f})")
                for event_id, event_type, role in linked.get(str(item.get("id")), []):
                    if event_type in types:
                        evidence = max(evidence, 1.0 if role == "after" else 0.3)
                        reasons.append(f"{role} image of {event_type} event {event_id}")
                best = max(best, evidence)
            theme_fit = best
        score = (
            WEIGHTS["space"] * space
            + WEIGHTS["time"] * time_fit
            + WEIGHTS["cloud"] * cloud_fit
            + WEIGHTS["theme"] * theme_fit
        )
        return Ranked(item, score, "; ".join(dict.fromkeys(reasons)) or "matches the search filters")

    def best_pair(
        self, parsed: ParsedQuery, ranked: list[Ranked], events: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """For "before and after": an event's own before/after images, else the earliest and latest good images."""
        for event in sorted(events, key=lambda e: -float(e.get("properties", {}).get("signature:confidence") or 0)):
            props = event.get("properties", {})
            before, after = props.get("signature:before"), props.get("signature:after") or []
            if before and after:
                return {
                    "before": before,
                    "after": after[0] if isinstance(after, list) else after,
                    "event": event.get("id"),
                    "reason": f"images before and after {props.get('signature:event_type')} event {event.get('id')}",
                }
        good = [r for r in ranked if r.score >= 0.5] or ranked
        if len(good) < 2:
            return None
        by_collection: dict[str, list[Ranked]] = {}
        for entry in good:
            by_collection.setdefault(str(entry.item.get("collection")), []).append(entry)
        group = max(by_collection.values(), key=len)
        if len(group) < 2:
            group = good
        dated = [(t, r) for r in group if (t := _item_time(r.item)) is not None]
        if len(dated) < 2:
            return None
        dated.sort(key=lambda tr: tr[0])
        return {
            "before": dated[0][1].item.get("id"),
            "after": dated[-1][1].item.get("id"),
            "event": None,
            "reason": "earliest and latest well-ranked images of the period",
        }


def _normal_levels(candidates: list[dict[str, Any]], themes: list[str]) -> dict[tuple[str, str], float]:
    """(collection, signature property) -> the place's usual level: the lower quartile over the candidates that
    are mostly visible (an event covers many images, so the median would already be the event)."""
    props = {THEME_EVIDENCE[t][0] for t in themes if THEME_EVIDENCE[t][0]}
    values: dict[tuple[str, str], list[float]] = {}
    for item in candidates:
        p = item.get("properties", {})
        cloud = p.get("signature:cloud_fraction")
        if isinstance(cloud, (int, float)) and cloud > MAX_CLOUD_FOR_NORMAL:
            continue
        for prop in props:
            value = p.get(prop or "")
            if isinstance(value, (int, float)):
                values.setdefault((str(item.get("collection")), str(prop)), []).append(float(value))
    return {key: sorted(v)[(len(v) - 1) // 4] for key, v in values.items()}


def _event_links(events: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, str]]]:
    """Image id -> [(event id, event type, "before" | "after") ...] for the images the events link to."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for event in events:
        props = event.get("properties", {})
        kind = props.get("signature:event_type", "")
        before = props.get("signature:before")
        if before:
            out.setdefault(str(before), []).append((str(event.get("id")), kind, "before"))
        for after in props.get("signature:after") or []:
            out.setdefault(str(after), []).append((str(event.get("id")), kind, "after"))
    return out


def _advice(parsed: ParsedQuery, collections: list[str], candidates: list[dict[str, Any]]) -> list[str]:
    notes = []
    if parsed.bbox is None:
        notes.append("no place understood: searching everywhere")
    if parsed.interval is None:
        notes.append("no date understood: searching all dates")
    if not collections:
        notes.append("the catalog holds none of the asked collections")
    elif not candidates:
        notes.append("no image matches: try a wider area, a longer period or fewer conditions")
    return notes
