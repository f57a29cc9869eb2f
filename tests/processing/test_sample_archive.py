"""openEO over the real sample archive, enriched by EarthSignature: signature properties as filters, signature
cloud masks, scale/offset across processing baseline 04.00 (Chamonix straddles 2022-01-25)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from snapearth.catalog import SearchRequest, open_catalog
from snapearth.processing import execute
from snapearth.processing.metering import Usage
from tests.fixtures.enriched import EnrichedArchive


def chamonix_graph(masked: bool, max_cloud: float) -> dict:
    nodes: dict = {
        "load": {
            "process_id": "load_collection",
            "arguments": {
                "id": "sentinel-2-l2a",
                "spatial_extent": {"west": 6.85, "south": 45.91, "east": 6.89, "north": 45.94},
                "temporal_extent": ["2022-01-01", "2022-03-01"],
                "bands": ["B04", "B08"],
                "properties": {
                    "signature:cloud_fraction": {
                        "process_graph": {
                            "c": {
                                "process_id": "lt",
                                "arguments": {"x": {"from_parameter": "value"}, "y": max_cloud},
                                "result": True,
                            }
                        }
                    }
                },
            },
        },
    }
    source = "load"
    if masked:
        nodes["mask"] = {
            "process_id": "mask_clouds",
            "arguments": {"data": {"from_node": "load"}, "method": "signature"},
        }
        source = "mask"
    nodes["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": source}}, "result": True}
    return {"process": {"process_graph": nodes}}


@pytest.fixture
def enriched_copy(enriched_archive: EnrichedArchive, tmp_path: Path):
    """A private copy of the enriched catalog database (jobs and results must not leak into other tests)."""
    db = Path(enriched_archive.catalog_url.removeprefix("sqlite:///"))
    shutil.copy(db, tmp_path / "catalog.db")
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


def test_signature_filters_and_masks_on_the_sample_archive(enriched_copy, dask_scheduler: str, tmp_path: Path) -> None:
    from distributed import Client

    items = list(
        enriched_copy.iter_items(
            SearchRequest(collections=["sentinel-2-l2a"], datetime="2022-01-01T00:00:00Z/2022-03-01T00:00:00Z")
        )
    )
    fractions = {i["properties"]["datetime"][:10]: i["properties"]["signature:cloud_fraction"] for i in items}
    wanted = sorted(day for day, fraction in fractions.items() if fraction < 0.8)
    assert 0 < len(wanted) < len(fractions)

    client = Client(dask_scheduler, set_as_default=False)
    try:
        raw = execute.run(
            execute.evaluate(chamonix_graph(False, 0.8), enriched_copy, default_format="JSON"), client, tmp_path / "raw"
        )
        masked = execute.run(
            execute.evaluate(chamonix_graph(True, 0.8), enriched_copy, default_format="JSON"),
            client,
            tmp_path / "masked",
        )
    finally:
        client.close()
    import json

    raw_doc = json.loads(raw.files[0].path.read_text())
    masked_doc = json.loads(masked.files[0].path.read_text())
    assert [t[:10] for t in raw_doc["coords"]["t"]] == wanted
    raw_values = np.array(raw_doc["data"], dtype=float)
    masked_values = np.array(masked_doc["data"], dtype=float)
    assert np.nanmin(raw_values) >= -1
    assert np.nanmax(raw_values) <= 1
    for index, day in enumerate(wanted):
        valid = np.isfinite(raw_values[index])
        newly_masked = valid & ~np.isfinite(masked_values[index])
        # the signature cloud fraction counts cloud pixels; the mask also removes their shadows
        assert newly_masked.sum() / valid.sum() >= fractions[day] - 0.02, day
        kept = np.isfinite(masked_values[index])
        assert np.allclose(masked_values[index][kept], raw_values[index][kept])
    assert isinstance(masked.usage, Usage)
    assert masked.usage.bytes_read > raw.usage.bytes_read  # the masks were read too
