"""Provider results -> SnapEarth STAC items (STAC field names, our asset keys, provenance).

Input is a STAC-like feature: what EODAG's ``EOProduct.as_dict()`` gives (EODAG 4 already maps
provider fields to STAC names) or a STAC item read from a static catalog. Output follows
docs/ARCHITECTURE.md: Planetary Computer collection ids and asset keys (``B04``, ``SCL``, ``visual``,
``thumbnail``, ``vv``...), lower-case ``platform``, ``grid:code`` ``MGRS-31TCJ``, ``eo:bands`` /
``raster:bands`` on band assets, the provider in ``providers`` and ``snapearth:sources``.
Identity fields (platform, tile, orbits, baseline) are read from the ESA product name when there is
one, because provider mappings disagree (GEODES puts the publication date in ``datetime``, SARA its
absolute orbit in ``sat:relative_orbit``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from snapearth.catalog.base import Item, parse_rfc3339
from snapearth.errors import ProviderError
from snapearth.sources.naming import ProductName, parse_product_name

SOURCES_FIELD = "snapearth:sources"
NAME_TIME_TOLERANCE = timedelta(hours=2)

# Property namespaces kept as they are (STAC extensions); everything else is provider-private.
_KEPT_PREFIXES = (
    "eo:",
    "sat:",
    "sar:",
    "s1:",
    "s2:",
    "view:",
    "proj:",
    "grid:",
    "mgrs:",
    "processing:",
    "product:",
    "storage:",
)
# The sentinel-2 extension (v1.0.0) closes its namespace: other s2: names fail validation.
S2_FIELDS = frozenset(
    {
        "s2:cloud_shadow_percentage",
        "s2:dark_features_percentage",
        "s2:datastrip_id",
        "s2:datatake_id",
        "s2:datatake_type",
        "s2:degraded_msi_data_percentage",
        "s2:generation_time",
        "s2:granule_id",
        "s2:high_proba_clouds_percentage",
        "s2:mean_solar_azimuth",
        "s2:mean_solar_zenith",
        "s2:medium_proba_clouds_percentage",
        "s2:mgrs_tile",
        "s2:nodata_pixel_percentage",
        "s2:not_vegetated_percentage",
        "s2:processing_baseline",
        "s2:product_type",
        "s2:product_uri",
        "s2:reflectance_conversion_factor",
        "s2:saturated_defective_pixel_percentage",
        "s2:snow_ice_percentage",
        "s2:thin_cirrus_percentage",
        "s2:tile_id",
        "s2:unclassified_percentage",
        "s2:vegetation_percentage",
        "s2:water_percentage",
    }
)
_KEPT_CORE = ("datetime", "start_datetime", "end_datetime", "created", "updated", "published", "gsd", "title")

_EXTENSIONS = {
    "eo:": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "raster:": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "sat:": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "sar:": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "s2:": "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
    "s1:": "https://stac-extensions.github.io/sentinel-1/v0.2.0/schema.json",
    "view:": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "proj:": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "grid:": "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "mgrs:": "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "processing:": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "product:": "https://stac-extensions.github.io/product/v0.1.0/schema.json",
    "storage:": "https://stac-extensions.github.io/storage/v1.0.0/schema.json",
    "file:": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "alternate": "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
}

# Sentinel-2 bands: key, common name, centre wavelength (µm), resolution (m).
S2_BANDS: dict[str, tuple[str, float, int]] = {
    "B01": ("coastal", 0.443, 60),
    "B02": ("blue", 0.490, 10),
    "B03": ("green", 0.560, 10),
    "B04": ("red", 0.665, 10),
    "B05": ("rededge", 0.704, 20),
    "B06": ("rededge", 0.740, 20),
    "B07": ("rededge", 0.783, 20),
    "B08": ("nir", 0.842, 10),
    "B8A": ("nir08", 0.865, 20),
    "B09": ("nir09", 0.945, 60),
    "B10": ("cirrus", 1.375, 60),
    "B11": ("swir16", 1.610, 20),
    "B12": ("swir22", 2.190, 20),
}
# Earth Search / STAC common asset names -> our keys.
_ALIASES = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
    "aot": "AOT",
    "wvp": "WVP",
    "tci": "visual",
    "visual": "visual",
    "preview": "thumbnail",
    "thumbnail": "thumbnail",
    "quicklook": "thumbnail",
    "rendered_preview": "rendered_preview",
}
_BAND_IN_NAME = re.compile(r"(?:^|[_\-./])(B(?:0[1-9]|1[0-2]|8A)|SCL|AOT|WVP|TCI)(?:_\d+m)?(?:\.[a-z0-9]+)?$", re.I)
_POL_KEYS = {"vv", "vh", "hh", "hv"}


def _utc_text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, datetime) else parse_rfc3339(str(value).replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_md5_multihash(value: Any) -> str | None:
    """``file:checksum`` is a multihash; providers give plain MD5 hex (CDSE, GEODES, SARA)."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{32}", text):
        return "d510" + text
    if re.fullmatch(r"(d510[0-9a-f]{32}|1220[0-9a-f]{64}|1e20[0-9a-f]{64})", text):
        return text
    return None


