"""The openEO API as its peers see it: the openEO Python client against the real app on loopback, and every
response checked against the openEO API 1.2.0 OpenAPI document."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr

from tests.processing import scenes
from tests.processing.conftest import OTHER, OTHER_PASSWORD, PASSWORD, USER, OpenEOServer
from tests.processing.openapi_check import validate

http = httpx.Client(timeout=120)  # the first openEO request of a server imports openeo-processes-dask
EXTENT = dict(zip(("west", "south", "east", "north"), scenes.bbox_4326(), strict=True))
CLEAR = [s for s in scenes.SCENES if s.cloud_cover <= 50]


def expected_mean_ndvi(scene_list: list[scenes.Scene]) -> float:
    return float(np.mean([s.ndvi for s in scene_list]))


def token(server: OpenEOServer, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    response = http.get(f"{server.root}/credentials/basic", auth=(user, password))
    validate(response, "/credentials/basic")
    return {"Authorization": f"Bearer basic//{response.json()['access_token']}"}


def ndvi_graph(fmt: str = "GTiff", *, collection: str = "sentinel-2-l2a", process: str = "ndvi") -> dict:
    return {
        "process": {
            "process_graph": {
                "load": {
                    "process_id": "load_collection",
                    "arguments": {
                        "id": collection,
                        "spatial_extent": EXTENT,
                        "temporal_extent": ["2022-01-01", "2022-03-01"],
                        "bands": ["B04", "B08"],
                    },
                },
                "ndvi": {"process_id": process, "arguments": {"data": {"from_node": "load"}}},
                "mean": {
                    "process_id": "reduce_dimension",
                    "arguments": {
                        "data": {"from_node": "ndvi"},
                        "dimension": "t",
                        "reducer": {
                            "process_graph": {
                                "m": {
                                    "process_id": "mean",
                                    "arguments": {"data": {"from_parameter": "data"}},
                                    "result": True,
                                }
                            }
                        },
                    },
                },
                "save": {
                    "process_id": "save_result",
                    "arguments": {"data": {"from_node": "mean"}, "format": fmt},
                    "result": True,
                },
            }
        }
    }


def wait_for(server: OpenEOServer, headers: dict[str, str], job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"{server.root}/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("finished", "error", "canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def test_openeo_client_sync_and_batch(openeo_server: OpenEOServer, tmp_path: Path) -> None:
    con = openeo.connect(openeo_server.root, default_timeout=120)
    assert con.capabilities().api_version() == "1.2.0"
    assert "sentinel-2-l2a" in con.list_collection_ids()
    described = con.describe_collection("sentinel-2-l2a")
    assert described["cube:dimensions"]["bands"]["values"] == ["B04", "B08"]  # from item_assets
    assert {"load_collection", "ndvi", "reduce_dimension", "mask_clouds", "save_result"} <= {
        p["id"] for p in con.list_processes()
    }
    con.authenticate_basic(USER, PASSWORD)
    assert con.describe_account()["user_id"] == USER

    cube = con.load_collection(
        "sentinel-2-l2a", spatial_extent=EXTENT, temporal_extent=["2022-01-01", "2022-03-01"], bands=["B04", "B08"]
    )
    cube = con.load_collection(
        "sentinel-2-l2a",
        spatial_extent=EXTENT,
        temporal_extent=["2022-01-01", "2022-03-01"],
        bands=["B04", "B08"],
        properties={"eo:cloud_cover": lambda v: v <= 50},
    )
    mean_ndvi = cube.ndvi().reduce_dimension(dimension="t", reducer="mean")

    sync_path = tmp_path / "sync.tif"
    mean_ndvi.download(sync_path)
    with rasterio.open(sync_path) as src:
        sync_values = src.read(1)
        assert src.crs.to_epsg() == scenes.EPSG
    assert sync_values.shape == (scenes.SIZE, scenes.SIZE)
    assert np.isnan(sync_values[-1]).all()  # the nodata row stays no-data
    assert np.allclose(sync_values[:-1], expected_mean_ndvi(CLEAR), atol=1e-5)

    job = mean_ndvi.create_job(out_format="GTiff", title="mean NDVI")
    job.start_and_wait(max_poll_interval=0.5)
    assert job.status() == "finished"
    files = job.get_results().download_files(tmp_path / "batch")
    tif = next(p for p in files if p.suffix == ".tif")
    with rasterio.open(tif) as src:
        assert np.allclose(src.read(1), sync_values, equal_nan=True)

    info = job.describe()
    assert info["usage"]["cpu"]["value"] > 0
    assert info["usage"]["input"]["value"] > 0
    assert info["usage"]["storage"]["value"] == tif.stat().st_size
    assert info["costs"] > 0
    assert any("finished" in entry["message"] for entry in job.logs())


def test_netcdf_json_and_cloud_masks(openeo_server: OpenEOServer, tmp_path: Path) -> None:
    con = openeo.connect(openeo_server.root, default_timeout=120).authenticate_basic(USER, PASSWORD)
    cube = con.load_collection(
        "sentinel-2-l2a", spatial_extent=EXTENT, temporal_extent=["2022-01-01", "2022-02-01"], bands=["B04", "B08"]
    )
    # both January scenes: 2022-01-10 (baseline 03.01, offset 0) and 2022-01-30 (04.00, offset -0.1, 16 cloudy rows)
    raw = cube.ndvi()
    path = tmp_path / "raw.nc"
    raw.download(path, format="netCDF")
    with xr.open_dataset(path) as ds:
        values = ds[next(iter(ds.data_vars))].values
    assert values.shape == (2, scenes.SIZE, scenes.SIZE)
    assert np.allclose(values[0, :-1], scenes.SCENES[0].ndvi, atol=1e-5)
    assert np.allclose(values[1, :-1], scenes.SCENES[1].ndvi, atol=1e-5)

    for method in ("signature", "scl"):
        masked = cube.process("mask_clouds", data=cube, method=method).ndvi()
        path = tmp_path / f"masked-{method}.nc"
        masked.download(path, format="netCDF")
        with xr.open_dataset(path) as ds:
            second = ds[next(iter(ds.data_vars))].values[1]
        assert np.isnan(second[:16]).all(), method
        assert np.allclose(second[16:-1], scenes.SCENES[1].ndvi, atol=1e-5), method

    # signature:* properties filter the items; the JSON output of a spatial mean time series
    series = con.load_collection(
        "sentinel-2-l2a",
        spatial_extent=EXTENT,
        temporal_extent=["2022-01-01", "2022-03-01"],
        bands=["B04", "B08"],
        properties={"signature:cloud_fraction": lambda v: v < 0.1},
    ).ndvi()
    series = series.reduce_dimension(dimension="x", reducer="mean").reduce_dimension(dimension="y", reducer="mean")
    result = series.execute()
    assert isinstance(result, dict)
    assert result["dims"] == ["t"]
    assert result["coords"]["t"] == ["2022-01-10T10:30:00Z", "2022-02-09T10:30:00Z"]
    assert np.allclose(result["data"], [scenes.SCENES[0].ndvi, scenes.SCENES[2].ndvi], atol=1e-5)


def test_responses_follow_the_openeo_api_schema(openeo_server: OpenEOServer) -> None:
    root = openeo_server.root
    headers = token(openeo_server)
    for path in ("/", "/conformance", "/file_formats", "/collections", "/processes"):
        validate(http.get(root + path), path)
    validate(http.get(f"{root}/collections/sentinel-2-l2a"), "/collections/{collection_id}")
    well_known = http.get(f"{openeo_server.url}/.well-known/openeo")
    validate(well_known, "/.well-known/openeo")
    assert well_known.json()["versions"][0]["url"].rstrip("/") == root
    validate(http.get(f"{root}/me", headers=headers), "/me")

    created = http.post(f"{root}/jobs", json=ndvi_graph("netCDF") | {"title": "t"}, headers=headers)
    validate(created, "/jobs", "POST")
    job_id = created.headers["OpenEO-Identifier"]
    validate(http.get(f"{root}/jobs", headers=headers), "/jobs")
    validate(http.get(f"{root}/jobs/{job_id}", headers=headers), "/jobs/{job_id}")
    validate(http.get(f"{root}/jobs/{job_id}/estimate", headers=headers), "/jobs/{job_id}/estimate")
    validate(http.get(f"{root}/jobs/{job_id}/results", headers=headers), "/jobs/{job_id}/results")  # 4XX
    validate(http.post(f"{root}/jobs/{job_id}/results", headers=headers), "/jobs/{job_id}/results", "POST")
    job = wait_for(openeo_server, headers, job_id)
    assert job["status"] == "finished"
    validate(http.get(f"{root}/jobs/{job_id}", headers=headers), "/jobs/{job_id}")
    validate(http.get(f"{root}/jobs/{job_id}/logs", headers=headers), "/jobs/{job_id}/logs")
    results = http.get(f"{root}/jobs/{job_id}/results", headers=headers)
    validate(results, "/jobs/{job_id}/results")
    asset = next(iter(results.json()["assets"].values()))
    assert asset["type"] == "application/x-netcdf"
    assert http.get(asset["href"], headers=headers).status_code == 200
    assert http.get(asset["href"]).status_code == 401  # results belong to their owner

    patched = http.patch(f"{root}/jobs/{job_id}", json={"title": "renamed"}, headers=headers)
    validate(patched, "/jobs/{job_id}", "PATCH")
    assert http.get(f"{root}/jobs/{job_id}", headers=headers).json()["title"] == "renamed"

    graph = ndvi_graph()["process"] | {"summary": "mean NDVI"}
    put = http.put(f"{root}/process_graphs/mean_ndvi", json=graph, headers=headers)
    validate(put, "/process_graphs/{process_graph_id}", "PUT")
    validate(http.get(f"{root}/process_graphs", headers=headers), "/process_graphs")
    stored = http.get(f"{root}/process_graphs/mean_ndvi", headers=headers)
    validate(stored, "/process_graphs/{process_graph_id}")
    validate(
        http.delete(f"{root}/process_graphs/mean_ndvi", headers=headers),
        "/process_graphs/{process_graph_id}",
        "DELETE",
    )
    validate(http.post(f"{root}/validation", json=ndvi_graph()), "/validation", "POST")

    deleted = http.delete(f"{root}/jobs/{job_id}", headers=headers)
    validate(deleted, "/jobs/{job_id}", "DELETE")
    gone = http.get(f"{root}/jobs/{job_id}", headers=headers)
    validate(gone, "/jobs/{job_id}")
    assert gone.json()["code"] == "JobNotFound"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (ndvi_graph(process="no_such_process"), 400, "ProcessUnsupported"),
        (ndvi_graph(collection="no-such-collection"), 404, "CollectionNotFound"),
        (ndvi_graph(fmt="PNG8"), 400, "FormatUnsupported"),
        ({"process": {"process_graph": {}}}, 400, "ProcessGraphMissing"),
        ({"process": {"process_graph": {"a": {"process_id": "ndvi", "arguments": {}}}}}, 400, "ProcessGraphInvalid"),
        ({"process": {"process_graph": {"a": "not a node"}}}, 400, "ProcessGraphInvalid"),
        ([1, 2, 3], 400, "BadRequest"),
    ],
)
def test_bad_process_graphs_are_openeo_errors(
    openeo_server: OpenEOServer, body: object, status: int, code: str
) -> None:
    headers = token(openeo_server)
    response = http.post(f"{openeo_server.root}/result", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    validate(response, "/result", "POST")
    problems = http.post(f"{openeo_server.root}/validation", json=body).json()
    if code != "BadRequest":
        assert problems["errors"]
        assert problems["errors"][0]["code"] == code


def test_authentication_budgets_and_costs(openeo_server: OpenEOServer) -> None:
    root = openeo_server.root
    assert http.get(f"{root}/jobs").json()["code"] == "AuthenticationRequired"
    wrong = http.get(f"{root}/credentials/basic", auth=(USER, "wrong-password"))
    assert (wrong.status_code, wrong.json()["code"]) == (403, "CredentialsInvalid")
    bad_token = http.get(f"{root}/me", headers={"Authorization": "Bearer basic//nope"})
    assert (bad_token.status_code, bad_token.json()["code"]) == (403, "TokenInvalid")

    # API keys work like tokens; bob's monthly budget is 0: refused before anything runs
    from snapearth.processing.auth import Auth

    key = Auth(openeo_server.catalog).create_api_key(OTHER)
    bob = {"X-API-Key": key}
    assert http.get(f"{root}/me", headers=bob).json()["user_id"] == OTHER
    refused = http.post(f"{root}/result", json=ndvi_graph("JSON"), headers=bob)
    assert (refused.status_code, refused.json()["code"]) == (402, "PaymentRequired")
    created = http.post(f"{root}/jobs", json=ndvi_graph(), headers=token(openeo_server, OTHER, OTHER_PASSWORD))
    job_id = created.headers["OpenEO-Identifier"]
    started = http.post(f"{root}/jobs/{job_id}/results", headers=bob)
    assert (started.status_code, started.json()["code"]) == (402, "PaymentRequired")
    assert http.get(f"{root}/jobs/{job_id}", headers=bob).json()["status"] == "created"
    # ... and alice cannot see bob's job
    assert http.get(f"{root}/jobs/{job_id}", headers=token(openeo_server)).json()["code"] == "JobNotFound"

    # alice pays per run; costs aggregate per user and month
    alice = token(openeo_server)
    sync = http.post(f"{root}/result", json=ndvi_graph("JSON"), headers=alice)
    assert sync.status_code == 200
    assert float(sync.headers["OpenEO-Costs"]) > 0
    report = http.get(f"{root}/costs", headers=alice).json()
    assert report["costs"][0]["user"] == USER
    assert report["costs"][0]["runs"] == 1
    assert report["costs"][0]["cost"] == pytest.approx(float(sync.headers["OpenEO-Costs"]))
    assert http.get(f"{root}/costs?month=2022-13-01", headers=alice).json()["code"] == "BadRequest"

    # a job whose own budget is below its estimate is refused
    low = http.post(f"{root}/jobs", json=ndvi_graph() | {"budget": 1e-9}, headers=alice)
    low_id = low.headers["OpenEO-Identifier"]
    assert http.post(f"{root}/jobs/{low_id}/results", headers=alice).json()["code"] == "PaymentRequired"

    metrics = http.get(f"{openeo_server.url}/metrics").text
    assert 'snapearth_openeo_jobs{status="created"} 2.0' in metrics
    assert 'snapearth_openeo_cost_total{currency="EUR",kind="sync"}' in metrics


def test_oversized_requests_are_refused(openeo_server: OpenEOServer) -> None:
    headers = token(openeo_server)
    huge: dict[str, Any] = {
        "process": {"process_graph": {"a": {"process_id": "absolute", "arguments": {"x": 1}, "result": True}}}
    }
    huge["pad"] = "x" * (3 * 1024 * 1024)
    response = http.post(f"{openeo_server.root}/result", json=huge, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "BadRequest")
    world = ndvi_graph("JSON")
    world["process"]["process_graph"]["load"]["arguments"]["spatial_extent"] = {
        "west": -10,
        "south": 35,
        "east": 30,
        "north": 60,
    }
    world["process"]["process_graph"]["load"]["arguments"]["temporal_extent"] = None
    response = http.post(f"{openeo_server.root}/result", json=world, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "ProcessGraphComplexity")


def add_broken_collection(catalog, scene_dir_items: list[dict], tmp_path: Path) -> None:
    """A collection whose only item points at a COG that is not there (a server-side data fault)."""
    import copy

    collection = scenes.collection() | {"id": "broken"}
    item = copy.deepcopy(scene_dir_items[0]) | {"id": "broken-item", "collection": "broken"}
    item["assets"]["B04"]["href"] = str(tmp_path / "missing-B04.tif")
    catalog.create_collection(collection)
    catalog.add_items([item])


def test_data_faults_are_contained(openeo_server: OpenEOServer, scene_dir, tmp_path: Path) -> None:
    add_broken_collection(openeo_server.catalog, scene_dir[2], tmp_path)
    headers = token(openeo_server)
    graph = ndvi_graph("JSON", collection="broken")
    graph["process"]["process_graph"]["load"]["arguments"]["temporal_extent"] = ["2022-01-01", "2022-01-20"]
    response = http.post(f"{openeo_server.root}/result", json=graph, headers=headers)
    assert response.status_code == 500
    assert response.json()["code"] == "Internal"
    created = http.post(f"{openeo_server.root}/jobs", json=graph, headers=headers)
    job_id = created.headers["OpenEO-Identifier"]
    http.post(f"{openeo_server.root}/jobs/{job_id}/results", headers=headers)
    job = wait_for(openeo_server, headers, job_id)
    assert job["status"] == "error"
    assert "missing-B04.tif" in job["snapearth:error"]["message"]
    failed = http.get(f"{openeo_server.root}/jobs/{job_id}/results", headers=headers)
    assert failed.status_code == 424
    assert "missing-B04.tif" in failed.json()["message"]
    # the server and the good collection still work
    good = http.post(f"{openeo_server.root}/result", json=ndvi_graph("JSON"), headers=headers)
    assert good.status_code == 200
