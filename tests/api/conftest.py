"""A small archive for the API tests: real Sentinel-2 L2A and Sentinel-1 GRD metadata (Planetary Computer items
from ../shared/data/real-metadata) with small real COGs written here, loaded into a real SQLite catalog."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from snapearth.api.app import create_app
from snapearth.catalog import open_catalog
from snapearth.config import Settings
from tests.fixtures.shared import STAC_ITEMS

REAL = STAC_ITEMS
S2_ITEM = REAL / "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json"
S1_ITEM = REAL / "pc_S1A_IW_GRDH_20220428_item.json"
S2_COLLECTION = REAL / "pc_sentinel-2-l2a_collection.json"
S1_COLLECTION = REAL / "pc_sentinel-1-grd_collection.json"
API_KEY = "test-key-7f3a"
S2_COUNT = 14  # more than one page at limit 5, fewer than a slow fixture
S2_BANDS = {"B02": 0.05, "B03": 0.08, "B04": 0.06, "B08": 0.35, "B11": 0.2, "B12": 0.12}


def write_cog(path: Path, data: np.ndarray, crs: str, transform: object, nodata: float) -> None:
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(data, 1)
        with memory.open() as source:
            cog_translate(source, str(path), cog_profiles.get("deflate"), quiet=True, overview_level=2, in_memory=True)


def _s2_pixels(reflectance: float, shape: tuple[int, int], seed: int) -> np.ndarray:
    """L2A digital numbers (baseline >= 04.00: DN = (reflectance + 0.1) * 10000), a water stripe, a nodata edge."""
    rng = np.random.default_rng(seed)
    values = reflectance + rng.normal(0, 0.01, shape)
    values[:, : shape[1] // 5] = 0.02 if reflectance < 0.3 else 0.01  # water on the west
    dn = np.clip((values + 0.1) * 10000, 1, 65535).astype(np.uint16)
    dn[:3, :] = 0
    return dn


@dataclass
class Archive:
    root: Path
    catalog_url: str
    s2_ids: list[str]
    s1_id: str


def build_archive(root: Path) -> Archive:
    cogs = root / "cogs"
    cogs.mkdir(parents=True)
    s2 = json.loads(S2_ITEM.read_text())
    west, south, east, north = s2["bbox"]
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32620", always_xy=True)
    xs, ys = to_utm.transform([west, east, west, east], [south, south, north, north])
    res = 60.0
    shape = (int((max(ys) - min(ys)) / res), int((max(xs) - min(xs)) / res))
    transform = from_origin(min(xs), max(ys), res, res)
    assets = {}
    for index, (band, reflectance) in enumerate(S2_BANDS.items()):
        write_cog(cogs / f"{band}.tif", _s2_pixels(reflectance, shape, index), "EPSG:32620", transform, 0)
        assets[band] = {
            "href": str(cogs / f"{band}.tif"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data", "reflectance"],
            "raster:bands": [
                {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1, "spatial_resolution": res}
            ],
        }
    scl = np.full(shape, 4, dtype=np.uint8)
    scl[:, : shape[1] // 5] = 6
    scl[shape[0] // 2 :, shape[1] // 2 :] = 9  # a cloud in the south-east quarter
    write_cog(cogs / "SCL.tif", scl, "EPSG:32620", transform, 0)
    assets["SCL"] = {"href": str(cogs / "SCL.tif"), "type": "image/tiff; application=geotiff", "roles": ["data"]}
    s2_items = []
    for n in range(S2_COUNT):
        item = copy.deepcopy(s2)
        item["id"] = s2["id"].replace("20231107T182159", f"20231107T1821{n:02d}")
        item["properties"]["datetime"] = f"2023-11-{7 + n:02d}T14:47:31.024000Z"
        item["properties"]["eo:cloud_cover"] = float((n * 37) % 100)
        item["properties"]["platform"] = "sentinel-2a" if n % 2 == 0 else "sentinel-2b"
        item["properties"]["grid:code"] = "MGRS-20QRF"
        item["properties"].update({"mgrs:utm_zone": 20, "mgrs:latitude_band": "Q", "mgrs:grid_square": "RF"})
        item["properties"]["processing:version"] = "05.09"
        item["assets"] = copy.deepcopy(assets)
        item["links"] = []
        s2_items.append(item)
    # stac-api-validator checks that ``ids`` does not override ``bbox`` only if an item lies in 20,20,21,21:
    # one footprint (metadata only; its assets are the same COGs) is moved there.
    far = s2_items[-1]
    far["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[20.2, 20.2], [20.8, 20.2], [20.8, 20.8], [20.2, 20.8], [20.2, 20.2]]],
    }
    far["bbox"] = [20.2, 20.2, 20.8, 20.8]

    s1 = json.loads(S1_ITEM.read_text())
    w1, s1_south, e1, n1 = s1["bbox"]
    s1_shape = (120, 150)
    s1_transform = from_origin(w1, n1, (e1 - w1) / s1_shape[1], (n1 - s1_south) / s1_shape[0])
    rng = np.random.default_rng(7)
    s1_assets = {}
    for pol, level in (("vv", -9.0), ("vh", -16.0)):
        db = level + rng.normal(0, 1.5, s1_shape)
        db[:, :30] = level - 10  # smooth water: dark
        write_cog(cogs / f"{pol}.tif", np.round(db / 0.01).astype(np.int16), "EPSG:4326", s1_transform, -32768)
        s1_assets[pol] = {
            "href": str(cogs / f"{pol}.tif"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "raster:bands": [{"nodata": -32768, "data_type": "int16", "scale": 0.01, "offset": 0, "unit": "dB"}],
        }
    s1["assets"] = s1_assets
    s1["links"] = []

    catalog_url = f"sqlite:///{root / 'catalog.db'}"
    catalog = open_catalog(catalog_url)
    try:
        for path in (S2_COLLECTION, S1_COLLECTION):
            collection = json.loads(path.read_text())
            collection["links"] = [link for link in collection.get("links", []) if link.get("rel") == "license"]
            catalog.create_collection(collection)
        report = catalog.add_items([*s2_items, s1])
        assert not report.refused, report.refused
    finally:
        catalog.close()
    return Archive(root=root, catalog_url=catalog_url, s2_ids=[i["id"] for i in s2_items], s1_id=s1["id"])


@pytest.fixture(scope="session")
def api_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("api-archive"))


def settings_for(archive: Archive, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data": archive.root,
        "catalog": archive.catalog_url,
        "api_key": API_KEY,
        "cors_origins": ["https://maps.example.org"],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def copy_catalog(source_url: str, target_url: str) -> None:
    """The archive's collections and items, into another backend (pgstac) through the Catalog contract."""
    from snapearth.catalog import SearchRequest

    source, target = open_catalog(source_url), open_catalog(target_url)
    try:
        for collection in source.list_collections():
            target.create_collection(collection)
        report = target.add_items(source.iter_items(SearchRequest(limit=100)))
        assert not report.refused, report.refused
    finally:
        source.close()
        target.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("pgstac", marks=pytest.mark.pg)])