def product_name_of(feature: dict[str, Any]) -> ProductName | None:
    """The ESA name a feature carries, if its sensing time agrees with the feature's own time."""
    props = feature.get("properties") or {}
    when = props.get("start_datetime") or props.get("datetime")
    try:
        moment = parse_rfc3339(str(when).replace(" ", "T")) if when else None
    except ValueError:
        moment = None
    for candidate in (
        props.get("s2:product_uri"),
        props.get("s1:product_identifier"),
        feature.get("id"),
        props.get("title"),
        props.get("id"),
    ):
        if isinstance(candidate, str):
            parsed = parse_product_name(candidate)
            # a datatake lasts minutes; a name hours away from the acquisition belongs to another product
            if parsed is not None and (moment is None or abs(moment - parsed.sensing) <= NAME_TIME_TOLERANCE):
                return parsed
    return None


def _platform(value: Any) -> str | None:
    """ "S2A", "Sentinel-2A", "SENTINEL-1A", "sentinel-2a" -> "sentinel-2a"."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(?:sentinel[- ]?|s)([12])[- ]?([a-d])", value.strip(), re.I)
    return f"sentinel-{match[1]}{match[2].lower()}" if match else None


def _level(value: Any, product_type: Any) -> str | None:
    for text in (product_type, value):
        if isinstance(text, str):
            match = re.search(r"(?:LEVEL-?|L|MSI)([0-3][ABC]?)$", text.strip(), re.I)
            if match:
                return f"L{match[1].upper()}"
    return None


def _eo_band(band: dict[str, Any]) -> dict[str, Any]:
    """A STAC 1.1 ``bands`` entry (``eo:common_name``) -> a STAC 1.0 ``eo:bands`` entry."""
    name = str(band.get("name", ""))
    out: dict[str, Any] = {"name": _ALIASES.get(name.lower(), name)}
    if band.get("eo:common_name"):
        out["common_name"] = band["eo:common_name"]
    if band.get("eo:center_wavelength") is not None:
        out["center_wavelength"] = band["eo:center_wavelength"]
    return out


def _asset_key(key: str, asset: dict[str, Any]) -> str:
    lowered = key.lower()
    stem = re.sub(r"\.(jp2|tif|tiff|png|jpg|jpeg|xml|json)$", "", lowered)
    if stem in _ALIASES:
        return _ALIASES[stem]
    if stem in _POL_KEYS:
        return stem
    match = _BAND_IN_NAME.search(key)
    if match:
        band = match[1].upper()
        return "visual" if band == "TCI" else band
    roles = set(asset.get("roles") or [])
    if {"thumbnail", "overview"} & roles or "quicklook" in lowered or "preview" in lowered:
        return "thumbnail"
    if stem in ("zip", "product", "safe", "download") or str(asset.get("type", "")).endswith("zip"):
        return "product"
    return re.sub(r"[^a-z0-9_\-]+", "-", stem).strip("-") or "asset"


def _band_asset(key: str, asset: dict[str, Any]) -> dict[str, Any]:
    """Put the provider's band facts under STAC 1.0 ``eo:bands`` / ``raster:bands`` (never invent them)."""
    out = {k: v for k, v in asset.items() if k not in ("bands", "nodata", "data_type", "title") and ":" not in k}
    out.update({k: v for k, v in asset.items() if k.startswith(("proj:", "file:", "eo:bands", "raster:bands"))})
    out["title"] = asset.get("title") or key
    if key in S2_BANDS and "eo:bands" not in out:
        common, wavelength, resolution = S2_BANDS[key]
        given = asset.get("eo:center_wavelength")
        out["eo:bands"] = [
            {
                "name": key,
                "common_name": common,
                "center_wavelength": float(given) if isinstance(given, int | float) else wavelength,
            }
        ]
        out.setdefault("gsd", asset.get("gsd", resolution))
    raster: dict[str, Any] = {}
    for source, target in (
        ("nodata", "nodata"),
        ("data_type", "data_type"),
        ("raster:scale", "scale"),
        ("raster:offset", "offset"),
        ("raster:spatial_resolution", "spatial_resolution"),
        ("raster:bits_per_sample", "bits_per_sample"),
    ):
        if asset.get(source) is not None:
            raster[target] = asset[source]
    if raster and "raster:bands" not in out:
        out["raster:bands"] = [raster]
    out["roles"] = sorted(set(asset.get("roles") or []) | {"data"})
    if key in S2_BANDS:
        out["roles"] = sorted(set(out["roles"]) | {"reflectance"})
    return out


