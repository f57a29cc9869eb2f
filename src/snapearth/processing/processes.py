"""The process registry: openeo-processes-dask implementations with their official specs, plus our own.

Only processes that have both a spec and an implementation are registered (and listed by ``GET /processes``).
Ours: ``load_collection`` over the Catalog contract, ``save_result`` (the writers in ``outputs``) and
``mask_clouds`` (EarthSignature cloud masks or SCL).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from snapearth.processing import load
from snapearth.processing.errors import OpenEOError

OUTPUT_FORMATS = {"GTIFF": "GTiff", "NETCDF": "netCDF", "JSON": "JSON"}

MASK_CLOUDS_SPEC: dict[str, Any] = {
    "id": "mask_clouds",
    "summary": "Mask clouds with EarthSignature masks or the Sentinel-2 scene classification",
    "description": (
        "Sets the pixels of cloudy observations to no-data (`null`). `method` `signature` uses the SnapEarth "
        "EarthSignature cloud masks (assets with role `signature-cloud`), `scl` the Sentinel-2 L2A scene "
        "classification (classes 3 cloud shadow, 8 and 9 cloud, 10 thin cirrus), `auto` the EarthSignature "
        "masks when the items have them and SCL otherwise. Apply it directly to the output of `load_collection`."
    ),
    "categories": ["cubes", "masks"],
    "parameters": [
        {
            "name": "data",
            "description": "A raster data cube straight from `load_collection`.",
            "schema": {"type": "object", "subtype": "datacube"},
        },
        {
            "name": "method",
            "description": "Which cloud mask to use.",
            "schema": {"type": "string", "enum": ["auto", "signature", "scl"]},
            "default": "auto",
            "optional": True,
        },
    ],
    "returns": {
        "description": "The data cube with cloudy pixels set to no-data.",
        "schema": {"type": "object", "subtype": "datacube"},
    },
    "exceptions": {},
}


@dataclass
class SaveResult:
    """What ``save_result`` returns: the data and how to write it (the writers run after computing)."""

    data: Any
    format: str
    options: dict[str, Any] = field(default_factory=dict)


def save_result(data: Any, format: str, options: dict[str, Any] | None = None, **_: Any) -> SaveResult:
    canonical = OUTPUT_FORMATS.get(str(format).upper().replace("-", "").replace("GEOTIFF", "GTIFF"))
    if canonical is None:
        raise OpenEOError(
            "FormatUnsupported",
            f"save_result format: {format!r} is not supported; use one of {sorted(OUTPUT_FORMATS.values())}",
            field="format",
        )
    return SaveResult(data=data, format=canonical, options=dict(options or {}))


OWN_IMPLEMENTATIONS = {
    "load_collection": load.load_collection,
    "save_result": save_result,
    "mask_clouds": load.mask_clouds,
}


@dataclass
class Registry:
    """The openeo-pg-parser-networkx registry and the specs we publish."""

    processes: Any  # openeo_pg_parser_networkx.ProcessRegistry
    specs: dict[str, dict[str, Any]]

    def __contains__(self, process_id: str) -> bool:
        return process_id in self.specs


@lru_cache(maxsize=1)
def build_registry() -> Registry:
    """Import the implementations once per process (the import of openeo-processes-dask takes seconds)."""
    import openeo_processes_dask.process_implementations as implementations
    import openeo_processes_dask.specs as spec_module
    from openeo_pg_parser_networkx import ProcessRegistry
    from openeo_pg_parser_networkx.process_registry import Process
    from openeo_processes_dask.process_implementations.core import process

    specs: dict[str, dict[str, Any]] = {}
    for name in spec_module.__all__:
        spec = getattr(spec_module, name)
        specs[spec["id"]] = spec
    specs["mask_clouds"] = MASK_CLOUDS_SPEC

    functions: dict[str, Any] = {
        name.lstrip("_"): func
        for name, func in inspect.getmembers(implementations, inspect.isfunction)
        if not name.startswith("__")
    }
    functions.update(OWN_IMPLEMENTATIONS)
    registry = ProcessRegistry(wrap_funcs=[process])
    published: dict[str, dict[str, Any]] = {}
    for process_id, func in functions.items():
        spec = specs.get(process_id)
        if spec is None:
            continue
        registry[process_id] = Process(spec=spec, implementation=func)
        published[process_id] = spec
    return Registry(processes=registry, specs=dict(sorted(published.items())))


def process_listing(registry: Registry) -> list[dict[str, Any]]:
    """Specs as ``GET /processes`` lists them (each with id, parameters and returns)."""
    listing = []
    for spec in registry.specs.values():
        entry = copy.deepcopy(spec)
        entry.setdefault("description", entry.get("summary", entry["id"]))
        entry.setdefault("parameters", [])
        entry.setdefault("returns", {"schema": {}})
        listing.append(entry)
    return listing
