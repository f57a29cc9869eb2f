"""Scenario files: places, period, sensors and scripted events of a sample archive (YAML, validated by pydantic).

A bad file fails with an ``InvalidInputError`` whose message names the file, the line and the field, e.g.
``demo.yaml line 14: places[2].lat: Input should be less than or equal to 90``.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from snapearth.errors import InvalidInputError, NotFoundError

Sensor = Literal["sentinel-2-l2a", "sentinel-1-grd"]
Landscape = Literal[
    "mediterranean_coast",
    "mediterranean_hills",
    "alpine",
    "cropland_plain",
    "sahel",
    "river_plain",
    "tropical_forest",
    "city_fields",
]
EventType = Literal["flood", "wildfire", "snow", "drought", "deforestation", "harvest"]
Crop = Literal["wheat", "maize", "rapeseed", "sunflower", "millet", "rice"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Place(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    name: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-80, le=84, description="inside the UTM/MGRS latitude bands")
    landscape: Landscape
    elevation_m: float = Field(default=100.0, ge=-100, le=5000, description="typical ground elevation")
    period: Period
    size_km: float | None = Field(default=None, gt=0, le=50)
    resolution_m: float | None = Field(default=None, ge=10, le=200)


class Event(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    type: EventType
    place: str
    start: dt.date
    end: dt.date
    peak: dt.date | None = Field(default=None, description="flood: date of the highest water")
    lon: float | None = Field(default=None, ge=-180, le=180, description="centre of the affected area")
    lat: float | None = Field(default=None, ge=-90, le=90)
    radius_km: float = Field(default=3.0, gt=0, le=50)
    coverage: float = Field(
        default=0.6, gt=0, le=1, description="flood: share of the circle's land under water at peak"
    )
    severity: float = Field(default=0.6, gt=0, le=1, description="drought: vegetation deficit (0..1)")
    crop: Crop | None = Field(default=None, description="harvest: which crop is harvested")
    snowline_m: float = Field(default=900.0, ge=0, le=5000, description="snow: lowest snow line of the season")
    description: str = ""

    @model_validator(mode="after")
    def _dates(self) -> Event:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.peak is not None and not self.start <= self.peak <= self.end:
            raise ValueError(f"peak {self.peak} is outside start..end")
        if self.type == "harvest" and self.crop is None:
            raise ValueError("a harvest event needs 'crop'")
        return self


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    seed: int = Field(default=42, ge=0)
    sensors: list[Sensor] = Field(default=["sentinel-2-l2a", "sentinel-1-grd"], min_length=1)
    size_km: float = Field(default=10.24, gt=0, le=50, description="side of each product, km")
    resolution_m: float = Field(default=40.0, ge=10, le=200, description="pixel of the 10 m bands; 20 m bands x2")
    places: list[Place] = Field(min_length=1)
    events: list[Event] = Field(default_factory=list)

    def place(self, place_id: str) -> Place:
        for p in self.places:
            if p.id == place_id:
                return p
        raise NotFoundError(f"place {place_id!r} is not in scenario {self.name!r}", field="place")

    def size_of(self, place: Place) -> float:
        return place.size_km if place.size_km is not None else self.size_km

    def resolution_of(self, place: Place) -> float:
        return place.resolution_m if place.resolution_m is not None else self.resolution_m

    def events_of(self, place_id: str) -> list[Event]:
        return [e for e in self.events if e.place == place_id]


class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text, so pydantic checks them and the line is known."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _node_at(node: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (to report its line)."""
    best = node
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if nxt is None:
                nxt = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node = best = nxt
    return best


def _field_name(loc: tuple[int | str, ...]) -> str:
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "scenario"


def _fail(source: str, root: yaml.Node | None, loc: tuple[int | str, ...], reason: str) -> InvalidInputError:
    node = _node_at(root, loc)
    line = node.start_mark.line + 1 if node is not None else 1
    field = _field_name(loc)
    return InvalidInputError(f"{source} line {line}: {field}: {reason}", field=field)


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """Validate a scenario's YAML text; errors name ``source``, the line and the field."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        data: Any = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise InvalidInputError(f"{source} line {line}: not valid YAML: {exc.problem}", field="scenario") from exc
    if not isinstance(data, dict):
        raise _fail(source, root, (), "expected a mapping with name, places, events")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(k for k in err["loc"] if not (isinstance(k, str) and k.startswith(("function-", "literal["))))
        raise _fail(source, root, loc, err["msg"].removeprefix("Value error, ")) from exc
    ids = [p.id for p in scenario.places]
    for i, pid in enumerate(ids):
        if pid in ids[:i]:
            raise _fail(source, root, ("places", i, "id"), f"duplicate place id {pid!r}")
    seen: set[str] = set()
    for i, ev in enumerate(scenario.events):
        if ev.id in seen:
            raise _fail(source, root, ("events", i, "id"), f"duplicate event id {ev.id!r}")
        seen.add(ev.id)
        if ev.place not in ids:
            raise _fail(source, root, ("events", i, "place"), f"unknown place {ev.place!r} (known: {', '.join(ids)})")
        period = scenario.place(ev.place).period
        if ev.end < period.start or ev.start > period.end:
            raise _fail(source, root, ("events", i, "start"), f"event is outside the period of place {ev.place!r}")
    return scenario


def builtin_scenarios() -> list[str]:
    folder = resources.files("snapearth.sources.sample") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def scenario_text(name_or_path: str | Path) -> tuple[str, str]:
    """(YAML text, source name for messages) of a built-in scenario name (``demo``, ``test``) or a YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise NotFoundError(f"scenario: file {path} does not exist", field="scenario")
        return path.read_text(encoding="utf-8"), path.name
    name = str(name_or_path)
    resource = resources.files("snapearth.sources.sample") / "scenarios" / f"{name}.yaml"
    if not resource.is_file():
        known = ", ".join(builtin_scenarios())
        raise InvalidInputError(
            f"scenario: unknown scenario {name!r} (built-in: {known}, or a .yaml path)", field="scenario"
        )
    return resource.read_text(encoding="utf-8"), f"{name}.yaml"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name or a YAML file, validated."""
    text, source = scenario_text(name_or_path)
    return parse_scenario(text, source)
