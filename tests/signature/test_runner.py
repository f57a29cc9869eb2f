"""`enrich` end to end on the `test` sample archive: Dask runner, catalog write-back, events, failures, CLI, API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from benchmarks.signature import event_accuracy, mask_accuracy
from snapearth.catalog import Catalog, SearchRequest, open_catalog
from snapearth.catalog.load import load_paths
from snapearth.signature import SIGNATURE_VERSION
from snapearth.signature.runner import EMBEDDINGS, FAILURES, dask_client, enrich

S2, S1 = "sentinel-2-l2a", "sentinel-1-grd"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with dask_client(None, 1) as dask:
        yield dask


def _load(archive: Path, folder: Path) -> tuple[Catalog, Path]:
    copy = folder / "archive"
    shutil.copytree(archive, copy)
    catalog = open_catalog(f"sqlite:///{folder / 'catalog.db'}")
    for name in (S2, S1):
        collection = json.loads((copy / name / "collection.json").read_text())
        collection["links"] = []
        catalog.create_collection(collection, exist_ok=True)
    report = load_paths(catalog, [copy / "catalog.json"])
    assert not report.refused
    return catalog, copy


def _items(catalog: Catalog, *collections: str) -> list[dict[str, Any]]:
    return list(catalog.iter_items(SearchRequest(collections=list(collections), limit=500)))


@pytest.fixture(scope="module")
def enriched(sample_archive: Path, tmp_path_factory: pytest.TempPathFactory, client: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("enrich")
    catalog, copy = _load(sample_archive, folder)
    report = enrich(catalog, data_dir=folder, client=client)
    yield catalog, copy, folder, report
    catalog.close()


def test_every_item_gets_a_signature_masks_and_events(enriched: Any) -> None:
    catalog, archive, _folder, report = enriched
    assert report.failures == []
    items = _items(catalog, S2, S1)
    assert report.enriched == len(items) == 17
    for item in items:
        props = item["properties"]
        assert props["signature:version"] == SIGNATURE_VERSION
        for key, asset in item["assets"].items():
            if key.startswith("signature-"):
                assert asset["roles"] == [key]
                assert Path(asset["href"]).parent == archive / item["collection"] / item["id"]
                assert Path(asset["href"]).is_file()
        if item["collection"] == S2:
            assert {"signature-cloud", "signature-water", "signature-snow", "signature-burn"} <= set(item["assets"])
            assert props["signature:cloud_method"] == "scl"
        else:
            assert "signature:vv_mean_db" in props
    # against the ground truth of the sample archive
    truth = archive / "truth"
    masks = mask_accuracy(items, truth)["at_mask_resolution"]
    assert masks["cloud"]["iou"] >= 0.95
    assert masks["snow"]["iou"] >= 0.9
    assert masks["water"]["iou"] >= 0.85
    events = _items(catalog, "events")
    accuracy = event_accuracy(events, truth)
    assert accuracy["precision"] == 1.0
    assert accuracy["recall"] == 1.0
    for event in events:
        assert event["properties"]["signature:area_km2"] > 0
        assert any(link["rel"] == "after" for link in event["links"])


def test_signature_fields_are_searchable(enriched: Any) -> None:
    catalog = enriched[0]
    snowy = catalog.search(
        SearchRequest(collections=[S2], filter='"signature:snow_fraction" > 0.5', filter_lang="cql2-text", limit=50)
    )
    assert snowy.items
    assert all("T32TLR" in item["id"] for item in snowy.items)  # Chamonix, not Valencia


def test_rerun_is_idempotent(enriched: Any, client: Any) -> None:
    catalog, _archive, folder, _report = enriched
    before = sorted((e["id"], json.dumps(e["geometry"])) for e in _items(catalog, "events"))
    again = enrich(catalog, data_dir=folder, client=client)
    assert again.selected == 0
    assert sorted((e["id"], json.dumps(e["geometry"])) for e in _items(catalog, "events")) == before
    forced = enrich(catalog, data_dir=folder, client=client, force=True)
    assert forced.enriched == 17
    assert forced.events_removed == 0
    assert sorted((e["id"], json.dumps(e["geometry"])) for e in _items(catalog, "events")) == before


def test_similar_images_and_places_through_the_api(enriched: Any) -> None:
    from snapearth.api.app import create_app
    from snapearth.config import Settings

    catalog, _archive, folder, _report = enriched
    clear = [i for i in _items(catalog, S2) if (i["properties"].get("signature:clear_fraction") or 0) > 0.5]
    chamonix = next(i for i in clear if "T32TLR" in i["id"])
    assert catalog.get_record(EMBEDDINGS, f"{S2}/{chamonix['id']}") is not None
    app = create_app(Settings(data=folder, catalog=catalog.url), catalog=catalog)
    with TestClient(app) as http:
        answer = http.get(f"/similar/collections/{S2}/items/{chamonix['id']}", params={"limit": 3})
        assert answer.status_code == 200, answer.text
        features = answer.json()["features"]
        assert features
        assert chamonix["id"] not in [f["id"] for f in features]
        distances = [f["properties"]["signature:distance"] for f in features]
        assert distances == sorted(distances)
        # the nearest image of a clear snowy Chamonix scene is another Chamonix scene
        assert "T32TLR" in features[0]["id"]
        lon = (chamonix["bbox"][0] + chamonix["bbox"][2]) / 2
        lat = (chamonix["bbox"][1] + chamonix["bbox"][3]) / 2
        places = http.get(
            f"/similar/collections/{S2}/items/{chamonix['id']}/places", params={"lon": lon, "lat": lat, "limit": 2}
        )
        assert places.status_code == 200, places.text
        assert places.json()["features"][0]["geometry"]["type"] == "Polygon"
        assert http.get(f"/similar/collections/{S2}/items/nope").status_code == 404
        bad = http.get(f"/similar/collections/{S2}/items/{chamonix['id']}/places", params={"lon": 500, "lat": 1})
        assert bad.status_code == 400
        assert "lon" in bad.text


def test_failures_are_recorded_and_the_run_goes_on(sample_archive: Path, tmp_path: Path, client: Any) -> None:
    catalog, _copy = _load(sample_archive, tmp_path)
    s2 = sorted(_items(catalog, S2), key=lambda i: i["id"])
    corrupt, wrong_scale, gone = s2[0], s2[1], s2[2]
    Path(corrupt["assets"]["B08"]["href"]).write_bytes(b"not a tiff at all")
    wrong_scale["assets"]["B04"]["raster:bands"][0]["scale"] = 1.0
    Path(gone["assets"]["B11"]["href"]).unlink()
    catalog.add_items([wrong_scale], mode="upsert")
    report = enrich(catalog, data_dir=tmp_path, client=client, collections=[S2], events=False)
    reasons = {f.item_id: f for f in report.failures}
    assert set(reasons) == {corrupt["id"], wrong_scale["id"], gone["id"]}
    assert report.enriched == len(s2) - 3
    assert reasons[corrupt["id"]].field == "assets.B08"
    assert "scale 1.0 is implausible" in reasons[wrong_scale["id"]].reason
    assert reasons[gone["id"]].field == "assets.B11"
    for item_id in reasons:
        stored = catalog.get_item(S2, item_id)
        assert "signature:version" not in stored["properties"]  # never a wrong signature stored
        assert not any(k.startswith("signature-") for k in stored["assets"])
        record = catalog.get_record(FAILURES, f"{S2}/{item_id}")
        assert record is not None
        assert record["reason"]
    catalog.close()


def test_cli_enrich(sample_archive: Path, tmp_path: Path) -> None:
    catalog, _copy = _load(sample_archive, tmp_path)
    catalog.close()
    env = {**os.environ, "SNAPEARTH_DATA": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "snapearth.cli",
            "enrich",
            "--catalog",
            catalog.url,
            "--collection",
            S1,
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["enriched"] == 8
    assert report["failed"] == 0
    bad = subprocess.run(
        [sys.executable, "-m", "snapearth.cli", "enrich", "--catalog", catalog.url, "--collection", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 2
    assert "nope" in bad.stderr
