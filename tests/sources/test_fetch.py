"""Downloads into the cache over real HTTP: checksums, resume, route failover, credentials, catalog hrefs."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from snapearth.catalog import SearchRequest
from snapearth.errors import AuthenticationError, InvalidInputError, ProviderError
from snapearth.sources.fetch import Fetcher
from snapearth.sources.harvest import ensure_collection, store_items
from snapearth.sources.normalize import normalize_feature
from tests.fixtures.shared import REAL_METADATA as REAL
from tests.sources.replay import stac_item

MANIFEST = (REAL / "safe" / "manifest.safe.S2_MSI_L2A").read_bytes()
GRANULE = (REAL / "stac-items" / "stactools_S2A_MSIL2A_20230821_T01KAB_metadata" / "MTD_TL.xml").read_bytes()
PC_ITEM = "pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json"
PC_ID = "S2A_MSIL2A_20231107T144731_R139_T20QRF_20231107T182159"
BLOB = "https://sentinel2l2a01.blob.core.windows.net"


def md5_multihash(data: bytes) -> str:
    return "d510" + hashlib.md5(data, usedforsecurity=False).hexdigest()


def provider_item(replay: Any, provider: str, prefix: str, *, checksums: bool = True) -> dict[str, Any]:
    """The real Planetary Computer item, hosted by ``provider`` under ``prefix`` on loopback."""
    raw = copy.deepcopy(stac_item(PC_ITEM))
    for asset in raw["assets"].values():
        asset["href"] = asset["href"].replace(BLOB, f"{replay.url}{prefix}")
    if checksums:
        raw["assets"]["safe-manifest"].update({"file:checksum": md5_multihash(MANIFEST), "file:size": len(MANIFEST)})
        raw["assets"]["granule-metadata"]["file:checksum"] = md5_multihash(GRANULE)
    return normalize_feature(raw, provider=provider, collection="sentinel-2-l2a")


def blob_paths(item: dict[str, Any], replay: Any) -> dict[str, str]:
    return {key: item["assets"][key]["href"].removeprefix(replay.url) for key in ("safe-manifest", "granule-metadata")}


@pytest.fixture
def pc_item(catalog, replay):
    item = provider_item(replay, "planetary_computer", "/pc-blob")
    paths = blob_paths(item, replay)
    replay.route("/pc-blob", replay.files({paths["safe-manifest"]: MANIFEST, paths["granule-metadata"]: GRANULE}))
    ensure_collection(catalog, "sentinel-2-l2a")
    store_items(catalog, "sentinel-2-l2a", [item], ["planetary_computer"])
    return item


def test_fetch_downloads_verifies_and_points_the_catalog_at_the_copy(catalog, replay, make_gateway, tmp_path, pc_item):
    fetcher = Fetcher(catalog, tmp_path / "cache", make_gateway("planetary_computer"))
    report = fetcher.fetch(PC_ID, assets=["safe-manifest", "granule-metadata"])
    assert report.failed == {}
    by_key = {a.key: a for a in report.assets}
    assert Path(by_key["safe-manifest"].path).read_bytes() == MANIFEST
    assert Path(by_key["granule-metadata"].path).read_bytes() == GRANULE
    assert by_key["safe-manifest"].checksum == "verified"
    assert by_key["safe-manifest"].path == str(tmp_path / "cache" / "sentinel-2-l2a" / PC_ID / "safe-manifest.safe")
    stored = catalog.get_item("sentinel-2-l2a", PC_ID)
    manifest = stored["assets"]["safe-manifest"]
    assert manifest["href"] == by_key["safe-manifest"].path
    assert manifest["alternate:name"] == "local"
    assert manifest["alternate"]["planetary_computer"]["href"] == pc_item["assets"]["safe-manifest"]["href"]
    assert stored["assets"]["B04"]["href"] == pc_item["assets"]["B04"]["href"]  # not fetched, unchanged

    again = fetcher.fetch(PC_ID, assets=["safe-manifest"])
    assert again.assets[0].cached
    assert len(replay.requests_to("/pc-blob")) == 2  # the cache answered the second time


def test_a_partial_download_resumes_with_a_range_request(catalog, replay, make_gateway, tmp_path, pc_item):
    ranges: list[str] = []
    paths = blob_paths(pc_item, replay)
    replay.routes.insert(0, replay.route("/pc-blob", replay.files({paths["safe-manifest"]: MANIFEST}, ranges)))
    folder = tmp_path / "cache" / "sentinel-2-l2a" / PC_ID
    folder.mkdir(parents=True)
    half = len(MANIFEST) // 2
    (folder / "safe-manifest.safe.part").write_bytes(MANIFEST[:half])
    report = Fetcher(catalog, tmp_path / "cache", make_gateway("planetary_computer")).fetch(
        PC_ID, assets=["safe-manifest"]
    )
    (done,) = report.assets
    assert ranges == [f"bytes={half}-"]
    assert done.resumed_from == half
    assert done.bytes_downloaded == len(MANIFEST) - half
    assert Path(done.path).read_bytes() == MANIFEST
    assert not (folder / "safe-manifest.safe.part").exists()


def test_a_checksum_mismatch_keeps_nothing_and_leaves_the_catalog_alone(catalog, replay, make_gateway, tmp_path):
    item = provider_item(replay, "planetary_computer", "/pc-blob")
    item["assets"]["granule-metadata"]["file:checksum"] = md5_multihash(b"another file")
    replay.route("/pc-blob", replay.files({blob_paths(item, replay)["granule-metadata"]: GRANULE}))
    ensure_collection(catalog, "sentinel-2-l2a")
    store_items(catalog, "sentinel-2-l2a", [item], ["planetary_computer"])
    with pytest.raises(ProviderError, match="checksum mismatch"):
        Fetcher(catalog, tmp_path / "cache", make_gateway("planetary_computer")).fetch(
            PC_ID, assets=["granule-metadata"]
        )
    assert list((tmp_path / "cache").rglob("*.xml*")) == []
    assert catalog.get_item("sentinel-2-l2a", PC_ID)["assets"]["granule-metadata"]["href"].startswith(replay.url)


def test_a_failing_route_falls_over_to_the_alternate(catalog, replay, make_gateway, tmp_path):
    primary = provider_item(replay, "planetary_computer", "/gone", checksums=False)
    mirror = provider_item(replay, "eu_mirror", "/mirror-blob", checksums=False)
    replay.route("/gone", replay.files({}))
    replay.route("/mirror-blob", replay.files({blob_paths(mirror, replay)["safe-manifest"]: MANIFEST}))
    ensure_collection(catalog, "sentinel-2-l2a")
    store_items(catalog, "sentinel-2-l2a", [primary, mirror], ["planetary_computer", "eu_mirror"])
    report = Fetcher(catalog, tmp_path / "cache", make_gateway("planetary_computer")).fetch(
        PC_ID, assets=["safe-manifest"]
    )
    (done,) = report.assets
    assert done.route == "eu_mirror"
    assert done.checksum == "not given"
    assert Path(done.path).read_bytes() == MANIFEST
    alternates = catalog.get_item("sentinel-2-l2a", PC_ID)["assets"]["safe-manifest"]["alternate"]
    assert set(alternates) == {"planetary_computer", "eu_mirror"}


def test_unknown_assets_and_items_are_named(catalog, make_gateway, tmp_path, pc_item):
    fetcher = Fetcher(catalog, tmp_path / "cache", make_gateway("planetary_computer"))
    with pytest.raises(InvalidInputError, match=r"\['B99'\] not in item") as caught:
        fetcher.fetch(PC_ID, assets=["B04", "B99"])
    assert caught.value.field == "assets"
    with pytest.raises(Exception, match="not in the catalog"):
        fetcher.fetch("S2B_MSIL2A_20990101T000000_R001_T01AAA_20990101T000000")


def test_a_download_needing_credentials_names_the_variables(catalog, replay, make_gateway, tmp_path):
    replay.route("/odata/v1/Products", replay.recorded("cop_dataspace_search.json"))
    replay.route("/oidc", replay.oidc())
    gateway = make_gateway("cop_dataspace")
    from shapely.geometry import box

    from snapearth.sources.harvest import harvest
    from snapearth.sources.query import parse_window

    harvest(
        catalog,
        gateway,
        providers=["cop_dataspace"],
        collection="sentinel-2-l1c",
        geometry=box(130, 10, 150, 20),
        window=parse_window("2020-08-01/2020-08-31", "sentinel-2-l1c"),
    )
    item_id = "S2A_MSIL1C_20200808T010311_R045_T54PXA_20230413T212505"
    with pytest.raises(AuthenticationError) as caught:
        Fetcher(catalog, tmp_path / "cache", gateway).fetch(item_id, assets=["product"])
    assert "EODAG__COP_DATASPACE__AUTH__CREDENTIALS__USERNAME" in caught.value.message
    assert "EODAG__COP_DATASPACE__AUTH__CREDENTIALS__PASSWORD" in caught.value.message


def test_the_fetch_command(catalog, tmp_path, pc_item):
    from snapearth.cli import _register_all, app

    _register_all()
    result = CliRunner().invoke(
        app,
        ["fetch", PC_ID, "--assets", "granule-metadata", "--catalog", catalog.url, "--cache", str(tmp_path / "c")],
    )
    assert result.exit_code == 0, result.output
    assert '"checksum": "verified"' in result.output
    page = catalog.search(SearchRequest(ids=[PC_ID]))
    assert page.items[0]["assets"]["granule-metadata"]["href"].startswith(str(tmp_path / "c"))
    bad = CliRunner().invoke(app, ["fetch", PC_ID, "--assets", "nope", "--catalog", catalog.url])
    assert bad.exit_code == 2
    assert "assets: ['nope'] not in item" in bad.output
