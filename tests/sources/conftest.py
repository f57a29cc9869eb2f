"""Fixtures for the source tests: a loopback replay server, EODAG pointed at it, a fresh SQLite catalog."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from snapearth.catalog import Catalog, open_catalog
from snapearth.sources.eodag_source import EodagGateway, RetryPolicy
from tests.sources.replay import ReplayServer


class Sleeps(list[float]):
    """Records the backoff delays instead of sleeping (the delays themselves are asserted)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def eodag_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EODAG writes its config dir on start: keep it in the test's tmp dir; no inherited EODAG__ settings."""
    home = tmp_path / "eodag"
    monkeypatch.setenv("EODAG_CFG_DIR", str(home))
    for name in list(os.environ):
        if name.startswith("EODAG__") or name == "EODAG_CFG_FILE":
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    opened = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield opened
    opened.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def endpoints(server: ReplayServer) -> dict[str, dict[str, Any]]:
    """EODAG provider settings sending each provider to its replay route (what eodag.yml would hold)."""
    return {
        "cop_dataspace": {
            "search": {"api_endpoint": f"{server.url}/odata/v1/Products"},
            "auth": {"oidc_config_url": f"{server.url}/oidc/.well-known/openid-configuration"},
        },
        "earth_search": {"search": {"api_endpoint": f"{server.url}/earth-search/v1/search"}},
        "geodes": {"search": {"api_endpoint": f"{server.url}/geodes/api/stac/search"}},
        "sara": {"search": {"api_endpoint": f"{server.url}/sara/{{_collection}}/search.json"}},
        "planetary_computer": {"search": {"api_endpoint": f"{server.url}/pc/api/stac/v1/search"}},
        "aws_eos": {"search": {"api_endpoint": f"{server.url}/eos/{{_collection}}"}},
    }


@pytest.fixture
def make_gateway(replay: ReplayServer, eodag_home: Path, sleeps: Sleeps) -> Callable[..., EodagGateway]:
    def make(*providers: str, page_size: int = 100, extra: dict[str, Any] | None = None) -> EodagGateway:
        overrides = {name: conf for name, conf in endpoints(replay).items() if name in providers}
        for name, conf in (extra or {}).items():
            base = overrides.setdefault(name, {})
            for key, value in conf.items():
                base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        return EodagGateway(
            cfg_dir=eodag_home,
            providers=tuple(providers),
            provider_overrides=overrides,
            retry=RetryPolicy(attempts=3, base_delay=0.5, sleep=sleeps),
            page_size=page_size,
        )

    return make
