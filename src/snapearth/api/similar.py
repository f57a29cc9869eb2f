""" "More like this": images and places similar to a given one, from the EarthSignature embeddings index.

``GET /similar/collections/{collection}/items/{item}``: the items whose image embedding is nearest;
``GET /similar/collections/{collection}/items/{item}/places?lon=&lat=``: the chips (places, ~5 km squares) of
other images nearest to the chip of this image holding (lon, lat). Both answer GeoJSON FeatureCollections;
each feature carries ``signature:distance`` (cosine distance, 0 = identical).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query

from snapearth.catalog import Catalog, SearchRequest
from snapearth.config import Settings
from snapearth.errors import InvalidInputError, NotFoundError
from snapearth.signature.embeddings import SimilarityIndex

PREFIX = "/similar"
MAX_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many neighbours to return.")]


class _Indexes:
    """Open indexes per collection, reopened when ``snapearth enrich`` has rewritten them."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._open: dict[str, tuple[float, SimilarityIndex]] = {}
        self._lock = threading.Lock()

    def get(self, collection: str) -> SimilarityIndex:
        path = self.data / "signature" / "index" / collection / "images.usearch"
        if not path.exists():
            raise NotFoundError(
                f"collection {collection!r} has no similarity index yet: run `snapearth enrich`", field="collection"
            )
        stamp = path.stat().st_mtime
        with self._lock:
            cached = self._open.get(collection)
            if cached is None or cached[0] != stamp:
                cached = (stamp, SimilarityIndex(self.data, collection))
                self._open[collection] = cached
            return cached[1]


def _point(lon: float | None, lat: float | None) -> tuple[float | None, float | None]:
    if (lon is None) != (lat is None):
        raise InvalidInputError("lon/lat: give both or neither", field="lon" if lon is None else "lat")
    if lon is not None and not -180 <= lon <= 180:
        raise InvalidInputError(f"lon: {lon} is out of range [-180, 180]", field="lon")
    if lat is not None and not -90 <= lat <= 90:
        raise InvalidInputError(f"lat: {lat} is out of range [-90, 90]", field="lat")
    return lon, lat


def _item_link(collection: str, item_id: str) -> dict[str, str]:
    return {"rel": "item", "href": f"/collections/{collection}/items/{item_id}", "type": "application/geo+json"}


def create_router(catalog: Catalog, settings: Settings) -> APIRouter:
    """The "more like this" endpoints (mount with ``prefix=PREFIX``)."""
    router = APIRouter(tags=["Similarity"])
    indexes = _Indexes(settings.data)

    @router.get(
        "/collections/{collection_id}/items/{item_id}", summary="Images like this one (nearest image embeddings)"
    )
    def similar_images(collection_id: str, item_id: str, limit: Limit = 10) -> dict[str, Any]:
        catalog.get_item(collection_id, item_id)  # 404 for an unknown item
        neighbours = indexes.get(collection_id).similar_images(item_id, limit)
        found: dict[str, dict[str, Any]] = {}
        if neighbours:  # one search for them all; an item deleted since it was indexed is left out
            request = SearchRequest(
                collections=[collection_id], ids=[n.item_id for n in neighbours], limit=len(neighbours)
            )
            found = {item["id"]: item for item in catalog.search(request).items}
        features = []
        for n in neighbours:
            if (item := found.get(n.item_id)) is not None:
                item["properties"] = {**item["properties"], "signature:distance": round(n.distance, 6)}
                features.append(item)
        return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}

    @router.get(
        "/collections/{collection_id}/items/{item_id}/places",
        summary="Places like this one (nearest chip embeddings of other images)",
    )
    def similar_places(
        collection_id: str,
        item_id: str,
        lon: Annotated[float | None, Query(description="Longitude of the place in the image (WGS84).")] = None,
        lat: Annotated[float | None, Query(description="Latitude of the place in the image (WGS84).")] = None,
        limit: Limit = 10,
    ) -> dict[str, Any]:
        catalog.get_item(collection_id, item_id)
        x, y = _point(lon, lat)
        neighbours = indexes.get(collection_id).similar_places(item_id, x, y, limit)
        features = []
        for n in neighbours:
            chip = n.chip or {}
            w, s, e, north = chip["bbox"]
            features.append(
                {
                    "type": "Feature",
                    "id": f"{n.item_id}/{chip['row']}/{chip['col']}",
                    "bbox": chip["bbox"],
                    "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, north], [w, north], [w, s]]]},
                    "properties": {
                        "collection": collection_id,
                        "item": n.item_id,
                        "chip:row": chip["row"],
                        "chip:col": chip["col"],
                        "signature:distance": round(n.distance, 6),
                    },
                    "links": [_item_link(collection_id, n.item_id)],
                }
            )
        return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}

    return router
