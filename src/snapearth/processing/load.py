"""``load_collection`` over the Catalog contract: catalog search, then a lazy odc-stac cube in physical units.

Band values are converted with each item's own ``raster:bands`` scale/offset (Sentinel-2 changed its offset
with processing baseline 04.00, so it varies along time) and nodata becomes NaN. Property filters
(``properties`` of load_collection, e.g. ``eo:cloud_cover`` or ``signature:cloud_fraction``) are single-process
callbacks (``lte``, ``between``...) evaluated on each item's properties.
"""

from __future__ import annotations

import contextvars
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pystac
import xarray as xr

from snapearth.catalog import Catalog, SearchRequest
from snapearth.catalog.base import parse_rfc3339
from snapearth.errors import NotFoundError
from snapearth.processing.errors import OpenEOError

# SCL classes that are not clear sky: cloud shadow, cloud medium/high probability, thin cirrus.
SCL_CLOUD_CLASSES = (3, 8, 9, 10)
CLOUD_MASK_ROLE = "signature-cloud"
# EarthSignature cloud masks: 0 clear, 1 cloud, 2 cloud shadow, 255 no data.
SIGNATURE_CLOUD_VALUES = (1, 2)


@dataclass(frozen=True)
class LoadLimits:
    """Guards against oversized requests (openEO ``ProcessGraphComplexity``)."""

    max_items: int = 2000
    max_pixels: int = 2_000_000_000


@dataclass
class LoadedCube:
    """What one load_collection call read: for metering (bytes) and for ``mask_clouds`` (same grid)."""

    collection_id: str
    items: list[pystac.Item]
    bands: list[str]
    geobox: Any
    bytes_to_read: int


@dataclass
class LoadSession:
    """Collects every load_collection of one graph evaluation (the current one is a context variable)."""

    catalog: Catalog
    limits: LoadLimits = field(default_factory=LoadLimits)
    chunk_size: int = 2048
    loads: list[LoadedCube] = field(default_factory=list)

    @property
    def bytes_to_read(self) -> int:
        return sum(load.bytes_to_read for load in self.loads)


current_session: contextvars.ContextVar[LoadSession | None] = contextvars.ContextVar(
    "snapearth_openeo_load_session", default=None
)


def _session() -> LoadSession:
    session = current_session.get()
    if session is None:
        raise RuntimeError("load_collection called outside of a processing.execute evaluation")
    return session


# -- property filters -------------------------------------------------------------------------------------

_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def _is_value_ref(arg: Any) -> bool:
    name = getattr(arg, "from_parameter", None)
    if name is None and isinstance(arg, dict):
        name = arg.get("from_parameter")
    return name == "value"


def property_predicate(name: str, callback: Any) -> Callable[[Any], bool]:
    """Turn one ``properties`` callback ({"process_graph": {...}}) into a predicate on a property value."""
    graph = callback.get("process_graph") if isinstance(callback, dict) else None
    if not isinstance(graph, dict) or len(graph) != 1:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection properties.{name}: expected a process graph with exactly one process "
            "(eq, neq, lt, lte, gt, gte, between, array_contains)",
            field=f"properties.{name}",
        )
    node = next(iter(graph.values()))
    process_id = node.get("process_id")
    args = node.get("arguments", {})
    if process_id in _COMPARATORS:
        compare = _COMPARATORS[process_id]
        if _is_value_ref(args.get("x")):
            other = args.get("y")
            return lambda value: value is not None and _safe(compare, value, other)
        if _is_value_ref(args.get("y")):
            other = args.get("x")
            return lambda value: value is not None and _safe(compare, other, value)
    elif process_id == "between" and _is_value_ref(args.get("x")):
        low, high = args.get("min"), args.get("max")
        exclude_max = bool(args.get("exclude_max", False))

        def between(value: Any) -> bool:
            if value is None:
                return False
            return _safe(lambda a, b: a >= b, value, low) and _safe(
                (lambda a, b: a < b) if exclude_max else (lambda a, b: a <= b), value, high
            )

        return between
    elif process_id == "array_contains" and _is_value_ref(args.get("data")):
        wanted = args.get("value")
        return lambda value: isinstance(value, list) and wanted in value
    raise OpenEOError(
        "ProcessParameterInvalid",
        f"load_collection properties.{name}: unsupported filter {process_id!r}; use one of eq, neq, lt, lte, gt, "
        "gte, between, array_contains comparing the parameter 'value' with a constant",
        field=f"properties.{name}",
    )


