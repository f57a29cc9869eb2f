"""The ``catalog`` fixtures, parametrized over both backends: one behaviour suite runs unchanged on each.

- ``catalog``: an empty catalog holding the test collections (a fresh database per test);
- ``loaded``: a catalog holding every test item, shared by the read-only tests of a module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapearth.catalog import Catalog, open_catalog
from tests.catalog.items import all_items, collections

BACKENDS = ["sqlite", "pgstac"]


def _open(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[Catalog]:
    if backend == "sqlite":
        catalog = open_catalog(f"sqlite:///{folder / 'catalog.db'}")
        yield catalog
        catalog.close()
        return
    server = request.getfixturevalue("pg_server")
    url = server.new_database()
    catalog = open_catalog(url)
    yield catalog
    catalog.close()
    server.drop_database(url.rsplit("/", 1)[1])


def _with_collections(catalog: Catalog) -> Catalog:
    for collection in collections():
        catalog.create_collection(collection)
    return catalog


@pytest.fixture(params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    for opened in _open(request.param, request, tmp_path):
        yield _with_collections(opened)


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    for opened in _open(request.param, request, tmp_path_factory.mktemp("loaded")):
        _with_collections(opened)
        report = opened.add_items(all_items(), batch_size=7)
        assert not report.refused, report.refused
        yield opened


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of the ``catalog`` or ``loaded`` fixture in use."""
    for name in ("catalog", "loaded"):
        if name in request.fixturenames:
            return str(request.node.callspec.params[name])
    raise LookupError("no catalog fixture in use")
