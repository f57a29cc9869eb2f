"""Malformed arguments anywhere in a graph are openEO errors with a 4xx status, raised before anything runs."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from snapearth.catalog import Catalog
from snapearth.processing import execute
from snapearth.processing.errors import OpenEOError
from tests.processing.conftest import make_catalog
from tests.processing.test_openeo_api import ndvi_graph

BASE = ndvi_graph("JSON")
PROPERTY_WITHOUT_VALUE = {
    "x": {"process_graph": {"a": {"process_id": "lte", "arguments": {"x": 1, "y": 2}, "result": True}}}
}
CASES: list[tuple[str, str, Any, str]] = [
    ("load", "spatial_extent", "abc", "spatial_extent"),
    ("load", "spatial_extent", {"west": 10, "south": 5}, "spatial_extent"),
    ("load", "spatial_extent", {"west": 10, "south": 5, "east": 1, "north": 6}, "west 10.0 must be < east"),
    ("load", "temporal_extent", ["yesterday", None], "RFC 3339"),
    ("load", "temporal_extent", ["2022-03-01", "2022-01-01"], "must be after start"),
    ("load", "bands", 5, "bands"),
    ("load", "bands", ["B99"], "B99"),
    ("load", "id", 7, "does not exist"),
    ("load", "properties", "x", "properties"),
    ("load", "properties", PROPERTY_WITHOUT_VALUE, "properties.x"),
    ("mean", "dimension", "z", "(z) not found"),
    ("mean", "reducer", "mean", "not callable"),
    ("ndvi", "data", {"from_node": "nowhere"}, "nowhere"),
    ("ndvi", "nir", "B04x", "NIR band"),
    ("save", "format", 5, "format"),
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, scene_dir: tuple) -> Iterator[Catalog]:
    opened = make_catalog(tmp_path_factory.mktemp("graph-errors") / "catalog.db", scene_dir)
    yield opened
    opened.close()


@pytest.mark.parametrize(("node", "argument", "value", "reason"), CASES)
def test_malformed_arguments(catalog: Catalog, node: str, argument: str, value: Any, reason: str) -> None:
    graph = copy.deepcopy(BASE)
    graph["process"]["process_graph"][node]["arguments"][argument] = value
    with pytest.raises(OpenEOError) as raised:
        execute.evaluate(graph, catalog)
    assert 400 <= raised.value.status < 500
    assert reason in raised.value.message
