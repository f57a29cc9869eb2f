"""The benchmark compares like with like: its openEO graph and its hand-written xarray version agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from benchmarks.openeo import direct, ndvi_monthly_graph
from snapearth.catalog import Catalog
from snapearth.processing import execute
from tests.processing import scenes


def test_openeo_graph_and_direct_xarray_agree(scene_catalog: Catalog, dask_scheduler: str, tmp_path: Path) -> None:
    from distributed import Client

    bbox = scenes.bbox_4326()
    client = Client(dask_scheduler, set_as_default=False)
    try:
        evaluation = execute.evaluate(ndvi_monthly_graph(bbox, "2022-01-01", "2022-03-01"), scene_catalog)
        outcome = execute.run(evaluation, client, tmp_path / "openeo")
        by_hand = direct(scene_catalog, client, bbox, "2022-01-01", "2022-03-01", tmp_path)
    finally:
        client.close()
    with xr.open_dataset(outcome.files[0].path) as a, xr.open_dataset(by_hand) as b:
        ours = a[next(iter(a.data_vars))].values
        theirs = b["ndvi"].values
    assert ours.shape == theirs.shape == (2, scenes.SIZE, scenes.SIZE)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    january = np.mean([s.ndvi for s in scenes.SCENES[:2]])
    assert np.allclose(ours[0, :-1], january, atol=1e-5)