def _assets(feature: dict[str, Any], props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assets: dict[str, dict[str, Any]] = {}
    for key, asset in (feature.get("assets") or {}).items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str) or not asset["href"]:
            continue
        ours = _asset_key(key, asset)
        if ours in S2_BANDS or ours in ("SCL", "AOT", "WVP") or ours in _POL_KEYS:
            entry = _band_asset(ours, asset)
        else:
            entry = {
                k: v
                for k, v in asset.items()
                if not k.startswith(("eodag:", "geodes:", "sara:", "eo:center", "eo:full")) and k != "bands"
            }
            if isinstance(asset.get("bands"), list) and "eo:bands" not in entry:
                entry["eo:bands"] = [_eo_band(band) for band in asset["bands"] if isinstance(band, dict)]
                entry.pop("description", None)  # EODAG copies the first band's description onto the asset
            roles = set(asset.get("roles") or [])
            if ours == "thumbnail":
                roles = {"thumbnail"}
            elif ours == "visual":
                roles |= {"visual", "data"}
            elif ours == "product":
                roles = {"data"}
            entry["roles"] = sorted(roles) or ["data"]
            entry.pop("description", None) if ours in ("product", "thumbnail") else None
        checksum = to_md5_multihash(entry.get("file:checksum"))
        if checksum:
            entry["file:checksum"] = checksum
        else:
            entry.pop("file:checksum", None)
        if ours in assets:
            continue
        assets[ours] = entry
    download = props.get("eodag:download_link")
    if isinstance(download, str) and download.startswith(("http://", "https://", "s3://")) and "product" not in assets:
        product: dict[str, Any] = {
            "href": download,
            "title": "Product archive",
            "type": props.get("type") if isinstance(props.get("type"), str) else "application/zip",
            "roles": ["data"],
        }
        if isinstance(props.get("file:size"), int):
            product["file:size"] = props["file:size"]
        checksum = to_md5_multihash(props.get("file:checksum"))
        if checksum:
            product["file:checksum"] = checksum
        assets["product"] = product
    quicklook = props.get("eodag:quicklook") or props.get("eodag:thumbnail")
    if isinstance(quicklook, str) and quicklook.startswith(("http://", "https://")) and "thumbnail" not in assets:
        assets["thumbnail"] = {"href": quicklook, "title": "Thumbnail", "type": "image/jpeg", "roles": ["thumbnail"]}
    return assets


