"""The place table shipped in ``data/places.json`` (built by ``scripts/build_earthsearch_gazetteer.py``).

Countries (mainland bbox, Natural Earth outline), admin-1/admin-2 areas (Natural Earth 10m, names in five
languages), cities > 15,000 inhabitants (GeoNames, box sized from the population) and the project's curated
natural regions. Loaded once per process; outlines (``place_geometries.json``) only when first asked for.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

from snapearth.earthsearch.text import name_key

# Western and central Europe (EU, EEA, UK, Switzerland): Copernicus users' home ground, a mild prior.
EUROPE = frozenset(
    {
        "AD",
        "AT",
        "BE",
        "BG",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GB",
        "GR",
        "HR",
        "HU",
        "IE",
        "IS",
        "IT",
        "LI",
        "LT",
        "LU",
        "LV",
        "MC",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "SM",
        "VA",
    }
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
        self._rows: list[str] = payload["entries"]
        self._entries: dict[int, list[Any]] = {}
        self._index: dict[str, str] = dict(line.split("\t", 1) for line in payload["index"])
        self._geometries: list[str] | None = None
        self._fuzzy_keys: list[str] = payload["fuzzy"]
        packed: str = payload["trigrams"]
        self._trigrams = frozenset(packed[i : i + 3] for i in range(0, len(packed), 3))
        self._lock = threading.Lock()
        self.max_words = max(key.count(" ") for key in self._index) + 1

    @classmethod
    def load(cls) -> Gazetteer:
        data = resources.files("snapearth.earthsearch").joinpath("data/places.json").read_bytes()
        return cls(orjson.loads(data))

    def _entry(self, eid: int) -> list[Any]:
        row = self._entries.get(eid)
        if row is None:
            row = self._entries[eid] = orjson.loads(self._rows[eid])
        return row

    def _ids(self, key: str) -> list[int]:
        value = self._index.get(key)
        return [int(v) for v in value.split(",")] if value else []

    def place(self, eid: int, matched: str = "") -> Place:
        name, kind, country, bbox, importance, *rest = self._entry(eid)
        point = (float(rest[0][0]), float(rest[0][1])) if rest else None
        return Place(eid, name, kind, country, tuple(bbox), float(importance), point, matched)

    def key_priorities(self) -> dict[str, float]:
        """Every name key with the importance of its most important place (for completion)."""
        out: dict[str, float] = {}
        for key in self._index:
            best = 0.0
            for i in self._ids(key):
                row = self._entry(i)
                best = max(best, float(row[4]) + (1.0 if row[2] in EUROPE else 0.0))
            out[key] = best
        return out

    def candidates(self, key: str, prefer: frozenset[str] = frozenset()) -> list[Place]:
        """Places named ``key`` (already a ``name_key``), best first; ``prefer``: countries of the query's
        language (a French query about "Brest" means Brittany, not Belarus)."""
        ids = self._ids(key)
        if not ids:
            return []
        places = [self.place(i, key) for i in ids]
        admin_best: dict[str, float] = {}
        for p in places:
            if p.kind in ("admin1", "admin2"):
                admin_best[p.country] = max(admin_best.get(p.country, 0.0), p.importance)
        return sorted(
            places, key=lambda p: self._rank(p, key, admin_best) + (0.5 if p.country in prefer else 0.0), reverse=True
        )

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

    def resolve(self, key: str, prefer: frozenset[str] = frozenset()) -> Place | None:
        found = self.candidates(key, prefer)
        if not found:
            return None
        best = found[0]
        return Place(
            best.id, best.name, best.kind, best.country, best.bbox, best.importance, best.point, key, tuple(found[1:6])
        )

    def wordlike(self, word: str, *, threshold: float = 0.75) -> bool:
        """Whether ``word`` reads like a word (its letter trigrams occur in place names), not keyboard noise."""
        grams = [word[i : i + 3] for i in range(len(word) - 2)]
        if not grams:
            return False
        return sum(g in self._trigrams for g in grams) / len(grams) >= threshold

    def fuzzy(self, text: str, *, cutoff: float = 88.0) -> Place | None:
        """The closest important place name within a small edit distance ("Toulose", "Valenca")."""
        from rapidfuzz import fuzz, process

        key = name_key(text)
        if len(key) < 5:
            return None
        hit = process.extractOne(key, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=cutoff)
        if hit is None:
            return None
        return self.resolve(hit[0])

    def geometry(self, place: Place) -> dict[str, Any] | None:
        """The outline of a country or admin area; a point for a city; ``None`` where only the bbox is known."""
        if place.kind == "city" and place.point is not None:
            return {"type": "Point", "coordinates": [place.point[0], place.point[1]]}
        with self._lock:
            if self._geometries is None:
                data = resources.files("snapearth.earthsearch").joinpath("data/place_geometries.json").read_bytes()
                self._geometries = orjson.loads(data)
            row = self._geometries[place.id] if place.id < len(self._geometries) else ""
        return orjson.loads(row) if row else None


_GAZETTEER: Gazetteer | None = None
_GAZETTEER_LOCK = threading.Lock()


def get_gazetteer() -> Gazetteer:
    global _GAZETTEER
    with _GAZETTEER_LOCK:
        if _GAZETTEER is None:
            _GAZETTEER = Gazetteer.load()
        return _GAZETTEER