def _safe(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    try:
        return bool(compare(a, b))
    except TypeError:
        return False


# -- extents ------------------------------------------------------------------------------------------------


def _bbox_4326(spatial_extent: Any) -> tuple[float, float, float, float] | None:
    if spatial_extent is None:
        return None
    if not all(hasattr(spatial_extent, k) for k in ("west", "south", "east", "north")):
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection spatial_extent: expected an object with west, south, east, north (and crs); got "
            f"{str(spatial_extent)[:80]!r}",
            field="spatial_extent",
        )
    west, south, east, north = (float(getattr(spatial_extent, k)) for k in ("west", "south", "east", "north"))
    crs = getattr(spatial_extent, "crs", None)
    if crs is not None:
        from pyproj import CRS, Transformer

        source = CRS.from_user_input(crs)
        if not source.equals(CRS.from_epsg(4326)):
            transformer = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
            west, south, east, north = transformer.transform_bounds(west, south, east, north)
    if west >= east or south >= north:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection spatial_extent: west {west} must be < east {east} and south {south} < north {north}",
            field="spatial_extent",
        )
    return west, south, east, north


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, np.datetime64):
        return datetime.fromtimestamp(value.astype("datetime64[ms]").astype(np.int64) / 1000, UTC)
    text = str(value)
    if len(text) == 10:
        text += "T00:00:00Z"
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection temporal_extent: {str(value)[:40]!r} is not an RFC 3339 date or date-time",
            field="temporal_extent",
        ) from None


def _interval(temporal_extent: Any) -> tuple[datetime | None, datetime | None]:
    if temporal_extent is None:
        return None, None
    bounds = list(getattr(temporal_extent, "root", temporal_extent))
    if len(bounds) != 2:
        raise OpenEOError(
            "ProcessParameterInvalid", "load_collection temporal_extent: expected [start, end]", field="temporal_extent"
        )
    start, end = (_as_datetime(getattr(b, "root", b)) for b in bounds)
    if start is not None and end is not None and end <= start:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection temporal_extent: end {end.isoformat()} must be after start {start.isoformat()}",
            field="temporal_extent",
        )
    return start, end


def _rfc3339(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ".."


# -- items --------------------------------------------------------------------------------------------------


def search_items(
    catalog: Catalog,
    collection_id: str,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
    predicates: dict[str, Callable[[Any], bool]],
    max_items: int,
) -> Iterator[dict[str, Any]]:
    """Items of ``collection_id`` in the extents (end exclusive, as in openEO) that pass every predicate."""
    request = SearchRequest(
        collections=[collection_id],
        bbox=list(bbox) if bbox else None,
        datetime=f"{_rfc3339(start)}/{_rfc3339(end)}" if (start or end) else None,
        limit=min(max_items, 1000),
    )
    found = 0
    for item in catalog.iter_items(request):
        props = item.get("properties", {})
        when = props.get("datetime") or props.get("start_datetime")
        if end is not None and when and parse_rfc3339(when) >= end:
            continue
        if not all(test(props.get(name)) for name, test in predicates.items()):
            continue
        found += 1
        if found > max_items:
            raise OpenEOError(
                "ProcessGraphComplexity",
                f"load_collection {collection_id!r}: more than {max_items} items match; narrow spatial_extent, "
                "temporal_extent or properties",
                field="spatial_extent",
            )
        yield item


def _raster_band(asset: dict[str, Any]) -> dict[str, Any]:
    bands = asset.get("raster:bands") or [{}]
    return dict(bands[0])


def _epsg(item: dict[str, Any]) -> int | None:
    props = item.get("properties", {})
    if props.get("proj:epsg"):
        return int(props["proj:epsg"])
    code = props.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":", 1)[1])
    return None


def _resolution(items: list[dict[str, Any]], bands: list[str]) -> float | None:
    resolutions = []
    for band in bands:
        asset = items[0]["assets"][band]
        res = _raster_band(asset).get("spatial_resolution") or asset.get("gsd")
        if res:
            resolutions.append(float(res))
    return min(resolutions) if resolutions else None


def _band_names(item: dict[str, Any]) -> list[str]:
    names = []
    for key, asset in item.get("assets", {}).items():
        roles = asset.get("roles") or []
        media = asset.get("type", "")
        if "data" in roles and ("tiff" in media or not media) and ("raster:bands" in asset or "eo:bands" in asset):
            names.append(key)
    return names


