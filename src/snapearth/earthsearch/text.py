"""Text normalisation shared by the gazetteer build script and the parser (same keys on both sides)."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "`": "'", "\u00b4": "'", "\u2018": "'"})
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case, strip accents (é -> e, ß -> ss), unify apostrophes; keeps word characters only."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def name_key(text: str) -> str:
    """The gazetteer key of a place name: folded, hyphens/apostrophes/dots as spaces, single-spaced."""
    text = fold(text)
    text = re.sub(r"[-'./,()]+", " ", text)
    text = re.sub(r"[^\w ]+", "", text)
    return _SPACES.sub(" ", text).strip()
