"""`snapearth harvest`: EODAG configured by its own file and environment variables, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from snapearth.cli import _register_all, app
from tests.sources.conftest import endpoints
from tests.sources.replay import StacPages, recorded_features, stac_item

_register_all()


def eodag_yml(path: Path, replay) -> Path:
    """What a user writes in eodag.yml: endpoints (here: loopback) and provider priorities."""
    config = endpoints(replay)
    config["earth_search"]["priority"] = 2
    config["cop_dataspace"]["priority"] = 1
    path.write_text(yaml.safe_dump({k: config[k] for k in ("earth_search", "cop_dataspace", "planetary_computer")}))
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_harvest_two_providers_from_the_command_line(catalog, replay, tmp_path):
    replay.route("/oidc", replay.oidc())
    replay.route("/odata/v1/Products", replay.recorded("cop_dataspace_search.json"))
    replay.route(
        "/earth-search/v1/search",
        StacPages(replay, "/earth-search/v1/search", recorded_features("earth_search_search.json")),
    )
    config = eodag_yml(tmp_path / "eodag.yml", replay)
    result = invoke(
        "harvest",
        "--provider", "cop_dataspace",
        "--provider", "earth_search",
        "--collection", "sentinel-2-l1c",
        "--bbox", "-30,0,160,70",
        "--datetime", "2020-01-01/2024-12-31",
        "--eodag-config", str(config),
        "--catalog", catalog.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["priority"] == ["earth_search", "cop_dataspace"]  # from eodag.yml priorities
    assert {p["provider"]: p["results"] for p in report["providers"]} == {"earth_search": 1, "cop_dataspace": 2}
    assert report["inserted"] == 3


def test_place_names_go_through_the_gazetteer(catalog, replay, tmp_path):
    pc_item = stac_item("pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json")
    replay.route("/pc/api/stac/v1/search", StacPages(replay, "/pc/api/stac/v1/search", [pc_item]))
    config = eodag_yml(tmp_path / "eodag.yml", replay)
    result = invoke(
        "harvest", "-p", "planetary_computer", "-c", "sentinel-2-l2a", "--place", "Guadeloupe",
        "--datetime", "2023-11-07", "--eodag-config", str(config), "--catalog", catalog.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (body,) = replay.json_bodies_to("/pc/")
    west, south, east, north = _bounds(body["intersects"])
    assert -62.0 < west < east < -60.8
    assert 15.8 < south < north < 16.6


def _bounds(geometry: dict) -> tuple[float, float, float, float]:
    from shapely.geometry import shape

    return shape(geometry).bounds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope", "-c", "sentinel-2-l2a", "--bbox", "0,0,1,1"], "provider: unknown provider 'nope'"),
        (["-p", "planetary_computer", "-c", "landsat-c2-l2", "--bbox", "0,0,1,1"], "collection: unknown collection"),
        (["-p", "planetary_computer", "-c", "sentinel-2-l2a", "--bbox", "0,0,200,1"], "bbox: east 200 is out of range"),
        (
            ["-p", "planetary_computer", "-c", "sentinel-2-l2a", "--intersects", '{"type": "Polygon"'],
            "intersects: not valid JSON",
        ),
        (
            ["-p", "planetary_computer", "-c", "sentinel-2-l2a", "--bbox", "0,0,1,1", "--datetime", "2024-13-01"],
            "datetime: '2024-13-01'",
        ),
        (
            ["-p", "planetary_computer", "-c", "sentinel-2-l2a", "--bbox", "0,0,1,1", "--place", "Paris"],
            "exactly one of",
        ),
        (
            ["-p", "aws_eos", "-c", "sentinel-2-l1c", "--bbox", "0,0,1,1"],
            "EODAG__AWS_EOS__SEARCH_AUTH__CREDENTIALS__API_KEY",
        ),
    ],
    ids=["provider", "collection", "bbox", "geometry", "datetime", "two-areas", "credentials"],
)
def test_bad_input_is_one_clear_line_and_nothing_is_written(catalog, args, message):
    result = invoke("harvest", *args, "--catalog", catalog.url)
    assert result.exit_code in (1, 2)
    assert message in " ".join(result.output.split())
    assert catalog.list_collections() == []


def test_exit_status_is_1_when_every_provider_failed(catalog, replay, tmp_path):
    replay.route("/pc/api/stac/v1/search", lambda method, path, query, body: (200, {}, b"<html>maintenance</html>"))
    config = eodag_yml(tmp_path / "eodag.yml", replay)
    result = invoke(
        "harvest", "-p", "planetary_computer", "-c", "sentinel-2-l2a", "--bbox", "0,0,1,1",
        "--eodag-config", str(config), "--catalog", catalog.url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "planetary_computer: FAILED" in result.output


def test_provider_settings_from_eodag_environment_variables(catalog, replay, monkeypatch):
    pc_item = stac_item("pc_S2A_MSIL2A_20231107T144731_R139_T20QRF_item.json")
    replay.route("/pc/api/stac/v1/search", StacPages(replay, "/pc/api/stac/v1/search", [pc_item]))
    monkeypatch.setenv("EODAG__PLANETARY_COMPUTER__SEARCH__API_ENDPOINT", f"{replay.url}/pc/api/stac/v1/search")
    args = ["harvest", "-p", "planetary_computer", "-c", "sentinel-2-l2a", "--bbox", "-62,15,-60,17"]
    result = invoke(*args, "--datetime", "2023-11-01/2023-11-30", "--catalog", catalog.url)
    assert result.exit_code == 0, result.output
    assert len(replay.requests_to("/pc/")) == 1
    again = invoke(*args, "--datetime", "2023-11-01/2023-11-30", "--catalog", catalog.url, "--full")
    assert again.exit_code == 0, again.output
    assert len(replay.requests_to("/pc/")) == 2  # --full ignores the state
