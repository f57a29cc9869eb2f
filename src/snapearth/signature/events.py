"""Events across time: per place, each new observation against its predecessors and its seasonal baseline.

A *place* is an MGRS tile for Sentinel-2 (``grid:code``) and a relative orbit footprint for Sentinel-1. The
observations of a place are read from their signature assets onto one place grid (at most ``max_side``
pixels a side, so memory is bounded whatever the tile size), in time order, keeping per-pixel *reference*
composites: the last clear value of NDVI, NBR, water and snow (clouds never overwrite them).

Pixel rules, each observation against the reference:
- flood: water now, land in the reference (optical), or VV water now and not in the previous acquisition of
  the same orbit with a backscatter drop >= 3 dB (radar); a pixel that was water in the same season of
  another year is seasonal water (rice, wetlands), not a flood;
- snow: snow now, not snow in the reference;
- wildfire: the char signature now (NBR < -0.1, dark NIR) and dNBR = NBR_ref - NBR >= 0.1; severity by the
  mean dNBR, Key & Benson classes (0.10 low, 0.27 moderate-low, 0.44 moderate-high, 0.66 high);
- harvest / deforestation: NDVI falls from >= 0.5 to < 0.35 (not water, snow or burned). A pixel whose record
  shows bare soil (NDVI < 0.3) earlier is cultivated: harvest; one green in every earlier observation
  (at least two) is a standing forest: deforestation;
- drought: VCI = 100 (NDVI - min) / (max - min) < 35 over vegetated pixels, min/max per pixel over the
  observations of other years within 45 days of the same day of year (Kogan); needs two other years.

Masks are cleaned (3x3 opening, components smaller than ``min_pixels`` dropped). Per type, a detection that
overlaps an open event extends it; an open event whose area is seen clear without it is closed. State
events (flood, snow, drought) last while the condition holds; change events (wildfire, harvest,
deforestation) last while they grow. Optical and radar floods that overlap in space and time are merged
into one event with both evidences. Event ids are derived from place, type and start, so re-running on the
same catalog produces the same events (and stale ones are removed).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import transform as shapely_transform

from snapearth.catalog.base import parse_rfc3339
from snapearth.signature.bands import SignatureInputError, asset_href
from snapearth.signature.compute import PREFIX

Item = dict[str, Any]
EVENTS_COLLECTION = "events"
STATE_EVENTS = ("flood", "snow", "drought")
CHANGE_EVENTS = ("wildfire", "harvest", "deforestation")
EVENT_TYPES = (*STATE_EVENTS, *CHANGE_EVENTS)
RADAR_MERGE_DAYS = 12
CHANGE_GAP_DAYS = 30
NEIGHBOURHOOD_M = 2000.0
_MAX_VALUES = 100_000
SEASON_DAYS = 45
_DNBR_CLASSES = ((0.66, "high"), (0.44, "moderate-high"), (0.27, "moderate-low"), (0.10, "low"))


@dataclass(frozen=True)
class PlaceGrid:
    crs: Any
    transform: Affine
    height: int
    width: int

    @property
    def pixel_km2(self) -> float:
        return abs(self.transform.a * self.transform.e) / 1e6


@dataclass
class Observation:
    item: Item
    when: datetime
    kind: str  # optical | radar

    @property
    def item_id(self) -> str:
        return str(self.item["id"])

    @property
    def collection(self) -> str:
        return str(self.item.get("collection", ""))


def place_key(item: Item) -> str | None:
    """The place of an item: its MGRS tile (S2) or relative orbit + rounded footprint centre (S1)."""
    props = item.get("properties", {})
    if "signature-cloud" in item.get("assets", {}) or "signature-indices" in item.get("assets", {}):
        tile = props.get("grid:code") or props.get("s2:mgrs_tile") or props.get("mgrs:grid_square")
        if tile:
            return f"optical:{str(tile).removeprefix('MGRS-')}"
        return f"optical:{_centre_key(item)}"
    if "signature-water" in item.get("assets", {}):
        orbit = props.get("sat:relative_orbit")
        return f"radar:R{orbit}:{_centre_key(item)}"
    return None


def _centre_key(item: Item) -> str:
    bbox = item.get("bbox") or [0, 0, 0, 0]
    return f"{round((bbox[0] + bbox[2]) / 2, 1)}_{round((bbox[1] + bbox[3]) / 2, 1)}"


def observations_by_place(items: Iterable[Item]) -> dict[str, list[Observation]]:
    places: dict[str, list[Observation]] = defaultdict(list)
    for item in items:
        key = place_key(item)
        if key is None or not item.get("properties", {}).get(PREFIX + "version"):
            continue
        when = parse_rfc3339(str(item["properties"]["datetime"]))
        places[key].append(Observation(item, when, key.split(":", 1)[0]))
    for obs in places.values():
        obs.sort(key=lambda o: (o.when, o.item_id))
    return dict(places)


# -- reading observations onto the place grid -----------------------------------------------------------------
def place_grid(obs: Observation, max_side: int) -> PlaceGrid:
    key = "signature-cloud" if obs.kind == "optical" else "signature-water"
    with rasterio.open(asset_href(obs.item, key)) as ds:
        factor = max(1.0, max(ds.width, ds.height) / max_side)
        width, height = max(1, round(ds.width / factor)), max(1, round(ds.height / factor))
        transform = ds.transform * Affine.scale(ds.width / width, ds.height / height)
        return PlaceGrid(ds.crs, transform, height, width)


def _read(item: Item, key: str, grid: PlaceGrid, *, band: int | list[int] = 1) -> np.ndarray:
    href = asset_href(item, key)
    try:
        with (
            rasterio.open(href) as src,
            WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=Resampling.nearest,
            ) as vrt,
        ):
            data: np.ndarray = vrt.read(band)
            return data
    except rasterio.errors.RasterioError as exc:
        raise SignatureInputError(f"assets.{key}: unreadable ({exc})", field=f"assets.{key}") from exc


@dataclass
class OpticalState:
    clear: np.ndarray
    water: np.ndarray
    snow: np.ndarray
    burn: np.ndarray
    ndvi: np.ndarray
    nbr: np.ndarray


def read_optical(item: Item, grid: PlaceGrid) -> OpticalState:
    cloud = _read(item, "signature-cloud", grid)
    indices = _read(item, "signature-indices", grid, band=[1, 2])
    clear = (cloud == 0) & (indices[0] != -32768)
    return OpticalState(
        clear=clear,
        water=(_read(item, "signature-water", grid) == 1) & clear,
        snow=(_read(item, "signature-snow", grid) == 1) & clear,
        burn=(_read(item, "signature-burn", grid) == 1) & clear,
        ndvi=np.where(clear, indices[0] / 10000.0, np.nan).astype(np.float32),
        nbr=np.where(clear, indices[1] / 10000.0, np.nan).astype(np.float32),
    )


@dataclass
class RadarState:
    valid: np.ndarray
    water: np.ndarray
    vv: np.ndarray


def read_radar(item: Item, grid: PlaceGrid) -> RadarState:
    water = _read(item, "signature-water", grid)
    vv_dn = _read(item, "vv", grid).astype(np.float32)
    band = (item["assets"]["vv"].get("raster:bands") or [{}])[0]
    nodata = band.get("nodata")
    valid = water != 255
    if nodata is not None:
        valid &= vv_dn != float(nodata)
    vv = np.where(valid, vv_dn * float(band.get("scale", 1.0)) + float(band.get("offset", 0.0)), np.nan)
    return RadarState(valid=valid, water=(water == 1) & valid, vv=vv.astype(np.float32))


# -- events -----------------------------------------------------------------------------------------------
@dataclass
class Event:
    type: str
    place: str
    grid: PlaceGrid
    mask: np.ndarray
    start: Observation
    last: Observation
    before: Observation | None
    after: list[Observation] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # per-pixel measure (dNBR, VCI, NDVI drop...)
    evidence: set[str] = field(default_factory=set)
    open: bool = True
    geometry: Any = None
    area_km2: float | None = None  # set when merged events' areas come from the union geometry
    merged_places: set[str] = field(default_factory=set)

    @property
    def pixels(self) -> int:
        return int(self.mask.sum())


def clean(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """3x3 opening (isolated pixels are noise), then components smaller than ``min_pixels`` removed."""
    if not mask.any():
        return mask
    opened = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool)) if min(mask.shape) >= 8 else mask
    labels, count = ndimage.label(opened)
    if count == 0:
        return opened
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    out: np.ndarray = keep[labels]
    return out


class PlaceTracker:
    """Walks the observations of one place in time order, opening, extending and closing events."""

    def __init__(self, place: str, grid: PlaceGrid, *, min_pixels: int) -> None:
        self.place = place
        self.grid = grid
        self.min_pixels = min_pixels
        self.events: list[Event] = []
        self.open: dict[str, list[Event]] = defaultdict(list)
        shape_ = (grid.height, grid.width)
        self.ref_ndvi = np.full(shape_, np.nan, np.float32)
        self.ref_nbr = np.full(shape_, np.nan, np.float32)
        self.ref_water = np.zeros(shape_, bool)
        self.ref_snow = np.zeros(shape_, bool)
        self.ref_known = np.zeros(shape_, bool)
        self.ever_bare = np.zeros(shape_, bool)
        self.green_count = np.zeros(shape_, np.int16)
        self.history: list[tuple[datetime, np.ndarray, np.ndarray]] = []  # (when, ndvi, water) of optical obs
        self.previous: Observation | None = None
        self.radar_ref: RadarState | None = None
        self.radar_previous: Observation | None = None
        self.reach_px = max(1.0, NEIGHBOURHOOD_M / abs(grid.transform.a))
        self.updates: dict[str, dict[str, Any]] = {}  # item id -> temporal properties

    # optical ------------------------------------------------------------------------------------------------
    def add_optical(self, obs: Observation, s: OpticalState) -> None:
        if s.clear.sum() < self.min_pixels:
            return  # too cloudy to say anything; the references stay as they are
        both = s.clear & self.ref_known
        seasonal_water = self._seasonal(obs.when, lambda h: h[2])
        flood = s.water & both & ~self.ref_water & ~self.ref_snow & ~seasonal_water
        snow = s.snow & both & ~self.ref_snow
        dnbr = self.ref_nbr - s.nbr
        fire = s.burn & both & (dnbr >= 0.10)
        drop = both & (self.ref_ndvi >= 0.5) & (s.ndvi < 0.35) & ~s.water & ~s.snow & ~s.burn
        harvest = drop & self.ever_bare
        deforestation = drop & ~self.ever_bare & (self.green_count >= 2)
        vci = self._vci(obs.when, s)
        drought = (vci < 35) & s.clear if vci is not None else np.zeros_like(s.clear)
        measures: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "flood": (flood, np.ones_like(s.ndvi)),
            "snow": (snow, np.ones_like(s.ndvi)),
            "wildfire": (fire, dnbr),
            "harvest": (harvest, self.ref_ndvi - s.ndvi),
            "deforestation": (deforestation, self.ref_ndvi - s.ndvi),
            "drought": (drought, vci if vci is not None else np.zeros_like(s.ndvi)),
        }
        for kind, (mask, values) in measures.items():
            self._track(kind, clean(mask, self.min_pixels), values, obs, s.clear, "optical")
        # temporal properties of this image
        props: dict[str, Any] = {}
        if both.sum() >= self.min_pixels:
            props[PREFIX + "ndvi_change"] = round(float(np.nanmean((s.ndvi - self.ref_ndvi)[both])), 4)
            props[PREFIX + "dnbr_mean"] = round(float(np.nanmean(dnbr[both])), 4)
            if self.previous is not None:
                props[PREFIX + "previous"] = self.previous.item_id
        if vci is not None and np.isfinite(vci).any():
            props[PREFIX + "vci_mean"] = round(float(np.nanmean(vci)), 2)
        self.updates[obs.item_id] = props
        # references: clear pixels update, except where a state event holds (keep the normal state)
        in_flood = self._open_mask("flood")
        in_snow = self._open_mask("snow")
        upd = s.clear
        self.ref_ndvi = np.where(upd & ~in_flood & ~in_snow, s.ndvi, self.ref_ndvi)
        self.ref_nbr = np.where(upd & ~in_flood & ~in_snow, s.nbr, self.ref_nbr)
        self.ref_water = np.where(upd & ~in_flood, s.water, self.ref_water)
        self.ref_snow = np.where(upd & ~in_snow, s.snow, self.ref_snow)
        self.ref_known |= upd
        self.ever_bare |= upd & (s.ndvi < 0.3) & ~s.water & ~s.snow
        self.green_count = np.where(upd & (s.ndvi >= 0.5), self.green_count + 1, self.green_count).astype(np.int16)
        self.history.append((obs.when, np.where(s.clear, s.ndvi, np.nan).astype(np.float16), s.water.copy()))
        self.previous = obs

    def _seasonal(self, when: datetime, pick: Any) -> np.ndarray:
        """Pixels true in ``pick`` for some observation of another year within SEASON_DAYS of the day of year."""
        out = np.zeros((self.grid.height, self.grid.width), bool)
        for h in self.history:
            if h[0].year != when.year and _doy_distance(h[0], when) <= SEASON_DAYS:
                out |= pick(h)
        return out

    def _vci(self, when: datetime, s: OpticalState) -> np.ndarray | None:
        same_season = [
            h[1] for h in self.history if h[0].year != when.year and _doy_distance(h[0], when) <= SEASON_DAYS
        ]
        years = {h[0].year for h in self.history if h[0].year != when.year and _doy_distance(h[0], when) <= SEASON_DAYS}
        if len(years) < 2:
            return None
        stack = np.stack(same_season).astype(np.float32)
        with warnings.catch_warnings():  # all-NaN pixels (never clear in that season) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanmin(stack, axis=0)
            high = np.nanmax(stack, axis=0)
        span = high - low
        vegetated = (high >= 0.4) & (span >= 0.1) & s.clear & ~s.water & ~s.snow
        with np.errstate(invalid="ignore", divide="ignore"):
            vci = 100 * (s.ndvi - low) / span
        return np.where(vegetated, vci, np.nan).astype(np.float32)

    # radar -------------------------------------------------------------------------------------------------
    def add_radar(self, obs: Observation, s: RadarState) -> None:
        ref = self.radar_ref
        if ref is not None:
            both = s.valid & ref.valid
            delta = s.vv - ref.vv
            flood = s.water & ~ref.water & both & (delta <= -3.0)
            self._track("flood", clean(flood, self.min_pixels), np.ones_like(s.vv), obs, s.valid, "radar")
            if both.sum():
                self.updates[obs.item_id] = {
                    PREFIX + "vv_change_db": round(float(np.nanmean(delta[both])), 3),
                    PREFIX + "change_fraction": round(float((np.abs(delta[both]) >= 3.0).mean()), 6),
                    PREFIX + "previous": self.radar_previous.item_id if self.radar_previous else None,
                }
        in_flood = self._open_mask("flood")
        if ref is None:
            self.radar_ref = s
        else:
            keep = in_flood | ~s.valid
            self.radar_ref = RadarState(
                valid=s.valid | ref.valid,
                water=np.where(keep, ref.water, s.water),
                vv=np.where(keep, ref.vv, s.vv),
            )
        self.radar_previous = obs
        self.previous = obs

    # tracking ---------------------------------------------------------------------------------------------
    def _open_mask(self, kind: str) -> np.ndarray:
        out = np.zeros((self.grid.height, self.grid.width), bool)
        for ev in self.open[kind]:
            out |= ev.mask
        return out

    def _track(
        self, kind: str, mask: np.ndarray, values: np.ndarray, obs: Observation, seen: np.ndarray, source: str
    ) -> None:
        still_open: list[Event] = []
        matched = False
        for ev in self.open[kind]:
            if not matched and mask.any() and self._near(ev.mask, mask):
                new = mask & ~ev.mask
                if kind in STATE_EVENTS or int(new.sum()) >= self.min_pixels:
                    ev.mask |= mask
                    ev.last = obs
                    ev.after.append(obs)
                    ev.values.extend(values[new & np.isfinite(values)].tolist()[:_MAX_VALUES])
                    ev.evidence.add(source)
                    still_open.append(ev)
                    matched = True
                    continue
            if kind in CHANGE_EVENTS:
                # a change event closes once it has stopped growing for CHANGE_GAP_DAYS
                if obs.when - ev.last.when > timedelta(days=CHANGE_GAP_DAYS):
                    ev.open = False
                else:
                    still_open.append(ev)
                continue
            # a state event closes when its area is seen (clear) without it
            if (ev.mask & seen).sum() >= 0.5 * max(ev.pixels, 1):
                ev.open = False
            else:
                still_open.append(ev)
        if mask.any() and not matched:
            ev = Event(
                type=kind,
                place=self.place,
                grid=self.grid,
                mask=mask.copy(),
                start=obs,
                last=obs,
                before=self.previous,
                after=[obs],
                values=values[mask & np.isfinite(values)].tolist()[:_MAX_VALUES],
                evidence={source},
            )
            self.events.append(ev)
            still_open.append(ev)
        self.open[kind] = still_open

    def _near(self, event_mask: np.ndarray, mask: np.ndarray) -> bool:
        """Overlapping, or within NEIGHBOURHOOD_M of the event (a fire front, the next parcels harvested)."""
        if (event_mask & mask).any():
            return True
        distance = ndimage.distance_transform_edt(~event_mask)
        return bool((distance[mask] <= self.reach_px).any())


def _doy_distance(a: datetime, b: datetime) -> int:
    d = abs(a.timetuple().tm_yday - b.timetuple().tm_yday)
    return min(d, 365 - d)


# -- from events to STAC items ---------------------------------------------------------------------------------
def vectorise(mask: np.ndarray, grid: PlaceGrid) -> Any:
    """The mask as a WGS84 (Multi)Polygon, simplified to about half a pixel."""
    polygons = [shape(g) for g, v in shapes(mask.astype(np.uint8), mask=mask, transform=grid.transform) if v == 1]
    if not polygons:
        return None
    merged = shapely.union_all(polygons)
    to_wgs84 = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    geographic = shapely_transform(to_wgs84.transform, merged)
    pixel_deg = abs(grid.transform.a) / 111_320.0
    simplified = geographic.simplify(pixel_deg / 2, preserve_topology=True)
    return simplified if simplified.is_valid and not simplified.is_empty else geographic


def severity(kind: str, values: list[float], area_share: float) -> tuple[str, float]:
    """(class, value) of an event: dNBR classes for fires, VCI classes for droughts, area for the rest."""
    if not values:
        return "unknown", 0.0
    mean = float(np.mean(values))
    if kind == "wildfire":
        label = next((name for limit, name in _DNBR_CLASSES if mean >= limit), "unburned")
        return label, round(mean, 4)
    if kind == "drought":
        label = "extreme" if mean < 10 else "severe" if mean < 20 else "moderate"
        return label, round(mean, 2)
    if kind in ("harvest", "deforestation"):
        return ("high" if mean >= 0.5 else "moderate" if mean >= 0.3 else "low"), round(mean, 4)
    label = "major" if area_share >= 0.2 else "moderate" if area_share >= 0.05 else "minor"
    return label, round(area_share, 4)


def confidence(ev: Event, min_pixels: int) -> float:
    score = 0.5
    if len(ev.after) >= 2:
        score += 0.15
    if len(ev.evidence) >= 2:
        score += 0.2
    if ev.pixels >= 10 * min_pixels:
        score += 0.1
    if ev.before is not None:
        score += 0.05
    return round(min(score, 0.99), 2)


def _place_slug(place: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in place.split(":", 1)[1]).strip("-").lower()


def event_item(ev: Event, min_pixels: int, last_seen: datetime) -> Item | None:
    geometry = ev.geometry if ev.geometry is not None else vectorise(ev.mask, ev.grid)
    if geometry is None:
        return None
    area_km2 = ev.area_km2 if ev.area_km2 is not None else ev.pixels * ev.grid.pixel_km2
    label, value = severity(ev.type, ev.values, ev.pixels / ev.mask.size)
    item_id = f"{ev.type}-{_place_slug(ev.place)}-{ev.start.when:%Y%m%d}"
    links = []
    if ev.before is not None:
        links.append(_link("before", ev.before))
    for obs in ev.after:
        links.append(_link("after", obs))
    is_open = ev.open and ev.last.when >= last_seen
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": EVENTS_COLLECTION,
        "geometry": mapping(geometry),
        "bbox": [round(v, 6) for v in geometry.bounds],
        "properties": {
            "datetime": None,
            "start_datetime": _iso(ev.start.when),
            "end_datetime": _iso(ev.last.when),
            "title": f"{ev.type} at {ev.place.split(':', 1)[1]} from {ev.start.when:%Y-%m-%d}",
            PREFIX + "event_type": ev.type,
            PREFIX + "area_km2": round(area_km2, 4),
            PREFIX + "severity": label,
            PREFIX + "severity_value": value,
            PREFIX + "confidence": confidence(ev, min_pixels),
            PREFIX + "evidence": sorted(ev.evidence),
            PREFIX + "status": "open" if is_open else "closed",
            PREFIX + "place": "+".join(sorted({ev.place, *ev.merged_places})),
            PREFIX + "before": ev.before.item_id if ev.before else None,
            PREFIX + "after": [o.item_id for o in ev.after],
            PREFIX + "version": "1.0",
        },
        "links": links,
        "assets": {},
    }


def _link(rel: str, obs: Observation) -> dict[str, Any]:
    return {
        "rel": rel,
        "href": f"/collections/{obs.collection}/items/{obs.item_id}",
        "type": "application/geo+json",
        "title": f"{obs.collection}/{obs.item_id} ({obs.when:%Y-%m-%d})",
    }


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_flood_evidence(events: list[Event]) -> list[Event]:
    """Optical and radar floods overlapping in space and within RADAR_MERGE_DAYS become one event."""
    for ev in events:
        if ev.geometry is None:
            ev.geometry = vectorise(ev.mask, ev.grid)
    floods = [e for e in events if e.type == "flood" and e.geometry is not None]
    merged_into: dict[int, Event] = {}
    for i, a in enumerate(floods):
        if id(a) in merged_into:
            continue
        for b in floods[i + 1 :]:
            if id(b) in merged_into or a.evidence == b.evidence or a.place == b.place:
                continue
            gap = timedelta(days=RADAR_MERGE_DAYS)
            in_time = a.start.when - gap <= b.last.when and b.start.when - gap <= a.last.when
            if in_time and a.geometry.intersects(b.geometry):
                _absorb(a, b)
                merged_into[id(b)] = a
    return [e for e in events if id(e) not in merged_into]


def _absorb(a: Event, b: Event) -> None:
    a.geometry = shapely.union(a.geometry, b.geometry)
    a.area_km2 = _geodesic_km2(a.geometry)
    a.evidence |= b.evidence
    a.merged_places |= {b.place, *b.merged_places}
    if b.start.when < a.start.when:
        a.start, a.before = b.start, b.before
    if b.last.when > a.last.when:
        a.last = b.last
    a.after = sorted({o.item_id: o for o in [*a.after, *b.after]}.values(), key=lambda o: o.when)
    a.open = a.open or b.open


def _geodesic_km2(geometry: Any) -> float:
    from pyproj import Geod

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geometry)
    return abs(area) / 1e6


def detect_events(items: Iterable[Item], *, max_side: int = 1024, min_area_km2: float = 0.05) -> DetectionResult:
    """Events of every place of ``items`` (enriched S2/S1 items), plus temporal properties for the items."""
    places = observations_by_place(items)
    events: list[Event] = []
    updates: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    last_seen: dict[str, datetime] = {}
    for place, obs_list in sorted(places.items()):
        try:
            grid = place_grid(obs_list[0], max_side)
        except (SignatureInputError, rasterio.errors.RasterioError) as exc:
            failures[obs_list[0].item_id] = str(exc)
            continue
        min_pixels = max(4, math.ceil(min_area_km2 / grid.pixel_km2))
        tracker = PlaceTracker(place, grid, min_pixels=min_pixels)
        for obs in obs_list:
            try:
                if obs.kind == "optical":
                    tracker.add_optical(obs, read_optical(obs.item, grid))
                else:
                    tracker.add_radar(obs, read_radar(obs.item, grid))
            except (SignatureInputError, rasterio.errors.RasterioError) as exc:
                failures[obs.item_id] = str(exc)
        events.extend(tracker.events)
        updates.update(tracker.updates)
        last_seen[place] = obs_list[-1].when
    events = merge_flood_evidence(events)
    out: list[Item] = []
    for ev in events:
        item = event_item(ev, max(4, math.ceil(min_area_km2 / ev.grid.pixel_km2)), last_seen[ev.place])
        if item is not None:
            out.append(item)
    return DetectionResult(events=out, item_updates=updates, failures=failures)


@dataclass
class DetectionResult:
    events: list[Item]
    item_updates: dict[str, dict[str, Any]]
    failures: dict[str, str]