def _geometry(feature: dict[str, Any], provider: str) -> tuple[dict[str, Any], list[float]]:
    raw = feature.get("geometry")
    if not isinstance(raw, dict) or not raw.get("coordinates"):
        raise ProviderError(f"{provider}: product {feature.get('id')!r} has no footprint", field="geometry")
    try:
        geom = shape(raw)
    except Exception as error:
        raise ProviderError(
            f"{provider}: product {feature.get('id')!r}: bad footprint: {error}", field="geometry"
        ) from None
    if geom.is_empty:
        raise ProviderError(f"{provider}: product {feature.get('id')!r} has an empty footprint", field="geometry")
    if not geom.is_valid:
        fixed = geom.buffer(0)
        if fixed.is_empty:
            raise ProviderError(
                f"{provider}: product {feature.get('id')!r}: invalid footprint ({explain_validity(geom)})",
                field="geometry",
            )
        geom = fixed
    west, south, east, north = geom.bounds
    if (west, south, east, north) == (-180.0, -90.0, 180.0, 90.0):
        # EODAG puts the whole world where a provider gave no footprint; no Sentinel scene is that big
        raise ProviderError(f"{provider}: product {feature.get('id')!r} has no footprint", field="geometry")
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ProviderError(f"{provider}: product {feature.get('id')!r}: footprint outside lon/lat", field="geometry")
    return json.loads(shapely.to_geojson(geom)), [west, south, east, north]


