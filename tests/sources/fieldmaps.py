"""Which fields of each recorded provider answer SnapEarth keeps, and where: the normalisation contract.

Each row is (raw field, item field, expected value computed from the raw record). The tests check every
row against real EODAG output; ``coverage`` counts how many of a record's fields are carried over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Row = tuple[str, str, Any]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def pc_id(name: str) -> str:
    """Item ids follow Planetary Computer: the ESA name without its processing baseline."""
    return re.sub(r"_N\d{4}_", "_", name)


def md5_multihash(hex_digest: str) -> str:
    return "d510" + hex_digest.lower()


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {a["Name"]: a["Value"] for a in record["Attributes"]}


def cop_dataspace_rows(record: dict[str, Any]) -> list[Row]:
    """Copernicus Data Space OData ``Products`` record (with ``$expand=Attributes,Assets``)."""
    attrs = _attributes(record)
    name = pc_id(record["Name"].removesuffix(".SAFE"))
    md5 = next(c["Value"] for c in record["Checksum"] if c["Algorithm"] == "MD5")
    quicklook = next(a for a in record["Assets"] if a["Type"] == "QUICKLOOK")
    return [
        ("Name", "id", name),
        ("Name", "properties.s2:product_uri", record["Name"]),
        ("Id", "properties.snapearth:sources.0.id", record["Id"]),
        (
            "Id",
            "assets.product.href",
            f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products({record['Id']})/$value",
        ),
        ("ContentType", "assets.product.type", record["ContentType"]),
        ("ContentLength", "assets.product.file:size", record["ContentLength"]),
        ("Checksum", "assets.product.file:checksum", md5_multihash(md5)),
        ("ContentDate", "properties.start_datetime", when(record["ContentDate"]["Start"])),
        ("ContentDate", "properties.end_datetime", when(record["ContentDate"]["End"])),
        ("PublicationDate", "properties.published", when(record["PublicationDate"])),
        ("ModificationDate", "properties.updated", when(record["ModificationDate"])),
        ("Online", "properties.snapearth:sources.0.order_status", "succeeded" if record["Online"] else "orderable"),
        ("GeoFootprint", "geometry.coordinates", record["GeoFootprint"]["coordinates"]),
        ("Assets", "assets.thumbnail.href", quicklook["DownloadLink"]),
        ("origin", "properties.providers.0.name", attrs["origin"]),
        ("tileId", "properties.grid:code", f"MGRS-{attrs['tileId']}"),
        ("cloudCover", "properties.eo:cloud_cover", attrs["cloudCover"]),
        ("datastripId", "properties.s2:datastrip_id", attrs["datastripId"]),
        ("orbitNumber", "properties.sat:absolute_orbit", attrs["orbitNumber"]),
        ("relativeOrbitNumber", "properties.sat:relative_orbit", attrs["relativeOrbitNumber"]),
        ("processingDate", "properties.processing:datetime", when(attrs["processingDate"])),
        ("productGroupId", "properties.s2:datatake_id", attrs["productGroupId"]),
        ("operationalMode", "properties.s2:datatake_type", attrs["operationalMode"]),
        ("processingLevel", "properties.processing:level", "L" + attrs["processingLevel"][-2:]),
        ("processorVersion", "properties.processing:version", attrs["processorVersion"]),
        ("processorVersion", "properties.s2:processing_baseline", attrs["processorVersion"]),
        ("platformShortName", "properties.constellation", attrs["platformShortName"].lower()),
        ("instrumentShortName", "properties.instruments", [attrs["instrumentShortName"].lower()]),
        ("platformSerialIdentifier", "properties.platform", "sentinel-2" + attrs["platformSerialIdentifier"].lower()),
        ("productType", "properties.product:type", attrs["productType"]),
        ("beginningDateTime", "properties.datetime", when(attrs["beginningDateTime"])),
        ("endingDateTime", "properties.end_datetime", when(attrs["endingDateTime"])),
    ]


def cop_dataspace_fields(record: dict[str, Any]) -> set[str]:
    top = {k for k in record if not k.startswith("@") and k != "Attributes"}
    return top | set(_attributes(record))


_ES_BAND = {
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
    "visual": "visual",
    "thumbnail": "thumbnail",
    "granule_metadata": "metadata",
    "tileinfo_metadata": "tileinfo",
}
_ES_PRIVATE = ("earthsearch:",)


def earth_search_rows(feature: dict[str, Any]) -> list[Row]:
    """Earth Search v1 STAC item: STAC names already; values must come through unchanged."""
    props = feature["properties"]
    rows: list[Row] = [
        ("id", "properties.snapearth:sources.0.id", props["s2:product_uri"].removesuffix(".SAFE")),
        ("geometry", "geometry.coordinates", feature["geometry"]["coordinates"]),
        ("bbox", "bbox", feature["bbox"]),
    ]
    for key, value in props.items():
        if key.startswith(_ES_PRIVATE):
            continue
        if key in ("datetime", "created", "updated"):
            rows.append((key, f"properties.{key}", when(value)))
        elif key == "s2:sequence":
            continue  # not a sentinel-2 extension field (the v1.0.0 schema refuses it)
        elif key == "platform":
            rows.append((key, "properties.platform", value))
        else:
            rows.append((key, f"properties.{key}", value))
    for key, asset in feature["assets"].items():
        ours = _ES_BAND[key]
        rows.append((f"assets.{key}", f"assets.{ours}.href", asset["href"]))
        rows.append((f"assets.{key}", f"assets.{ours}.type", asset["type"]))
    return rows


def earth_search_fields(feature: dict[str, Any]) -> set[str]:
    return {*feature["properties"], *(f"assets.{k}" for k in feature["assets"]), "id", "geometry", "bbox"}


def _geodes_size(description: str) -> int:
    match = re.search(r"File size: (\d+) bytes", description)
    assert match
    return int(match[1])


def _geodes_md5(description: str) -> str:
    match = re.search(r"Checksum MD5: ([0-9a-f]{32})", description)
    assert match
    return match[1]


def geodes_rows(feature: dict[str, Any]) -> list[Row]:
    """GEODES (CNES) STAC item, PEPS collections."""
    props = feature["properties"]
    zip_asset = next(a for a in feature["assets"].values() if a["type"] == "application/zip")
    quicklook = next(a for a in feature["assets"].values() if "overview" in a["roles"])
    return [
        ("identifier", "id", pc_id(props["identifier"])),
        ("id", "properties.snapearth:sources.0.id", feature["id"]),
        ("geometry", "geometry.coordinates", feature["geometry"]["coordinates"]),
        ("start_datetime", "properties.datetime", when(props["start_datetime"])),
        ("start_datetime", "properties.start_datetime", when(props["start_datetime"])),
        ("end_datetime", "properties.end_datetime", when(props["end_datetime"])),
        ("datetime", "properties.published", when(props["datetime"])),
        ("eo:cloud_cover", "properties.eo:cloud_cover", props["eo:cloud_cover"]),
        ("grid:code", "properties.grid:code", "MGRS-" + props["grid:code"].removeprefix("T")),
        ("sat:relative_orbit", "properties.sat:relative_orbit", props["sat:relative_orbit"]),
        ("sat:absolute_orbit", "properties.sat:absolute_orbit", props["sat:absolute_orbit"]),
        ("sat:orbit_state", "properties.sat:orbit_state", props["sat:orbit_state"].lower()),
        ("s2:datatake_id", "properties.s2:datatake_id", props["s2:datatake_id"]),
        ("processing:version", "properties.processing:version", props["processing:version"]),
        ("processing:level", "properties.processing:level", props["processing:level"]),
        ("product:type", "properties.product:type", props["product:type"]),
        ("product:timeliness", "properties.product:timeliness", props["product:timeliness"]),
        ("platform", "properties.platform", "sentinel-2" + props["platform"][-1].lower()),
        ("instrument", "properties.instruments", [props["instrument"].lower()]),
        ("assets.zip", "assets.product.href", zip_asset["href"]),
        ("assets.zip", "assets.product.file:size", _geodes_size(zip_asset["description"])),
        ("assets.zip", "assets.product.file:checksum", md5_multihash(_geodes_md5(zip_asset["description"]))),
        ("assets.quicklook", "assets.thumbnail.href", quicklook["href"]),
        ("assets.quicklook", "assets.thumbnail.file:checksum", md5_multihash(_geodes_md5(quicklook["description"]))),
    ]


def geodes_fields(feature: dict[str, Any]) -> set[str]:
    return {*feature["properties"], *(f"assets.{k}" for k in feature["assets"]), "id", "geometry"}


def sara_rows(feature: dict[str, Any]) -> list[Row]:
    """SARA (Australian Copernicus hub), resto JSON."""
    props = feature["properties"]
    relative = int(re.search(r"_R(\d{3})_", props["productIdentifier"])[1])  # type: ignore[index]
    return [
        ("productIdentifier", "id", pc_id(props["productIdentifier"])),
        ("title", "properties.title", props["title"]),
        ("id", "properties.snapearth:sources.0.id", feature["id"]),
        ("geometry", "geometry.coordinates", feature["geometry"]["coordinates"]),
        ("startDate", "properties.datetime", when(props["startDate"])),
        ("completionDate", "properties.end_datetime", when(props["completionDate"])),
        ("published", "properties.published", when(props["published"])),
        ("updated", "properties.updated", when(props["updated"])),
        ("cloudCover", "properties.eo:cloud_cover", props["cloudCover"]),
        ("orbitNumber", "properties.sat:absolute_orbit", props["orbitNumber"]),
        ("productIdentifier", "properties.sat:relative_orbit", relative),
        ("productType", "properties.product:type", props["productType"]),
        ("processingLevel", "properties.processing:level", "L1C"),
        ("platform", "properties.platform", "sentinel-2" + props["platform"][-1].lower()),
        ("instrument", "properties.instruments", [props["instrument"].lower()]),
        ("sensorMode", "properties.s2:datatake_type", props["sensorMode"]),
        ("quicklook", "assets.thumbnail.href", props["quicklook"]),
        ("resourceSize", "assets.product.file:size", props["resourceSize"]),
        ("resourceChecksum", "assets.product.file:checksum", md5_multihash(props["resourceChecksum"])),
        ("services", "assets.product.href", props["services"]["download"]["url"]),
        ("organisationName", "properties.providers.0.name", props["organisationName"]),
    ]


def sara_fields(feature: dict[str, Any]) -> set[str]:
    return {*(k for k, v in feature["properties"].items() if v is not None), "id", "geometry"}


def aws_eos_rows(record: dict[str, Any]) -> list[Row]:
    """AWS EOS (EOS Data Analytics) search record, Sentinel-2 L1C."""
    tile = f"{record['utmZone']}{record['latitudeBand']}{record['gridSquare']}"
    relative = int(re.search(r"_R(\d{3})_", record["productName"])[1])  # type: ignore[index]
    return [
        ("productName", "id", pc_id(record["productName"])),
        ("productName", "properties.sat:relative_orbit", relative),
        ("productName", "properties.snapearth:sources.0.id", record["productName"]),
        ("timestamp", "properties.datetime", when(record["timestamp"])),
        ("cloudCoverage", "properties.eo:cloud_cover", record["cloudCoverage"]),
        ("azimuthAngle", "properties.view:sun_azimuth", record["azimuthAngle"]),
        ("sunElevation", "properties.view:sun_elevation", record["sunElevation"]),
        ("satelliteName", "properties.platform", record["satelliteName"].lower()),
        ("utmZone", "properties.mgrs:utm_zone", record["utmZone"]),
        ("latitudeBand", "properties.mgrs:latitude_band", record["latitudeBand"]),
        ("gridSquare", "properties.mgrs:grid_square", record["gridSquare"]),
        ("utmZone", "properties.grid:code", f"MGRS-{tile}"),
        ("dataGeometry", "geometry.coordinates", record["dataGeometry"]["coordinates"]),
        ("awsPath", "assets.product.href", f"s3://sentinel-s2-l1c/{record['awsPath']}"),
    ]


def aws_eos_fields(record: dict[str, Any]) -> set[str]:
    return {k for k, v in record.items() if v not in ("", None)}


PROVIDERS: dict[str, tuple[Callable[[dict[str, Any]], list[Row]], Callable[[dict[str, Any]], set[str]]]] = {
    "cop_dataspace": (cop_dataspace_rows, cop_dataspace_fields),
    "earth_search": (earth_search_rows, earth_search_fields),
    "geodes": (geodes_rows, geodes_fields),
    "sara": (sara_rows, sara_fields),
    "aws_eos": (aws_eos_rows, aws_eos_fields),
}


def coverage(provider: str, record: dict[str, Any]) -> tuple[int, int]:
    """(fields of the record carried into the item, fields in the record)."""
    rows_of, fields_of = PROVIDERS[provider]
    fields = fields_of(record)
    return len({raw for raw, _, _ in rows_of(record)} & fields), len(fields)


def lookup(item: dict[str, Any], path: str) -> Any:
    """``properties.snapearth:sources.0.id`` -> the value (dots split keys; digits index lists)."""
    value: Any = item
    for part in path.split(".") if not path.startswith("assets.") else _asset_path(path):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _asset_path(path: str) -> list[str]:
    _, key, rest = path.split(".", 2)
    return ["assets", key, rest]


def comparable(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", value):
        return when(value)
    if isinstance(value, tuple | list):
        return [comparable(v) for v in value]
    return value
