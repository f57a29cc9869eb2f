"""Embeddings of images and chips, and their approximate-nearest-neighbour index (usearch, HNSW, cosine).

A vector is built from what the signature already measured, so it costs nothing extra to compute and is
explainable: spectral content (land-cover fractions, mean indices), texture (NDVI spread and local gradient)
and time (day of year on the unit circle). Images and chips share one vector layout per collection, so a
chip can be compared with the chips of every other image ("places like this one").

The index lives under ``<data>/signature/index/<collection>/``: ``images.usearch`` and ``chips.usearch``
with a JSON sidecar mapping usearch's integer keys to item ids (and chip positions). Vectors are also kept in
the catalog's records (namespace ``signature-embeddings``) so the index can always be rebuilt from them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from snapearth.errors import NotFoundError

OPTICAL_FEATURES = (
    "water",
    "snow_ice",
    "burned",
    "built_up",
    "bare_soil",
    "sparse_vegetation",
    "moderate_vegetation",
    "dense_vegetation",
    "ndvi_mean",
    "ndwi_mean",
    "mndwi_mean",
    "nbr_mean",
    "ndvi_std",
    "ndvi_texture",
    "season_sin",
    "season_cos",
)
RADAR_FEATURES = (
    "water",
    "vv_mean",
    "vh_mean",
    "vv_std",
    "vv_vh_ratio",
    "vv_texture",
    "season_sin",
    "season_cos",
)
# Weights put the groups on comparable footing (fractions 0..1, indices -1..1, dB scaled to ~1).
_OPTICAL_WEIGHTS = np.array([1.0] * 8 + [0.5] * 4 + [2.0, 4.0] + [0.25, 0.25], dtype=np.float32)
_RADAR_WEIGHTS = np.array([1.0, 1 / 10, 1 / 10, 1 / 4, 1 / 10, 1 / 4, 0.25, 0.25], dtype=np.float32)


def season(when: datetime) -> tuple[float, float]:
    angle = 2 * math.pi * (when.timetuple().tm_yday - 1) / 365.25
    return math.sin(angle), math.cos(angle)


def optical_vector(features: dict[str, float]) -> np.ndarray:
    raw = np.array([features.get(name, 0.0) for name in OPTICAL_FEATURES], dtype=np.float32)
    return _normalise(raw * _OPTICAL_WEIGHTS)


def radar_vector(features: dict[str, float]) -> np.ndarray:
    raw = np.array([features.get(name, 0.0) for name in RADAR_FEATURES], dtype=np.float32)
    return _normalise(raw * _RADAR_WEIGHTS)


def _normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.nan_to_num(vector, nan=0.0)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def stable_key(*parts: object) -> int:
    """A 63-bit key for usearch, stable across runs and machines."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass
class Neighbour:
    item_id: str
    distance: float
    chip: dict[str, Any] | None = None


class _KeyedIndex:
    """One usearch index plus its key -> payload sidecar."""

    def __init__(self, path: Path, ndim: int) -> None:
        self.path = path
        self.sidecar = path.with_suffix(".json")
        self.ndim = ndim
        self.index = Index(ndim=ndim, metric="cos", dtype="f32")
        self.payload: dict[int, dict[str, Any]] = {}
        if path.exists() and self.sidecar.exists():
            self.index.load(str(path))
            self.payload = {int(k): v for k, v in json.loads(self.sidecar.read_text()).items()}

    def upsert(self, key: int, vector: np.ndarray, payload: dict[str, Any]) -> None:
        if key in self.index:
            self.index.remove(key)
        self.index.add(key, vector.astype(np.float32))
        self.payload[key] = payload

    def remove(self, key: int) -> None:
        if key in self.index:
            self.index.remove(key)
        self.payload.pop(key, None)

    def search(self, vector: np.ndarray, count: int) -> list[tuple[dict[str, Any], float]]:
        if len(self.index) == 0:
            return []
        matches = self.index.search(vector.astype(np.float32), min(count, len(self.index)))
        return [(self.payload[int(k)], float(d)) for k, d in zip(matches.keys, matches.distances, strict=True)]

    def vector(self, key: int) -> np.ndarray | None:
        if key not in self.index:
            return None
        found = self.index.get(key)
        return None if found is None else np.asarray(found, dtype=np.float32).reshape(-1)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.index.save(str(tmp))
        os.replace(tmp, self.path)
        tmp_json = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp_json.write_text(json.dumps({str(k): v for k, v in self.payload.items()}))
        os.replace(tmp_json, self.sidecar)


class SimilarityIndex:
    """Images and chips of one collection; "images like this one" and "places like this one"."""

    def __init__(self, root: Path, collection: str) -> None:
        self.root = root / "signature" / "index" / collection
        self.collection = collection
        ndim = len(RADAR_FEATURES) if collection.startswith("sentinel-1") else len(OPTICAL_FEATURES)
        self.images = _KeyedIndex(self.root / "images.usearch", ndim)
        self.chips = _KeyedIndex(self.root / "chips.usearch", ndim)

    def __len__(self) -> int:
        return len(self.images.index)

    def upsert(self, item_id: str, vector: list[float], chips: list[dict[str, Any]]) -> None:
        """Index an item's vector and its chips (each ``{"row", "col", "bbox", "vector"}``), replacing old ones."""
        old = [k for k, p in self.chips.payload.items() if p["item_id"] == item_id]
        for key in old:
            self.chips.remove(key)
        self.images.upsert(stable_key(item_id), np.asarray(vector, dtype=np.float32), {"item_id": item_id})
        for chip in chips:
            payload = {"item_id": item_id, "row": chip["row"], "col": chip["col"], "bbox": chip["bbox"]}
            key = stable_key(item_id, chip["row"], chip["col"])
            self.chips.upsert(key, np.asarray(chip["vector"], dtype=np.float32), payload)

    def save(self) -> None:
        self.images.save()
        self.chips.save()

    def similar_images(self, item_id: str, limit: int = 10) -> list[Neighbour]:
        vector = self.images.vector(stable_key(item_id))
        if vector is None:
            raise NotFoundError(f"item {item_id!r} has no embedding in {self.collection!r}: run `snapearth enrich`")
        found = self.images.search(vector, limit + 1)
        return [Neighbour(p["item_id"], d) for p, d in found if p["item_id"] != item_id][:limit]

    def similar_places(self, item_id: str, lon: float | None, lat: float | None, limit: int = 10) -> list[Neighbour]:
        """Chips like the chip of ``item_id`` holding (lon, lat) (the item's first chip when no point is given)."""
        own = {k: p for k, p in self.chips.payload.items() if p["item_id"] == item_id}
        if not own:
            raise NotFoundError(f"item {item_id!r} has no chip embeddings in {self.collection!r}")
        key = next(iter(own))
        if lon is not None and lat is not None:
            inside = [k for k, p in own.items() if _contains(p["bbox"], lon, lat)]
            if not inside:
                raise NotFoundError(f"no clear chip of item {item_id!r} holds point ({lon}, {lat})")
            key = inside[0]
        vector = self.chips.vector(key)
        if vector is None:
            raise NotFoundError(f"chip embedding of item {item_id!r} is missing from the index")
        found = self.chips.search(vector, limit + 1 + len(own))
        out = [Neighbour(p["item_id"], d, chip=p) for p, d in found if p["item_id"] != item_id]
        return out[:limit]


def _contains(bbox: list[float], lon: float, lat: float) -> bool:
    return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]