def normalize_feature(
    feature: dict[str, Any],
    *,
    provider: str,
    collection: str,
    provider_url: str | None = None,
    harvested: datetime | None = None,
) -> Item:
    """One provider feature -> one SnapEarth STAC item (raises ProviderError on garbage)."""
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise ProviderError(f"{provider}: a result is not a GeoJSON feature", field="provider")
    props_in: dict[str, Any] = feature["properties"]
    geometry, bbox = _geometry(feature, provider)
    name = product_name_of(feature)
    props: dict[str, Any] = {
        k: v
        for k, v in props_in.items()
        if v is not None
        and (k in _KEPT_CORE or k.startswith(_KEPT_PREFIXES))
        and (not k.startswith("s2:") or k in S2_FIELDS)
    }
    for key in ("datetime", "start_datetime", "end_datetime", "created", "updated", "published"):
        if key in props:
            try:
                props[key] = _utc_text(props[key])
            except ValueError as error:
                raise ProviderError(f"{provider}: {key} {props[key]!r} is not a date: {error}", field=key) from error
    # datetime is an acquisition time: kept when inside the acquisition interval (Planetary Computer's Sentinel-1
    # datetime is the middle), the start otherwise (GEODES puts the publication date there)
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if start and (
        not props.get("datetime")
        or not parse_rfc3339(start) <= parse_rfc3339(props["datetime"]) <= parse_rfc3339(end or start)
    ):
        props["datetime"] = start
    if not props.get("datetime"):
        if name is None:
            raise ProviderError(f"{provider}: product {feature.get('id')!r} has no acquisition time", field="datetime")
        props["datetime"] = _utc_text(name.sensing)

    platform = _platform(props_in.get("platform")) or (name.mission if name else None)
    if name is not None:
        platform = name.mission
    if platform:
        props["platform"] = platform
        props["constellation"] = platform[:-1]
    instruments = props_in.get("instruments")
    if isinstance(instruments, str):
        instruments = [instruments]
    if isinstance(instruments, list) and instruments:
        props["instruments"] = [str(i).lower() for i in instruments]
    elif platform:
        props["instruments"] = ["msi"] if platform.startswith("sentinel-2") else ["c-sar"]

    is_s2 = collection.startswith("sentinel-2") or (platform or "").startswith("sentinel-2")
    if is_s2:
        for key in [k for k in props if k.startswith(("sar:", "s1:"))]:
            if key == "sar:instrument_mode" and "s2:datatake_type" not in props:
                props["s2:datatake_type"] = props[key]
            props.pop(key)
    else:
        for key in [k for k in props if k.startswith(("s2:", "eo:", "mgrs:", "view:"))]:
            props.pop(key)

    level = _level(props_in.get("processing:level"), props_in.get("product:type"))
    if name is not None:
        level = name.level
        props["product:type"] = name.product_type if is_s2 else props.get("product:type", name.product_type)
        given = props_in.get("sat:relative_orbit")
        if is_s2 and isinstance(given, int) and given > 143 and "sat:absolute_orbit" not in props:
            props["sat:absolute_orbit"] = given  # an absolute orbit mapped as relative (EODAG's SARA mapping)
        if name.relative_orbit is not None:
            props["sat:relative_orbit"] = name.relative_orbit
        if name.absolute_orbit is not None:
            props["sat:absolute_orbit"] = name.absolute_orbit
        if is_s2 and name.tile:
            props["grid:code"] = f"MGRS-{name.tile}"
            props["mgrs:utm_zone"] = int(name.tile[:2])
            props["mgrs:latitude_band"] = name.tile[2]
            props["mgrs:grid_square"] = name.tile[3:]
            props["s2:product_uri"] = f"{name.name}.SAFE"
        if name.baseline:
            props["s2:processing_baseline"] = name.baseline
            props["processing:version"] = name.baseline
        if not is_s2:
            props["sar:instrument_mode"] = name.instrument_mode
            props["sar:product_type"] = name.product_type
            props["sar:polarizations"] = list(name.polarizations)
            props.setdefault("sar:frequency_band", "C")
            if name.resolution_class:
                props["s1:resolution"] = {"F": "full", "H": "high", "M": "medium"}[name.resolution_class]
    if level:
        props["processing:level"] = level
    _provider_fixes(provider, props_in, props)
    for key in ("sat:orbit_state",):
        if isinstance(props.get(key), str):
            props[key] = props[key].lower()
    if "grid:code" not in props and isinstance(props.get("s2:mgrs_tile"), str):
        props["grid:code"] = "MGRS-" + props["s2:mgrs_tile"].lstrip("T")  # Planetary Computer's tile field
    if isinstance(props.get("grid:code"), str) and not props["grid:code"].startswith("MGRS-"):
        props["grid:code"] = "MGRS-" + props["grid:code"].lstrip("T")
    epsg = props.get("proj:epsg")
    if isinstance(epsg, int):
        props.setdefault("proj:code", f"EPSG:{epsg}")
    if "proj:epsg" not in props and "proj:code" not in props:
        props.pop("proj:bbox", None)  # a lon/lat box under a projection name (GEODES) is not proj:bbox
    if isinstance(props.get("processing:version"), int | float):
        props.pop("processing:version")

    provider_id = props_in.get("uid") or feature.get("id")
    host: dict[str, Any] = {"name": provider, "roles": ["host"]}
    if provider_url:
        host["url"] = provider_url
    providers = [{"name": "ESA", "roles": ["producer", "licensor"], "url": "https://sentinel.esa.int"}, host]
    props["providers"] = providers
    source: dict[str, Any] = {
        "provider": provider,
        "id": str(provider_id),
        "harvested": _utc_text(harvested or datetime.now(UTC)),
    }
    if isinstance(props_in.get("order:status"), str):
        source["order_status"] = props_in["order:status"]  # succeeded = on line; orderable = to be ordered
    props[SOURCES_FIELD] = [source]
    item_id = name.item_id if name is not None else str(feature.get("id") or provider_id)
    item: Item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": [],
        "assets": _assets(feature, props_in),
    }
    item["stac_extensions"] = extensions_of(item)
    return item


def _provider_fixes(provider: str, props_in: dict[str, Any], props: dict[str, Any]) -> None:
    """Known slips of EODAG's provider mappings, fixed where the provider's own field says better."""
    if provider == "aws_eos":
        elevation = props_in.get("aws_eos:sunElevation")
        incidence = props.get("view:incidence_angle")
        if isinstance(elevation, int | float):
            props["view:sun_elevation"] = elevation
            # EODAG maps AWS EOS's *sun* zenith angle to the sensor's view:incidence_angle
            if isinstance(incidence, int | float) and abs(incidence + elevation - 90) < 1e-6:
                props.pop("view:incidence_angle")


def extensions_of(item: Item) -> list[str]:
    """The STAC extension schemas an item's fields use (properties and assets)."""
    keys: set[str] = set(item.get("properties", {}))
    for asset in item.get("assets", {}).values():
        keys |= set(asset)
    found = {url for prefix, url in _EXTENSIONS.items() if any(k.startswith(prefix) for k in keys)}
    return sorted(found)
