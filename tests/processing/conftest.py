"""Fixtures of the processing tests: small real scenes in a real SQLite catalog, a real Dask scheduler, the real
SnapEarth app (``create_app``) served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from snapearth.catalog import Catalog, open_catalog
from snapearth.config import Settings
from tests.fixtures.server import LiveServer
from tests.processing import scenes

USER, PASSWORD = "alice", "alice-password-1"
OTHER, OTHER_PASSWORD = "bob", "bob-password-12"


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """A real in-process Dask cluster; the server reaches it by address (``SNAPEARTH_DASK_SCHEDULER``)."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0")
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[dict]]:
    folder = tmp_path_factory.mktemp("scenes")
    collection, items = scenes.build(folder)
    return folder, collection, items


def make_catalog(path: Path, scene_dir: tuple[Path, dict, list[dict]]) -> Catalog:
    _, collection, items = scene_dir
    catalog = open_catalog(f"sqlite:///{path}")
    catalog.create_collection(collection, exist_ok=True)
    catalog.add_items(items, mode="upsert")
    return catalog


@pytest.fixture
def scene_catalog(tmp_path: Path, scene_dir: tuple[Path, dict, list[dict]]) -> Iterator[Catalog]:
    catalog = make_catalog(tmp_path / "catalog.db", scene_dir)
    yield catalog
    catalog.close()


@dataclass
class OpenEOServer:
    url: str
    root: str
    catalog: Catalog
    data: Path


def settings_for(data: Path, scheduler: str) -> Settings:
    return Settings(data=data, dask_scheduler=scheduler, dask_workers=1, log_level="WARNING")


def add_users(catalog: Catalog) -> None:
    from snapearth.processing.auth import Auth

    auth = Auth(catalog)
    auth.add_user(USER, PASSWORD, name="Alice")
    auth.add_user(OTHER, OTHER_PASSWORD, monthly_budget=0.0)


@pytest.fixture
def openeo_server(tmp_path: Path, scene_catalog: Catalog, dask_scheduler: str) -> Iterator[OpenEOServer]:
    from snapearth.api.app import create_app

    add_users(scene_catalog)
    data = tmp_path / "data"
    app = create_app(settings_for(data, dask_scheduler), catalog=scene_catalog)
    with LiveServer(app, start_timeout=60) as server:
        yield OpenEOServer(server.url, f"{server.url}/openeo/1.2", scene_catalog, data)