def _common_names(item: dict[str, Any], bands: list[str]) -> list[str]:
    names = []
    for band in bands:
        eo = item["assets"][band].get("eo:bands") or [{}]
        names.append(str(eo[0].get("common_name") or band))
    return names


# -- the process --------------------------------------------------------------------------------------------


def load_collection(
    id: str,
    spatial_extent: Any = None,
    temporal_extent: Any = None,
    bands: list[str] | None = None,
    properties: dict[str, Any] | None = None,
    **_: Any,
) -> xr.DataArray:
    """The openEO ``load_collection``: a lazy (x, y, t, bands) cube of physical values, NaN where no data."""
    session = _session()
    try:
        session.catalog.get_collection(id)
    except NotFoundError:
        raise OpenEOError(
            "CollectionNotFound", f"load_collection id: collection {id!r} does not exist", field="id"
        ) from None
    bbox = _bbox_4326(spatial_extent)
    start, end = _interval(temporal_extent)
    if properties is not None and not isinstance(properties, dict):
        raise OpenEOError(
            "ProcessParameterInvalid",
            "load_collection properties: expected an object {property: process graph}",
            field="properties",
        )
    if bands is not None and (
        not isinstance(bands, list | str)
        or not all(isinstance(b, str) for b in ([bands] if isinstance(bands, str) else bands))
    ):
        raise OpenEOError(
            "ProcessParameterInvalid", "load_collection bands: expected a list of band names", field="bands"
        )
    predicates = {name: property_predicate(name, cb) for name, cb in (properties or {}).items()}
    items = list(search_items(session.catalog, id, bbox, start, end, predicates, session.limits.max_items))
    if not items:
        raise OpenEOError(
            "NoDataAvailable", f"load_collection {id!r}: no items match the spatial, temporal and property filters"
        )
    available = _band_names(items[0])
    wanted = list(bands) if bands else available
    if isinstance(bands, str):
        wanted = [bands]
    unknown = [b for b in wanted if b not in available]
    if unknown:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"load_collection bands: {unknown} not in collection {id!r}; available bands: {available}",
            field="bands",
        )
    items = [i for i in items if all(b in i.get("assets", {}) for b in wanted)]
    epsgs = Counter(e for e in (_epsg(i) for i in items) if e)
    crs = f"EPSG:{epsgs.most_common(1)[0][0]}" if epsgs else "EPSG:4326"
    resolution = _resolution(items, wanted)
    stac_items = [pystac.Item.from_dict(i, preserve_dict=False) for i in items]

    import odc.stac

    load_args: dict[str, Any] = {"crs": crs, "groupby": "solar_day", "chunks": _chunks(session)}
    if resolution:
        load_args["resolution"] = resolution
    if bbox:
        load_args["bbox"] = bbox
    if bbox and resolution:
        _check_size(bbox, crs, resolution, len(stac_items), len(wanted), session.limits, id)
    dataset = odc.stac.load(stac_items, bands=wanted, **load_args)
    pixels = math.prod(dataset.sizes.values()) * len(wanted)
    if pixels > session.limits.max_pixels:
        raise OpenEOError(
            "ProcessGraphComplexity",
            f"load_collection {id!r}: {pixels:,} pixels requested, more than the limit {session.limits.max_pixels:,};"
            " narrow the extents or the bands",
            field="spatial_extent",
        )
    bytes_to_read = sum(int(dataset[b].dtype.itemsize) * math.prod(dataset[b].shape) for b in wanted)
    cube = _physical(dataset, wanted, items)
    cube = cube.rename({"time": "t"}).transpose("t", "bands", "y", "x")
    cube = cube.assign_coords(common_name=("bands", _common_names(items[0], wanted)))
    loaded = LoadedCube(id, stac_items, wanted, dataset.odc.geobox, bytes_to_read)
    session.loads.append(loaded)
    cube.attrs = {"snapearth:load": len(session.loads) - 1}
    return cube