def backend_url(request: pytest.FixtureRequest, api_archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A writable catalog holding the test archive, on each backend: the STAC API must behave the same.

    One per module and backend; tests that write (transactions) remove what they add.
    """
    if request.param == "sqlite":
        return copy_archive(api_archive, tmp_path_factory.mktemp("backend") / "archive").catalog_url
    url: str = request.getfixturevalue("pg_server").new_database()
    copy_catalog(api_archive.catalog_url, url)
    return url


@pytest.fixture(scope="module")
def stac_client(api_archive: Archive, backend_url: str) -> Iterator[object]:
    from fastapi.testclient import TestClient

    app = create_app(settings_for(api_archive, catalog=backend_url))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def client(api_archive: Archive) -> Iterator[object]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(api_archive)), raise_server_exceptions=False) as test_client:
        yield test_client


def copy_archive(archive: Archive, target: Path) -> Archive:
    """A writable copy (transaction tests change the catalog)."""
    import shutil

    shutil.copytree(archive.root, target)
    return Archive(
        root=target,
        catalog_url=f"sqlite:///{target / 'catalog.db'}",
        s2_ids=archive.s2_ids,
        s1_id=archive.s1_id,
    )


__all__ = ["API_KEY", "Archive", "copy_archive", "settings_for"]
