"""Local sources and the project's own STAC API as an EODAG provider.

The archive is the API tests' one (real Planetary Computer S2 L2A and S1 GRD metadata with small real COGs):
it is served by SnapEarth's STAC API under uvicorn on loopback and harvested through EODAG's StacSearch
(real pagination through the API's next links), and written as a static STAC catalog harvested as a local
source; the same products from both routes become one item each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pystac
import pytest

from snapearth.catalog import SearchRequest, open_catalog
from snapearth.sources.eodag_source import EodagGateway, RetryPolicy
from snapearth.sources.harvest import STATE_NAMESPACE, harvest
from snapearth.sources.local import harvest_local
from snapearth.sources.query import parse_window
from tests.api.conftest import Archive, Server, build_archive, settings_for


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("sources-archive"))


@pytest.fixture(scope="module")
def api(archive: Archive) -> Any:
    from snapearth.api.app import create_app

    with Server(create_app(settings_for(archive))) as server:
        yield server


def all_items(url: str, collection: str) -> dict[str, Any]:
    opened = open_catalog(url)
    try:
        return {i["id"]: i for i in opened.iter_items(SearchRequest(collections=[collection], limit=100))}
    finally:
        opened.close()


@pytest.fixture(scope="module")
def static_catalog(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive written as a self-contained static STAC catalog (relative links, one asset href relative)."""
    root = tmp_path_factory.mktemp("static")
    catalog = pystac.Catalog(id="archive", description="the test archive as a static catalog")
    for collection in ("sentinel-2-l2a", "sentinel-1-grd"):
        for item in all_items(archive.catalog_url, collection).values():
            item = {**item, "links": []}
            catalog.add_item(pystac.Item.from_dict(item))
    catalog.normalize_hrefs(str(root))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    first = sorted(root.rglob("*.json"))[1]
    document = json.loads(first.read_text())
    cog = Path(next(a["href"] for a in document["assets"].values() if a["href"].endswith(".tif")))
    local_copy = first.parent / cog.name
    local_copy.write_bytes(cog.read_bytes())
    key = next(k for k, a in document["assets"].items() if a["href"] == str(cog))
    document["assets"][key]["href"] = f"./{cog.name}"
    first.write_text(json.dumps(document))
    return root


def api_gateway(api: Any, home: Path, page_size: int) -> EodagGateway:
    """EODAG with the project's API declared as a StacSearch provider, the way a user would in eodag.yml."""
    return EodagGateway(
        cfg_dir=home,
        providers=("snapearth",),
        provider_overrides={
            "snapearth": {
                "url": api.url,
                "priority": 1,
                "search": {"type": "StacSearch", "api_endpoint": f"{api.url}/search"},
                "products": {
                    "S2_MSI_L2A": {"_collection": "sentinel-2-l2a"},
                    "S1_SAR_GRD": {"_collection": "sentinel-1-grd"},
                    "GENERIC_COLLECTION": {"_collection": "{collection}"},
                },
                "download": {"type": "HTTPDownload"},
            }
        },
        retry=RetryPolicy(attempts=2, sleep=lambda seconds: None),
        page_size=page_size,
    )


def test_eodag_harvests_the_projects_own_stac_api(catalog, archive, api, eodag_home):
    from shapely.geometry import box

    gateway = api_gateway(api, eodag_home, page_size=5)
    report = harvest(
        catalog,
        gateway,
        providers=["snapearth"],
        collection="sentinel-2-l2a",
        geometry=box(-180, -90, 180, 90),
        window=parse_window("2023-01-01/2024-01-01", "sentinel-2-l2a"),
    )
    (provider,) = report.providers
    served = all_items(archive.catalog_url, "sentinel-2-l2a")
    assert provider.status == "ok"
    assert provider.results == len(served)
    assert provider.pages == -(-len(served) // 5)  # real pagination through the API's next links
    harvested = {i["id"]: i for i in catalog.iter_items(SearchRequest(collections=["sentinel-2-l2a"], limit=100))}
    assert len(harvested) == len(served)
    one = next(iter(harvested.values()))
    assert one["properties"]["snapearth:sources"][0]["provider"] == "snapearth"
    assert one["assets"]["B04"]["href"].startswith(api.url)  # the API serves local files by URL
    assert one["assets"]["B04"]["raster:bands"][0]["offset"] == -0.1
    for item_id, item in harvested.items():
        original = next(i for i in served.values() if i["properties"]["datetime"] == item["properties"]["datetime"])
        assert item["properties"]["eo:cloud_cover"] == original["properties"]["eo:cloud_cover"], item_id


def test_a_static_catalog_is_harvested_incrementally(catalog, archive, static_catalog):
    first = harvest_local(catalog, static_catalog)
    expected = sum(len(all_items(archive.catalog_url, c)) for c in ("sentinel-2-l2a", "sentinel-1-grd"))
    assert (first.read, first.stored, first.unchanged) == (expected, expected, 0)
    items = {
        **all_items(catalog.url, "sentinel-2-l2a"),
        **all_items(catalog.url, "sentinel-1-grd"),
    }
    assert len(items) == expected
    hrefs = [a["href"] for i in items.values() for a in i["assets"].values()]
    assert all(h.startswith("/") for h in hrefs)
    assert all(Path(h).is_file() for h in hrefs)
    source = f"local:{static_catalog.name}"
    assert {i["properties"]["snapearth:sources"][0]["provider"] for i in items.values()} == {source}

    second = harvest_local(catalog, static_catalog)
    assert (second.stored, second.unchanged) == (0, expected)

    changed = sorted(static_catalog.rglob("*.json"))[2]
    document = json.loads(changed.read_text())
    document["properties"]["eo:cloud_cover"] = 1.5
    changed.write_text(json.dumps(document))
    third = harvest_local(catalog, static_catalog)
    assert (third.stored, third.unchanged) == (1, expected - 1)
    assert len(catalog.list_records(STATE_NAMESPACE)) == 1


def test_the_same_products_from_the_api_and_the_static_catalog_merge(catalog, archive, api, static_catalog, eodag_home):
    from shapely.geometry import box

    harvest(
        catalog,
        api_gateway(api, eodag_home, page_size=50),
        providers=["snapearth"],
        collection="sentinel-2-l2a",
        geometry=box(-180, -90, 180, 90),
        window=parse_window("2023-01-01/2024-01-01", "sentinel-2-l2a"),
    )
    harvest_local(catalog, static_catalog, collection=None, priority=["snapearth"])
    items = all_items(catalog.url, "sentinel-2-l2a")
    assert len(items) == len(all_items(archive.catalog_url, "sentinel-2-l2a"))
    for item in items.values():
        sources = [s["provider"] for s in item["properties"]["snapearth:sources"]]
        assert sources == ["snapearth", f"local:{static_catalog.name}"]
        b04 = item["assets"]["B04"]
        assert b04["href"].startswith("http://127.0.0.1")
        assert b04["alternate"][f"local:{static_catalog.name}"]["href"].startswith("/")
