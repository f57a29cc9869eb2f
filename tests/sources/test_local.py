"""The sample archive as a local source, and SnapEarth's own STAC API as an EODAG provider.

The ``test`` sample archive (static STAC catalog, relative hrefs, small COGs) is harvested as a local source;
a catalog holding it is served by the project's STAC API under uvicorn on loopback and harvested through
EODAG's StacSearch (real pagination through the API's next links); the same products from both routes become
one item each, with both access routes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box

from snapearth.catalog import SearchRequest, open_catalog
from snapearth.config import Settings
from snapearth.sources.eodag_source import EodagGateway, RetryPolicy
from snapearth.sources.harvest import STATE_NAMESPACE, harvest
from snapearth.sources.local import harvest_local
from snapearth.sources.query import parse_window
from tests.fixtures.server import LiveServer

COLLECTIONS = ("sentinel-2-l2a", "sentinel-1-grd")


def archive_items(root: Path) -> dict[str, dict[str, Any]]:
    items = {}
    for path in root.rglob("*.json"):
        document = json.loads(path.read_text())
        if document.get("type") == "Feature":
            items[document["id"]] = document
    return items


def items_of(catalog: Any, collection: str) -> dict[str, Any]:
    return {i["id"]: i for i in catalog.iter_items(SearchRequest(collections=[collection], limit=100))}


@pytest.fixture(scope="module")
def served_catalog(sample_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A catalog holding the sample archive (loaded as a local source), for the API to serve."""
    url = f"sqlite:///{tmp_path_factory.mktemp('served') / 'catalog.db'}"
    opened = open_catalog(url)
    try:
        harvest_local(opened, sample_archive)
    finally:
        opened.close()
    return url


@pytest.fixture(scope="module")
def api(sample_archive: Path, served_catalog: str) -> Iterator[LiveServer]:
    from snapearth.api.app import create_app

    settings = Settings(data=sample_archive, catalog=served_catalog)
    with LiveServer(create_app(settings)) as server:
        yield server


def api_gateway(api: LiveServer, home: Path, page_size: int) -> EodagGateway:
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


def harvest_api(catalog: Any, api: LiveServer, home: Path, page_size: int) -> list[Any]:
    gateway = api_gateway(api, home, page_size)
    return [
        harvest(
            catalog,
            gateway,
            providers=["snapearth"],
            collection=collection,
            geometry=box(-180, -90, 180, 90),
            window=parse_window("2015-07-01/..", collection),
        )
        for collection in COLLECTIONS
    ]


def test_the_sample_archive_is_harvested_as_a_local_source(catalog, sample_archive):
    originals = archive_items(sample_archive)
    report = harvest_local(catalog, sample_archive)
    assert (report.read, report.stored, report.unchanged) == (len(originals), len(originals), 0)
    stored = {**items_of(catalog, "sentinel-2-l2a"), **items_of(catalog, "sentinel-1-grd")}
    assert set(stored) == set(originals)
    for item_id, item in stored.items():
        assert all(Path(a["href"]).is_file() for a in item["assets"].values()), item_id
        assert item["properties"]["snapearth:sources"][0]["provider"] == f"local:{sample_archive.name}"
        original = originals[item_id]["properties"]
        assert {k: item["properties"][k] for k in original} == original  # every field kept as it was


def test_a_local_rerun_writes_only_what_changed(catalog, sample_archive, tmp_path):
    copy = tmp_path / "archive"
    shutil.copytree(sample_archive, copy)
    first = harvest_local(catalog, copy)
    second = harvest_local(catalog, copy)
    assert (second.stored, second.unchanged) == (0, first.read)
    path = next(p for p in sorted(copy.rglob("*.json")) if json.loads(p.read_text()).get("type") == "Feature")
    document = json.loads(path.read_text())
    document["properties"]["eo:cloud_cover"] = 1.5
    path.write_text(json.dumps(document))
    third = harvest_local(catalog, copy)
    assert (third.stored, third.unchanged) == (1, first.read - 1)
    assert catalog.get_item(document["collection"], document["id"])["properties"]["eo:cloud_cover"] == 1.5
    assert len(catalog.list_records(STATE_NAMESPACE)) == 1


def test_eodag_harvests_the_projects_own_stac_api(catalog, sample_archive, api, served_catalog, eodag_home):
    reports = harvest_api(catalog, api, eodag_home, page_size=3)
    served = open_catalog(served_catalog)
    try:
        for report, collection in zip(reports, COLLECTIONS, strict=True):
            (provider,) = report.providers
            expected = items_of(served, collection)
            assert provider.status == "ok"
            assert provider.results == len(expected)
            assert provider.pages == -(-len(expected) // 3)  # page after page through the API's next links
            harvested = items_of(catalog, collection)
            assert set(harvested) == set(expected)
            for item_id, item in harvested.items():
                original = expected[item_id]["properties"]
                assert item["properties"]["datetime"] == original["datetime"]
                assert item["properties"]["platform"] == original["platform"]
                assert item["properties"].get("eo:cloud_cover") == original.get("eo:cloud_cover")
                data = [a for a in item["assets"].values() if "data" in a.get("roles", [])]
                assert data
                assert all(a["href"].startswith(f"{api.url}/files/") for a in data)
                assert item["properties"]["snapearth:sources"][0]["provider"] == "snapearth"
    finally:
        served.close()


def test_the_same_products_from_the_api_and_the_local_archive_merge(catalog, sample_archive, api, eodag_home):
    harvest_api(catalog, api, eodag_home, page_size=50)
    harvest_local(catalog, sample_archive, priority=["snapearth"])
    local = f"local:{sample_archive.name}"
    items = {**items_of(catalog, "sentinel-2-l2a"), **items_of(catalog, "sentinel-1-grd")}
    assert set(items) == set(archive_items(sample_archive))
    for item in items.values():
        assert [s["provider"] for s in item["properties"]["snapearth:sources"]] == ["snapearth", local]
        key = next(k for k, a in item["assets"].items() if "data" in a.get("roles", []))
        asset = item["assets"][key]
        assert asset["href"].startswith(api.url)
        assert asset["alternate:name"] == "snapearth"
        assert Path(asset["alternate"][local]["href"]).is_file()


def test_harvest_local_and_fetch_from_the_command_line(catalog, sample_archive, tmp_path):
    from typer.testing import CliRunner

    from snapearth.cli import _register_all, app

    _register_all()
    runner = CliRunner()
    result = runner.invoke(app, ["harvest", "--local", str(sample_archive), "--catalog", catalog.url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stored"] == len(archive_items(sample_archive))
    item = next(iter(items_of(catalog, "sentinel-2-l2a").values()))
    cache = tmp_path / "cache"
    fetched = runner.invoke(
        app, ["fetch", item["id"], "--assets", "B04", "--catalog", catalog.url, "--cache", str(cache)]
    )
    assert fetched.exit_code == 0, fetched.output
    copy_path = cache / "sentinel-2-l2a" / item["id"] / "B04.tif"
    assert copy_path.read_bytes() == Path(item["assets"]["B04"]["href"]).read_bytes()
    stored = catalog.get_item("sentinel-2-l2a", item["id"])["assets"]["B04"]
    assert stored["href"] == str(copy_path)
    assert stored["alternate"][f"local:{sample_archive.name}"]["href"] == item["assets"]["B04"]["href"]
