"""openEO collection metadata from the catalog: the STAC collection plus ``cube:dimensions`` and bands.

Bands come from the collection's ``item_assets`` when it has them, otherwise from one item of the collection
(the data assets with ``raster:bands``/``eo:bands``), as ``load_collection`` sees them.
"""

from __future__ import annotations

import copy
from typing import Any

from snapearth.catalog import Catalog, SearchRequest
from snapearth.processing.load import _band_names

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"


def _sample_item(catalog: Catalog, collection_id: str) -> dict[str, Any] | None:
    page = catalog.search(SearchRequest(collections=[collection_id], limit=1, count=False))
    return page.items[0] if page.items else None


def _bands(collection: dict[str, Any], item: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    assets = collection.get("item_assets") or {}
    source = {"assets": assets} if assets else item
    if not source:
        return [], []
    names = _band_names(source)
    eo_bands = []
    for name in names:
        asset = source["assets"][name]
        eo = dict((asset.get("eo:bands") or [{}])[0])
        eo.setdefault("name", name)
        eo["name"] = name
        eo_bands.append(eo)
    return names, eo_bands


def openeo_collection(catalog: Catalog, collection_id: str, *, full: bool = True) -> dict[str, Any]:
    collection = copy.deepcopy(catalog.get_collection(collection_id))
    collection.setdefault("stac_version", "1.0.0")
    collection.setdefault("type", "Collection")
    collection.setdefault("description", collection.get("title") or collection_id)
    collection.setdefault("license", "proprietary")
    collection.setdefault(
        "extent", {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}
    )
    collection["links"] = [link for link in collection.get("links", []) if isinstance(link, dict) and "href" in link]
    if not full:
        return collection
    item = _sample_item(catalog, collection_id)
    names, eo_bands = _bands(collection, item)
    bbox = collection["extent"]["spatial"]["bbox"][0]
    interval = collection["extent"]["temporal"]["interval"][0]
    epsg = (item or {}).get("properties", {}).get("proj:epsg")
    dimensions: dict[str, Any] = {
        "x": {"type": "spatial", "axis": "x", "extent": [bbox[0], bbox[2]], "reference_system": 4326},
        "y": {"type": "spatial", "axis": "y", "extent": [bbox[1], bbox[3]], "reference_system": 4326},
        "t": {"type": "temporal", "extent": list(interval)},
    }
    if names:
        dimensions["bands"] = {"type": "bands", "values": names}
    collection["cube:dimensions"] = dimensions
    extensions = list(collection.get("stac_extensions", []))
    if DATACUBE_EXTENSION not in extensions:
        extensions.append(DATACUBE_EXTENSION)
    collection["stac_extensions"] = extensions
    summaries = collection.setdefault("summaries", {})
    if eo_bands:
        summaries["eo:bands"] = eo_bands
    if epsg:
        summaries.setdefault("proj:epsg", [int(epsg)])
    return collection
