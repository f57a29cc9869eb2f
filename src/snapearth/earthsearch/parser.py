"""Understanding a query: language, place, time, conditions, themes, comparison (``snapearth parse``).

A deterministic pipeline over the folded query: coordinates and bbox literals, cloud-cover figures, dates
(``dates``), then a left-to-right longest-match over the lexicon and the gazetteer; whatever is left and is
not a stop word is reported in ``unparsed``. Only words the tables do not know go to the embedding model.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from snapearth.earthsearch import dates as dates_mod
from snapearth.earthsearch import lexicon
from snapearth.earthsearch.gazetteer import Gazetteer, Place, get_gazetteer
from snapearth.earthsearch.text import fold, name_key
from snapearth.errors import InvalidInputError

MAX_QUERY_CHARS = 1000  # longer input is truncated: a clear answer fast, never an error
MAX_UNPARSED = 50
MAX_WORD_CHARS = 40  # longer "words" are noise: never sent to fuzzy or semantic matching
MAX_SEMANTIC_WORDS = 6
POINT_HALF_DEG = 0.05  # a coordinate pair becomes a ~10 km box

_NUMBER = r"-?\d{1,3}(?:\.\d+)?"
_BBOX_RE = re.compile(
    rf"(?:\b(?:bbox|box|bounding box|emprise|rahmen)\s*[:=]?\s*)?[\[(]?\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*"
    rf"({_NUMBER})\s*,\s*({_NUMBER})\s*[\])]?"
)
_HEMI_RE = re.compile(
    r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s*°?\s*([nsewo])\b\s*,?\s*(?:and|et|und|y|e)?\s*(\d{1,3}(?:\.\d+)?)\s*°?\s*([nsewo])\b"
)
_LATLON_RE = re.compile(
    rf"\b(?:lat(?:itude)?)\s*[:=]?\s*({_NUMBER})\s*,?\s*(?:lon(?:g|gitude)?|lng)\s*[:=]?\s*({_NUMBER})"
)
_PAIR_RE = re.compile(r"(?<![\w.,])(-?\d{1,2}\.\d+)\s*,\s*(-?\d{1,3}\.\d+)(?![\w.,])")

_COMPARATOR = (
    r"(?:less than|fewer than|under|below|at most|up to|max(?:imum)?|<=?|≤|moins de|inferieure? a|au plus|"
    r"au maximum|jusqu a|weniger als|unter|hochstens|hoechstens|maximal|bis zu|menos de|menos del|inferior al?|"
    r"como maximo|hasta|meno di|meno del|inferiore al?|al massimo|fino al?)"
)
_CLOUD_WORD = r"(?:cloud\w*|nuage\w*|nebulosite|wolke\w*|bewolkung|nube\w*|nubosidad|nuvol\w*|cc)"
_PERCENT = r"(?:%|percent|per cent|pourcent|prozent|por ciento|per cento)"
_CLOUD_RES = [
    re.compile(
        rf"(?:{_COMPARATOR}\s*)?(\d{{1,3}}(?:[.,]\d+)?)\s*{_PERCENT}\s*(?:(?:of|de|d|di|del|der|an)\s+)?"
        rf"(?:couverture\s+)?{_CLOUD_WORD}(?:\s+(?:cover|coverage|couverture|bedeckung|cobertura|copertura))?"
    ),
    re.compile(
        rf"{_CLOUD_WORD}(?:\s+(?:cover|coverage|bedeckung|anteil))?\s*(?:[:=]\s*)?(?:(?:of|de|di|del)\s+)?"
        rf"{_COMPARATOR}\s*(\d{{1,3}}(?:[.,]\d+)?)\s*{_PERCENT}?"
    ),
    re.compile(
        rf"(?:couverture nuageuse|copertura nuvolosa|cobertura nubosa|bewolkung)\s*{_COMPARATOR}?\s*"
        rf"(\d{{1,3}}(?:[.,]\d+)?)\s*{_PERCENT}?"
    ),
]
# Where each language is spoken in Europe: a mild preference between namesakes.
LANGUAGE_COUNTRIES = {
    "en": frozenset({"GB", "IE", "MT"}),
    "fr": frozenset({"FR", "BE", "CH", "LU", "MC"}),
    "de": frozenset({"DE", "AT", "CH", "LI", "LU"}),
    "es": frozenset({"ES", "AD"}),
    "it": frozenset({"IT", "CH", "SM", "VA"}),
}
_LOCATIVES = {
    "in",
    "at",
    "over",
    "near",
    "around",
    "a",
    "au",
    "en",
    "sur",
    "pres",
    "dans",
    "bei",
    "im",
    "um",
    "nahe",
    "uber",
    "nel",
    "nella",
    "su",
    "sul",
    "vicino",
    "cerca",
    "sobre",
    "of",
}
_PLACE_PREPOSITIONS = {
    "in",
    "at",
    "of",
    "over",
    "near",
    "around",
    "from",
    "a",
    "au",
    "aux",
    "en",
    "de",
    "du",
    "des",
    "sur",
    "pres",
    "bei",
    "im",
    "um",
    "von",
    "nahe",
    "nach",
    "nel",
    "nella",
    "nei",
    "di",
    "del",
    "della",
    "su",
    "sul",
    "vicino",
    "cerca",
    "sobre",
    "para",
    "desde",
    "da",
    "dal",
    "dans",
    "à",
}


@dataclass
class ParsedQuery:
    query: str
    language: str | None = None
    place: Place | None = None
    near: bool = False
    bbox: tuple[float, float, float, float] | None = None
    geometry: dict[str, Any] | None = None
    interval: dates_mod.Interval | None = None
    collections: list[str] = field(default_factory=list)
    max_cloud_cover: float | None = None
    themes: list[str] = field(default_factory=list)
    compare: str | None = None
    unparsed: list[str] = field(default_factory=list)
    place_name: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def datetime_range(self) -> tuple[datetime, datetime] | None:
        if self.interval is None:
            return None
        start = datetime(self.interval.start.year, self.interval.start.month, self.interval.start.day, tzinfo=UTC)
        end = datetime(self.interval.end.year, self.interval.end.month, self.interval.end.day, 23, 59, 59, tzinfo=UTC)
        return start, end

    def place_dict(self, gazetteer: Gazetteer | None = None) -> dict[str, Any] | None:
        if self.bbox is None:
            return None
        out: dict[str, Any] = {
            "name": self.place_name,
            "bbox": [round(v, 5) for v in self.bbox],
            "geometry": self.geometry,
        }
        if self.place is not None:
            out["kind"] = self.place.kind
            out["country"] = self.place.country or None
            out["near"] = self.near
            out["alternatives"] = [
                {"name": alt.name, "kind": alt.kind, "country": alt.country or None, "bbox": list(alt.bbox)}
                for alt in self.place.alternatives
            ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The output contract of ``snapearth parse`` and the API."""
        span = self.datetime_range
        return {
            "query": self.query,
            "language": self.language,
            "place": self.place_dict(),
            "datetime": None
            if span is None
            else {"start": span[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "end": span[1].strftime("%Y-%m-%dT%H:%M:%SZ")},
            "collections": list(self.collections),
            "max_cloud_cover": self.max_cloud_cover,
            "themes": list(self.themes),
            "compare": self.compare,
            "unparsed": list(self.unparsed),
        }


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _compile_phrases() -> tuple[dict[str, tuple[str, Any]], list[tuple[str, tuple[str, Any]]], int]:
    exact: dict[str, tuple[str, Any]] = {}
    prefixes: list[tuple[str, tuple[str, Any]]] = []

    def add(phrase: str, meaning: tuple[str, Any]) -> None:
        phrase = re.sub(r"[-/]", " ", fold(phrase)).strip()
        if phrase.endswith("*"):
            stem = phrase[:-1]
            if " " in stem:
                exact.setdefault(stem, meaning)
                exact.setdefault(stem + "s", meaning)
            else:
                prefixes.append((stem, meaning))
        else:
            exact.setdefault(phrase, meaning)

    for phrase in lexicon.COMPARE_PHRASES:
        add(phrase, ("compare", "before_after"))
    for phrase, collection in lexicon.SENSOR_PHRASES.items():
        add(phrase, ("sensor", collection))
    for phrase, ceiling in lexicon.CLOUD_FREE_PHRASES.items():
        add(phrase, ("cloud", ceiling))
    for phrase in lexicon.NEAR_WORDS:
        add(phrase, ("near", True))
    for theme, words in lexicon.THEME_WORDS.items():
        for word in words:
            add(word, ("theme", theme))
    for word in lexicon.CLOUD_WORDS:
        add(word, ("cloudword", None))
    prefixes.sort(key=lambda p: len(p[0]), reverse=True)
    longest = max(len(k.split()) for k in exact)
    return exact, prefixes, longest


_EXACT, _PREFIXES, _LONGEST_PHRASE = _compile_phrases()


class QueryParser:
    """Parses queries; heavy resources (gazetteer, language model, embeddings) load on first need."""

    def __init__(self, *, semantic: bool = True, gazetteer: Gazetteer | None = None) -> None:
        self.semantic = semantic
        self._gazetteer = gazetteer
        self._detector: Any = None
        self._lock = threading.Lock()

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gazetteer is None:
            self._gazetteer = get_gazetteer()
        return self._gazetteer

    def warm_up(self) -> None:
        """Load the gazetteer (the one resource most queries need)."""
        _ = self.gazetteer

    # -- language -------------------------------------------------------------------------------------
    def _language(self, original: str, tokens: list[str]) -> str | None:
        if not tokens:
            return None
        votes = dict.fromkeys(lexicon.LANGUAGES, 0.0)
        for token in tokens:
            for lang in lexicon.LANGUAGES:
                if token in lexicon.LANGUAGE_HINTS[lang]:
                    votes[lang] += 1.0
                elif token in lexicon.STOP_WORDS[lang]:
                    votes[lang] += 0.5
        ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
        if ranked[0][1] >= 1.0 and ranked[0][1] > ranked[1][1]:
            return ranked[0][0]
        detected = self._lingua(original)
        if detected is not None:
            return detected
        return ranked[0][0] if ranked[0][1] > 0 else "en"

    def _lingua(self, text: str) -> str | None:
        with self._lock:
            if self._detector is None:
                from lingua import Language, LanguageDetectorBuilder

                self._detector = (
                    LanguageDetectorBuilder.from_languages(
                        Language.ENGLISH, Language.FRENCH, Language.GERMAN, Language.SPANISH, Language.ITALIAN
                    )
                    .with_low_accuracy_mode()
                    .build()
                )
        language = self._detector.detect_language_of(text[:300])
        return None if language is None else str(language.iso_code_639_1.name).lower()

    # -- main entry -----------------------------------------------------------------------------------
    def parse(self, query: str, now: date | None = None) -> ParsedQuery:
        if not isinstance(query, str):
            raise InvalidInputError("q: the query must be text", field="q")
        now = now or datetime.now(UTC).date()
        result = ParsedQuery(query=query)
        text = query[:MAX_QUERY_CHARS]
        if len(query) > MAX_QUERY_CHARS:
            result.notes.append(f"query truncated to its first {MAX_QUERY_CHARS} characters")
        folded = fold(text)
        folded = re.sub(r"[^\w\s%.,:/°+<=≤\[\]()-]+", " ", folded.replace("'", " "))
        folded = re.sub(r"\s+", " ", folded).strip()
        folded = self._coordinates(folded, result)
        folded = self._cloud_figures(folded, result)
        date_matches = dates_mod.find_dates(folded, now)
        for match in date_matches:
            folded = _blank(folded, *match.span)
        result.interval = dates_mod.combine(date_matches)
        words_text = re.sub(r"(?<!\d)[.,:](?!\d)|[.,:](?=\s|$)|[-/\[\]()<=≤+°]", " ", folded)
        words_text = words_text.replace("%", " % ")
        tokens = words_text.split()
        originals = _original_tokens(text)
        result.language = self._language(text, re.findall(r"[^\W\d_]+", fold(text)))
        self._words(tokens, originals, result)
        return result

    # -- stages ---------------------------------------------------------------------------------------
    def _coordinates(self, text: str, result: ParsedQuery) -> str:
        for regex in (_BBOX_RE,):
            for match in regex.finditer(text):
                west, south, east, north = (float(v) for v in match.groups())
                if -180 <= west < east <= 180 and -90 <= south < north <= 90:
                    result.bbox = (west, south, east, north)
                    result.place_name = f"bbox {west:g},{south:g},{east:g},{north:g}"
                    result.geometry = _box_geometry(result.bbox)
                    return _blank(text, *match.span())
        point: tuple[float, float] | None = None
        span: tuple[int, int] | None = None
        hemi = _HEMI_RE.search(text)
        if hemi:
            a, ha, b, hb = hemi.group(1), hemi.group(2), hemi.group(3), hemi.group(4)
            if ha in "ns" and hb in "ewo":
                lat = float(a) * (-1 if ha == "s" else 1)
                lon = float(b) * (-1 if hb in "wo" else 1)
                point, span = (lon, lat), hemi.span()
            elif ha in "ewo" and hb in "ns":
                lon = float(a) * (-1 if ha in "wo" else 1)
                lat = float(b) * (-1 if hb == "s" else 1)
                point, span = (lon, lat), hemi.span()
        if point is None:
            for regex in (_LATLON_RE, _PAIR_RE):
                found = regex.search(text)
                if found:
                    point, span = (float(found.group(2)), float(found.group(1))), found.span()
                    break
        if point is None or span is None:
            return text
        lon, lat = point
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return text
        result.bbox = (
            max(-180.0, lon - POINT_HALF_DEG),
            max(-90.0, lat - POINT_HALF_DEG),
            min(180.0, lon + POINT_HALF_DEG),
            min(90.0, lat + POINT_HALF_DEG),
        )
        result.place_name = f"{abs(lat):g}°{'N' if lat >= 0 else 'S'} {abs(lon):g}°{'E' if lon >= 0 else 'W'}"
        result.geometry = {"type": "Point", "coordinates": [lon, lat]}
        return _blank(text, *span)

    def _cloud_figures(self, text: str, result: ParsedQuery) -> str:
        for regex in _CLOUD_RES:
            match = regex.search(text)
            if match:
                value = float(match.group(1).replace(",", "."))
                if 0 <= value <= 100:
                    result.max_cloud_cover = value
                    return _blank(text, *match.span())
        return text

    def _words(self, tokens: list[str], originals: dict[str, bool], result: ParsedQuery) -> None:
        used = [False] * len(tokens)
        prefer = LANGUAGE_COUNTRIES.get(result.language or "", frozenset())
        near_at: int | None = None
        place_hits: list[tuple[int, int, Place]] = []
        gaz = self.gazetteer if tokens else None

        def mark(i: int, n: int) -> None:
            for k in range(i, i + n):
                used[k] = True

        # 1. multi-word lexicon phrases and multi-word places, longest first, left to right
        i = 0
        while i < len(tokens):
            matched = 0
            for n in range(min(max(_LONGEST_PHRASE, gaz.max_words if gaz else 1), len(tokens) - i), 1, -1):
                if any(used[i : i + n]):
                    continue
                phrase = " ".join(tokens[i : i + n])
                meaning = _EXACT.get(phrase)
                if meaning is not None:
                    near_at = self._apply(meaning, i, n, result, near_at)
                    matched = n
                    break
                if gaz is not None:
                    place = gaz.resolve(phrase, prefer)
                    if place is not None and not _all_stop(tokens[i : i + n]):
                        place_hits.append((i, n, place))
                        matched = n
                        break
            if matched:
                mark(i, matched)
                i += matched
            else:
                i += 1
        # 2. single words: lexicon, then places
        for i, token in enumerate(tokens):
            if used[i]:
                continue
            meaning = _EXACT.get(token) or _prefix_meaning(token)
            if meaning is not None:
                near_at = self._apply(meaning, i, 1, result, near_at)
                used[i] = True
        for i, token in enumerate(tokens):
            if used[i] or token in lexicon.ALL_STOP_WORDS or token.isdigit() or len(token) < 2 or token == "%":
                continue
            if gaz is None:
                break
            place = gaz.resolve(token, prefer)
            if place is None:
                continue
            previous = tokens[i - 1] if i > 0 else ""
            # a rare or alias-only city name in lower case ("salata", "nice") needs a preposition before it
            if place.kind == "city" and (place.importance < 5.5 or name_key(place.name) != token):
                capitalised = originals.get(token, False)
                if not capitalised and previous not in _PLACE_PREPOSITIONS and near_at != i:
                    continue
            place_hits.append((i, 1, place))
            used[i] = True
        # 3. typos: fuzzy place names among the words nobody understood
        if not place_hits and result.bbox is None and gaz is not None:
            unknown = [
                i
                for i, t in enumerate(tokens)
                if not used[i] and t.isalpha() and 5 <= len(t) <= MAX_WORD_CHARS and t not in lexicon.ALL_STOP_WORDS
            ][:3]
            for i in unknown:
                place = gaz.fuzzy(tokens[i])
                if place is not None:
                    place_hits.append((i, 1, place))
                    used[i] = True
                    result.notes.append(f"{tokens[i]!r} read as {place.name!r}")
                    break
        if place_hits and result.bbox is None:
            self._choose_place(place_hits, near_at, result, tokens)
        elif place_hits:
            result.notes.append("coordinates given: place names kept as context only")
        leftovers = [t for i, t in enumerate(tokens) if not used[i]]
        unparsed = [t for t in leftovers if t not in lexicon.ALL_STOP_WORDS and t != "%"]
        if not result.themes and self.semantic and unparsed:
            content = [
                t for t in unparsed if t.isalpha() and 4 <= len(t) <= MAX_WORD_CHARS and self.gazetteer.wordlike(t)
            ]
            words = " ".join(content)
            if words and len(content) <= MAX_SEMANTIC_WORDS:
                from snapearth.earthsearch.themes import semantic_theme

                hit = semantic_theme(words)
                if hit is not None:
                    result.themes.append(hit[0])
                    result.notes.append(f"{words!r} read as theme {hit[0]!r} (similarity {hit[1]:.2f})")
                    unparsed = [t for t in unparsed if t not in content]
        result.unparsed = unparsed[:MAX_UNPARSED]

    def _apply(self, meaning: tuple[str, Any], i: int, n: int, result: ParsedQuery, near_at: int | None) -> int | None:
        kind, value = meaning
        if kind == "compare":
            result.compare = "before_after"
        elif kind == "sensor":
            if value not in result.collections:
                result.collections.append(value)
        elif kind == "cloud":
            result.max_cloud_cover = value if result.max_cloud_cover is None else min(result.max_cloud_cover, value)
        elif kind == "near":
            return i + n
        elif kind == "theme" and value not in result.themes:
            result.themes.append(value)
        return near_at

    def _choose_place(
        self, hits: list[tuple[int, int, Place]], near_at: int | None, result: ParsedQuery, tokens: list[str]
    ) -> None:
        """Several places: a country narrows the others; a place after a locative preposition ("à Paris")
        beats one in a genitive ("crue de la Seine"); then the smallest wins."""
        countries = [p for _, _, p in hits if p.kind == "country"]
        others = [(i, n, p) for i, n, p in hits if p.kind != "country"]
        if countries:
            narrowed = []
            for i, n, p in others:
                inside = p if p.country == countries[0].country else self._within_country(p, countries[0].country)
                if inside is not None:
                    narrowed.append((i, n, inside))
            others = narrowed
        if others:

            def preference(hit: tuple[int, int, Place]) -> tuple[int, float]:
                i, _, p = hit
                locative = i > 0 and tokens[i - 1] in _LOCATIVES
                west, south, east, north = p.bbox
                return (0 if locative else 1, (east - west) * (north - south))

            start, _, chosen = min(others, key=preference)
        else:
            start, _, chosen = next((i, n, p) for i, n, p in hits if p.kind == "country")
        result.place = chosen
        result.near = near_at is not None and near_at <= start <= near_at + 3
        result.bbox = chosen.widened() if result.near else chosen.bbox
        result.place_name = chosen.name
        result.geometry = None if result.near else self.gazetteer.geometry(chosen)

    def _within_country(self, place: Place, country: str) -> Place | None:
        for candidate in self.gazetteer.candidates(place.matched):
            if candidate.country == country:
                rest = tuple(p for p in (place, *place.alternatives) if p.id != candidate.id)
                return Place(
                    candidate.id,
                    candidate.name,
                    candidate.kind,
                    candidate.country,
                    candidate.bbox,
                    candidate.importance,
                    candidate.point,
                    candidate.matched,
                    rest[:5],
                )
        return None


def _prefix_meaning(token: str) -> tuple[str, Any] | None:
    if len(token) < 3:
        return None
    for stem, meaning in _PREFIXES:
        if token.startswith(stem):
            return meaning
    return None


def _all_stop(tokens: list[str]) -> bool:
    return all(t in lexicon.ALL_STOP_WORDS for t in tokens)


def _original_tokens(text: str) -> dict[str, bool]:
    """Folded word -> whether the user capitalised it somewhere (a hint that a rare word is a name)."""
    out: dict[str, bool] = {}
    for word in re.findall(r"\w+", text):
        key = fold(word)
        out[key] = out.get(key, False) or word[:1].isupper()
    return out


def _box_geometry(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    west, south, east, north = bbox
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


_DEFAULT: QueryParser | None = None
_DEFAULT_LOCK = threading.Lock()


def get_parser() -> QueryParser:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = QueryParser()
        return _DEFAULT


def parse(query: str, now: date | None = None) -> ParsedQuery:
    return get_parser().parse(query, now)