def _check_size(
    bbox: tuple[float, float, float, float],
    crs: str,
    resolution: float,
    n_items: int,
    n_bands: int,
    limits: LoadLimits,
    collection_id: str,
) -> None:
    """Refuse before building a Dask graph for a request whose pixel count is beyond the limit."""
    from pyproj import Transformer

    left, bottom, right, top = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform_bounds(*bbox)
    pixels = (right - left) / resolution * (top - bottom) / resolution * n_items * n_bands
    if pixels > limits.max_pixels:
        raise OpenEOError(
            "ProcessGraphComplexity",
            f"load_collection {collection_id!r}: about {pixels:,.0f} pixels requested, more than the limit "
            f"{limits.max_pixels:,}; narrow spatial_extent, temporal_extent or bands",
            field="spatial_extent",
        )


def _chunks(session: LoadSession) -> dict[str, int | Literal["auto"]]:
    return {"time": 1, "x": session.chunk_size, "y": session.chunk_size}


def _physical(dataset: xr.Dataset, bands: list[str], items: list[dict[str, Any]]) -> xr.DataArray:
    """DN -> physical value per band and per time (the item's own scale/offset), nodata -> NaN, float32."""
    by_time = _items_by_time(dataset, items)
    arrays = []
    for band in bands:
        raw = dataset[band]
        first = _raster_band(items[0]["assets"][band])
        nodata = first.get("nodata")
        scales = np.array([_raster_band(i["assets"][band]).get("scale", 1.0) for i in by_time], dtype="float32")
        offsets = np.array([_raster_band(i["assets"][band]).get("offset", 0.0) for i in by_time], dtype="float32")
        scale = xr.DataArray(scales, dims=("time",), coords={"time": dataset.time})
        offset = xr.DataArray(offsets, dims=("time",), coords={"time": dataset.time})
        value = raw.astype("float32") * scale + offset
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            value = value.where(raw != nodata)
        arrays.append(value.astype("float32"))
    return xr.concat(arrays, dim=xr.DataArray(bands, dims=("bands",), name="bands"))


def _items_by_time(dataset: xr.Dataset, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each time label of the cube, the item whose acquisition time is nearest (same solar day group)."""
    stamps = np.array(
        [np.datetime64(parse_rfc3339(i["properties"]["datetime"]).replace(tzinfo=None), "ns") for i in items]
    )
    chosen = []
    for label in dataset.time.values:
        chosen.append(items[int(np.argmin(np.abs(stamps - np.datetime64(label, "ns"))))])
    return chosen


def loaded_cube_of(data: xr.DataArray) -> LoadedCube:
    index = data.attrs.get("snapearth:load")
    session = _session()
    if index is None or not (0 <= int(index) < len(session.loads)):
        raise OpenEOError(
            "ProcessParameterInvalid",
            "mask_clouds data: apply mask_clouds directly to the output of load_collection",
            field="data",
        )
    return session.loads[int(index)]


def mask_clouds(data: xr.DataArray, method: str = "auto", **_: Any) -> xr.DataArray:
    """Set cloudy pixels to NaN: EarthSignature cloud masks (asset role ``signature-cloud``) or the SCL band."""
    if method not in ("auto", "signature", "scl"):
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"mask_clouds method: {method!r} is not one of auto, signature, scl",
            field="method",
        )
    loaded = loaded_cube_of(data)
    first = loaded.items[0]
    signature_key = next(
        (k for k, a in first.assets.items() if CLOUD_MASK_ROLE in (a.roles or [])),
        None,
    )
    if method == "signature" and signature_key is None:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"mask_clouds method: the items of {loaded.collection_id!r} carry no EarthSignature cloud mask",
            field="method",
        )
    use_signature = signature_key is not None and method in ("auto", "signature")
    key = signature_key if use_signature else "SCL"
    if key is None or key not in first.assets:
        raise OpenEOError(
            "ProcessParameterInvalid",
            f"mask_clouds: the items of {loaded.collection_id!r} have neither a cloud mask nor an SCL band",
            field="method",
        )
    items = [i for i in loaded.items if key in i.assets]

    import odc.stac

    session = _session()
    mask_ds = odc.stac.load(
        items,
        bands=[key],
        geobox=loaded.geobox,
        groupby="solar_day",
        resampling="nearest",
        chunks=_chunks(session),
    )
    raw = mask_ds[key].rename({"time": "t"})
    loaded.bytes_to_read += int(raw.dtype.itemsize) * math.prod(raw.shape)
    cloudy = raw.isin(list(SIGNATURE_CLOUD_VALUES if use_signature else SCL_CLOUD_CLASSES))
    cloudy = cloudy.reindex(t=data.t, method="nearest")
    masked = data.where(~cloudy)
    masked.attrs = dict(data.attrs)
    return masked
