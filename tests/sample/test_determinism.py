"""Same scenario and seed -> byte-identical items, whatever the worker count; another seed -> other products."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from snapearth.cli import _register_all, app
from snapearth.sources.sample.build import build_archive
from snapearth.sources.sample.scenario import scenario_text


def _item_bytes(root: Path) -> dict[str, bytes]:
    files = [*sorted(root.glob("sentinel-*/**/*.json")), root / "catalog.json", root / "truth" / "manifest.json"]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_rebuild_with_two_workers_is_byte_identical(sample_archive: Path, tmp_path: Path) -> None:
    _register_all()
    out = tmp_path / "again"
    result = CliRunner().invoke(
        app, ["sample", "build", "--scenario", "test", "--out", str(out), "--workers", "2", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "9 Sentinel-2 L2A + 8 Sentinel-1 GRD products" in result.output
    first, second = _item_bytes(sample_archive), _item_bytes(out)
    assert len(first) > 20
    assert first.keys() == second.keys()
    for name, data in first.items():
        assert data == second[name], name
    # rebuilding over an existing archive replaces it
    result = CliRunner().invoke(
        app, ["sample", "build", "--scenario", "test", "--out", str(out), "--workers", "1", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert _item_bytes(out) == first


def test_another_seed_gives_other_products(sample_archive: Path, tmp_path: Path) -> None:
    text, _ = scenario_text("test")
    build_archive(text.replace("seed: 7", "seed: 8"), tmp_path / "other", source="test.yaml")
    first, second = _item_bytes(sample_archive), _item_bytes(tmp_path / "other")
    assert first.keys() == second.keys()  # same places and dates: same ids
    s2 = [k for k in first if k.startswith("sentinel-2-l2a/S2")]
    assert sum(first[k] != second[k] for k in s2) > len(s2) // 2  # other clouds: other cloud cover, SCL shares
    assert first["truth/manifest.json"] != second["truth/manifest.json"]


def test_cli_errors(tmp_path: Path) -> None:
    _register_all()
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario_text("test")[0].replace("lat: 45.9237", "lat: 145.9237"))
    result = CliRunner().invoke(app, ["sample", "check", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml line 15: places[0].lat:" in result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["sample", "build", "--scenario", "test", "--out", str(tmp_path / "full"), "-q"])
    assert result.exit_code == 2
    assert "out:" in result.output
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    result = CliRunner().invoke(app, ["sample", "check", "test"])
    assert result.exit_code == 0
    assert "9 Sentinel-2 + 8 Sentinel-1 products" in result.output


def test_items_command_writes_metadata_only(tmp_path: Path) -> None:
    _register_all()
    out = tmp_path / "items.ndjson"
    result = CliRunner().invoke(app, ["sample", "items", "--count", "3", "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == 3
    assert {i["collection"] for i in items} == {"sentinel-2-l2a"}
    result = CliRunner().invoke(app, ["sample", "items", "--count", "-1", "--out", str(out)])
    assert result.exit_code == 2
    assert "count:" in result.output


def test_places_are_independent(sample_archive: Path, tmp_path: Path) -> None:
    """Removing a place (and its event) leaves the other place's products byte for byte the same."""
    text, _ = scenario_text("test")
    head, rest = text.split("  - id: valencia\n", 1)
    events = rest.split("events:\n", 1)[1].split("  - id: valencia-flood-2024\n")[0]
    build_archive(f"{head}events:\n{events}", tmp_path / "alone", source="alone.yaml")
    alone = {k: v for k, v in _item_bytes(tmp_path / "alone").items() if k.count("/") == 2}  # the items
    full = _item_bytes(sample_archive)
    assert len(alone) >= 8
    assert all(full[k] == v for k, v in alone.items())
