"""Suggestions while typing: places of the gazetteer and theme words that complete the last words typed."""

from __future__ import annotations

import bisect
import heapq
import threading
from dataclasses import dataclass
from functools import cached_property

from snapearth.earthsearch.gazetteer import EUROPE, Gazetteer, Place, get_gazetteer
from snapearth.earthsearch.lexicon import THEME_WORDS
from snapearth.earthsearch.text import name_key

MIN_PREFIX = 2


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "place" | "theme"
    label: str  # what is shown
    text: str  # the whole query with the completion applied

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "text": self.text}


class Suggester:
    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self._given = gazetteer
        self._lock = threading.Lock()

    @cached_property
    def gazetteer(self) -> Gazetteer:
        return self._given or get_gazetteer()

    @cached_property
    def _index(self) -> tuple[list[str], list[float]]:
        priorities = self.gazetteer.key_priorities()
        keys = sorted(priorities)
        return keys, [priorities[k] for k in keys]

    def warm_up(self) -> None:
        """Build the completion index now (a server does it in the background at start-up)."""
        with self._lock:
            self._index  # noqa: B018

    @cached_property
    def _theme_words(self) -> list[tuple[str, str]]:
        words = {(w, theme) for theme, ws in THEME_WORDS.items() for w in ws if not w.endswith("*") and " " not in w}
        return sorted(words)

    def _with_prefix(self, prefix: str, limit: int) -> list[str]:
        """The ``limit`` most important keys that start with ``prefix``."""
        with self._lock:
            keys, priorities = self._index
        start = bisect.bisect_left(keys, prefix)
        end = bisect.bisect_left(keys, prefix + "\uffff", lo=start)
        best = heapq.nlargest(limit, range(start, end), key=priorities.__getitem__)
        return [keys[i] for i in best]

    def suggest(self, text: str, limit: int = 8) -> list[Suggestion]:
        """Completions of the end of ``text``: the last one to three words as a place name, the last as a theme."""
        words = text.split()
        if not words:
            return []
        out: list[Suggestion] = []
        seen: set[str] = set()
        for n in (3, 2, 1):
            if len(words) < n:
                continue
            head, tail = words[:-n], words[-n:]
            prefix = name_key(" ".join(tail))
            if len(prefix) < MIN_PREFIX:
                continue
            places: list[tuple[str, Place]] = []
            for key in self._with_prefix(prefix, 40):
                best = self.gazetteer.resolve(key)
                if best is None:
                    continue
                own_name = name_key(best.name) == key
                # a city's other names are mostly transliterations: only translations of areas are offered
                if own_name or best.kind != "city":
                    places.append((best.name if own_name else key.title(), best))
            places.sort(key=lambda named: _priority(named[1]), reverse=True)
            for name, place in places:
                where = f"{place.kind}, {place.country}" if place.country else place.kind
                label = f"{name} ({where})" if name == place.name else f"{name} — {place.name} ({where})"
                if name in seen:  # the same completed text: keep the most likely place of that name
                    continue
                seen.add(name)
                out.append(Suggestion("place", label, " ".join([*head, name])))
                if len(out) >= limit:
                    return out
        last = name_key(words[-1])
        if len(last) >= MIN_PREFIX:
            for word, theme in self._theme_words:
                if word.startswith(last) and word != last and f"theme:{word}" not in seen:
                    seen.add(f"theme:{word}")
                    out.append(Suggestion("theme", f"{word} ({theme})", " ".join([*words[:-1], word])))
                    if len(out) >= limit:
                        break
        return out[:limit]


def _priority(place: Place) -> tuple[float, int]:
    """The gazetteer's priors for a Copernicus user (Western Europe first), then shorter names."""
    return place.importance + (1.0 if place.country in EUROPE else 0.0), -len(place.name)
