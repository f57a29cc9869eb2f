"""A finished job's results as STAC: the openEO results document and a catalog collection ``openeo-<job id>``.

The catalog collection holds one item per result file (absolute local hrefs, as the catalog convention says),
so results are searchable like the archive and can be loaded again with ``load_collection``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from snapearth.catalog import Catalog
from snapearth.errors import NotFoundError

STAC_VERSION = "1.0.0"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"


def results_collection_id(job_id: str) -> str:
    return f"openeo-{job_id}"


def _union_bbox(results: list[dict[str, Any]]) -> list[float]:
    boxes = [r["bbox"] for r in results if r.get("bbox")]
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _interval(job: dict[str, Any]) -> list[str | None]:
    stamps = sorted(r["datetime"] for r in job["results"] if r.get("datetime"))
    if stamps:
        return [stamps[0], stamps[-1]]
    return [job["updated"], job["updated"]]


def _asset(result: dict[str, Any], href: str) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "href": href,
        "type": result["type"],
        "roles": ["data"],
        "title": result["name"],
        "file:size": result["size"],
    }
    if result.get("epsg"):
        asset["proj:epsg"] = result["epsg"]
    return asset


def results_document(job: dict[str, Any], asset_href: Callable[[str], str]) -> dict[str, Any]:
    """``GET /jobs/{id}/results``: a STAC Collection with one asset per file (openEO API 1.2)."""
    bbox = _union_bbox(job["results"])
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [FILE_EXTENSION],
        "id": job["id"],
        "title": job.get("title") or f"Results of job {job['id']}",
        "description": job.get("description") or "Results of an openEO batch job on SnapEarth.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [_interval(job)]}},
        "openeo:status": job["status"],
        "assets": {r["name"]: _asset(r, asset_href(r["name"])) for r in job["results"]},
        "links": [],
    }


def publish_results(catalog: Catalog, job: dict[str, Any]) -> str:
    """Write the results as a catalog collection (replacing an earlier run's); return its id."""
    collection_id = results_collection_id(job["id"])
    bbox = _union_bbox(job["results"])
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": collection_id,
        "title": job.get("title") or f"Results of openEO job {job['id']}",
        "description": f"Results of the openEO batch job {job['id']} of user {job['user']}.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [_interval(job)]}},
        "keywords": ["openeo", "job-results"],
        "links": [],
    }
    unpublish_results(catalog, job["id"])
    catalog.create_collection(collection, exist_ok=True)
    items = []
    for result in job["results"]:
        west, south, east, north = result.get("bbox") or bbox
        items.append(
            {
                "type": "Feature",
                "stac_version": STAC_VERSION,
                "stac_extensions": [FILE_EXTENSION, PROJECTION_EXTENSION] if result.get("epsg") else [FILE_EXTENSION],
                "id": result["name"].rsplit(".", 1)[0],
                "collection": collection_id,
                "bbox": [west, south, east, north],
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
                },
                "properties": {
                    "datetime": result.get("datetime") or job["updated"][:19] + "Z",
                    "openeo:job_id": job["id"],
                    "openeo:user": job["user"],
                    **({"proj:epsg": result["epsg"]} if result.get("epsg") else {}),
                },
                "assets": {"data": _asset(result, result["path"])},
                "links": [],
            }
        )
    if items:
        catalog.add_items(items, mode="upsert")
    return collection_id


def unpublish_results(catalog: Catalog, job_id: str) -> None:
    with contextlib.suppress(NotFoundError):
        catalog.delete_collection(results_collection_id(job_id), force=True)
