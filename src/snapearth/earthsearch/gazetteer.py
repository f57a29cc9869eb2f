"""The place table shipped in ``data/places.json`` (built by ``scripts/build_earthsearch_gazetteer.py``).

Countries (mainland bbox, Natural Earth outline), admin-1/admin-2 areas (Natural Earth 10m, names in five
languages), cities > 15,000 inhabitants (GeoNames, box sized from the population) and the project's curated
natural regions. Loaded once per process; outlines (``place_geometries.json``) only when first asked for.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from snapearth.earthsearch.text import name_key

EUROPE = frozenset(
    [
        "AD",
        "AL",
        "AT",
        "BA",
        "BE",
        "BG",
        "BY",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FO",
        "FR",
        "GB",
        "GG",
        "GI",
        "GR",
        "HR",
        "HU",
        "IE",
        "IM",
        "IS",
        "IT",
        "JE",
        "LI",
        "LT",
        "LU",
        "LV",
        "MC",
        "MD",
        "ME",
        "MK",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "RS",
        "SE",
        "SI",
        "SK",
        "SM",
        "UA",
        "VA",
        "XK",
    ]
)
NEAR_KM = 25.0


@dataclass(frozen=True)
class Place:
    id: int
    name: str
    kind: str
    country: str
    bbox: tuple[float, float, float, float]
    importance: float
    point: tuple[float, float] | None = None
    matched: str = ""
    alternatives: tuple[Place, ...] = field(default=(), compare=False)

    def widened(self, km: float = NEAR_KM) -> tuple[float, float, float, float]:
        """The bbox grown by ``km`` on every side ("near Valencia")."""
        west, south, east, north = self.bbox
        mid_lat = (south + north) / 2
        dlat = km / 111.0
        dlon = km / (111.0 * max(math.cos(math.radians(mid_lat)), 0.05))
        return (
            max(-180.0, west - dlon),
            max(-90.0, south - dlat),
            min(180.0, east + dlon),
            min(90.0, north + dlat),
        )


class Gazetteer:
    """Exact-key lookups over ~190k names; fuzzy lookups over the names of important places only."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self._entries: list[list[Any]] = payload["entries"]
        self._index: dict[str, list[int]] = payload["index"]
        self._geometries: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.max_words = max(len(key.split()) for key in self._index)

    @classmethod
    def load(cls) -> Gazetteer:
        text = resources.files("snapearth.earthsearch").joinpath("data/places.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    def place(self, eid: int, matched: str = "") -> Place:
        name, kind, country, bbox, importance, *rest = self._entries[eid]
        point = (float(rest[0][0]), float(rest[0][1])) if rest else None
        return Place(eid, name, kind, country, tuple(bbox), float(importance), point, matched)

    def key_priorities(self) -> dict[str, float]:
        """Every name key with the importance of its most important place (for completion)."""
        entries = self._entries
        return {
            key: max(float(entries[i][4]) + (1.0 if entries[i][2] in EUROPE else 0.0) for i in ids)
            for key, ids in self._index.items()
        }

    def candidates(self, key: str) -> list[Place]:
        """Places named ``key`` (already a ``name_key``), best first."""
        ids = self._index.get(key)
        if not ids:
            return []
        places = [self.place(i, key) for i in ids]
        admin_best: dict[str, float] = {}
        for p in places:
            if p.kind in ("admin1", "admin2"):
                admin_best[p.country] = max(admin_best.get(p.country, 0.0), p.importance)
        return sorted(places, key=lambda p: self._rank(p, key, admin_best), reverse=True)

    @staticmethod
    def _rank(place: Place, key: str, admin_best: dict[str, float]) -> float:
        """Importance with the priors a Copernicus user expects.

        A city that gives its name to its province or region is its capital and wins over it (Valencia,
        Toledo); a place called by its own name beats one for which the word is only an alias ("Granada"
        the city, not Grenada); Western Europe gets a small bonus.
        """
        score = place.importance
        if place.kind == "city" and place.country in admin_best:
            score = max(score, admin_best[place.country]) + 0.1
        if name_key(place.name) == key:
            score += 1.0
        if place.country in EUROPE:
            score += 1.0
        return score

    def resolve(self, key: str) -> Place | None:
        found = self.candidates(key)
        if not found:
            return None
        best = found[0]
        return Place(
            best.id, best.name, best.kind, best.country, best.bbox, best.importance, best.point, key, tuple(found[1:6])
        )

    @cached_property
    def _fuzzy_keys(self) -> list[str]:
        """Names of countries, regions, natural regions and cities > 100,000: the fuzzy-matching universe."""
        keys = []
        for key, ids in self._index.items():
            if len(key) < 5:
                continue
            if any(self._entries[i][1] != "city" or self._entries[i][4] >= 5.5 for i in ids):
                keys.append(key)
        return keys

    def fuzzy(self, text: str, *, cutoff: float = 88.0) -> Place | None:
        """The closest important place name within a small edit distance ("Toulose", "Valenca")."""
        from rapidfuzz import fuzz, process

        key = name_key(text)
        if len(key) < 5:
            return None
        with self._lock:
            keys = self._fuzzy_keys
        hit = process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=cutoff)
        if hit is None:
            return None
        return self.resolve(hit[0])

    def geometry(self, place: Place) -> dict[str, Any] | None:
        """The outline of a country or admin area; a point for a city; ``None`` where only the bbox is known."""
        if place.kind == "city" and place.point is not None:
            return {"type": "Point", "coordinates": [place.point[0], place.point[1]]}
        with self._lock:
            if self._geometries is None:
                text = (
                    resources.files("snapearth.earthsearch")
                    .joinpath("data/place_geometries.json")
                    .read_text(encoding="utf-8")
                )
                self._geometries = json.loads(text)
        return self._geometries.get(str(place.id))


_GAZETTEER: Gazetteer | None = None
_GAZETTEER_LOCK = threading.Lock()


def get_gazetteer() -> Gazetteer:
    global _GAZETTEER
    with _GAZETTEER_LOCK:
        if _GAZETTEER is None:
            _GAZETTEER = Gazetteer.load()
        return _GAZETTEER
