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
- wildfire: the char signature now (the burn mask: NBR < -0.15, dark NIR) and dNBR = NBR_ref - NBR >= 0.1;
  severity by the mean dNBR, Key & Benson classes (0.10 low, 0.27 moderate-low, 0.44 moderate-high, 0.66 high);
- harvest / deforestation: NDVI falls from >= 0.5 to < 0.35 (not water, snow or burned). A pixel whose record
  shows bare soil (NDVI < 0.3) earlier and vegetation (NDVI >= 0.4) in the last 60 days is cultivated: harvest;
  one green in every earlier observation (at least three, over >= 120 days: longer than a crop stays green)
  is a standing forest: deforestation.
  Neither on land seen flooded in the last 60 days (silt and flood damage), nor while seasonal snow lies on
  >= 2% of the clear place (winter: dormant land, snowy canopies);
- drought: VCI = 100 (NDVI - min) / (max - min) < 35 over vegetated pixels, min/max per pixel over the
  observations of other years within 20 days of the same day of year (Kogan); needs two other years; none in
  the snow season (a wintry NDVI is the season, not a deficit).
Water seen in the same season of another year by either sensor (optical, radar) is seasonal, not a flood.

Radar water with context: before its flood rule, each radar item's ``signature-water`` mask is rewritten on its own
grid by ``radar.water_with_context`` from its VV, the snow that the last clear optical view before it or the first
one after it (each within ``radar.SNOW_CONTEXT_DAYS``) saw on the place (excluded: wet snow is as dark as water),
and the mean intensity of its orbit's last ``radar.HISTORY_ACQUISITIONS`` acquisitions (persistent water); its
``water_fraction``, ``water_threshold_db``, ``water_method``, ``water_context`` and ``water_excluded_fraction`` are
updated. The mask is recomputed from the VV each time, so a re-run (or a new optical view) gives the same or the
corrected mask. An item larger than ``MAX_CONTEXT_PIXELS`` keeps its single-image mask.

Masks are cleaned (3x3 opening, components smaller than ``min_pixels`` dropped). Per type, a detection that
overlaps an open event extends it; an open event whose area is seen clear without it is closed. State
events (flood, snow, drought) last while the condition holds; change events (wildfire, harvest,
deforestation) last while they grow (a clearing front stays one event across pauses of up to 120 days).
Optical and radar floods that overlap in space and time are merged into one event with both evidences.
Event ids are derived from place, type and start, so re-running on the same catalog produces the same events
(and stale ones are removed).
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import shape
from shapely.ops import transform as shapely_transform

from snapearth.catalog.base import parse_rfc3339
from snapearth.signature.bands import Grid, SignatureInputError, asset_href, band_spec, to_physical
from snapearth.signature.compute import PREFIX
from snapearth.signature.masks import RasterSink
from snapearth.signature.optical import decode_index
from snapearth.signature.radar import HISTORY_ACQUISITIONS, SNOW_CONTEXT_DAYS, temporal_mean_db, water_with_context

Item = dict[str, Any]
EVENTS_COLLECTION = "events"
STATE_EVENTS = ("flood", "snow", "drought")
CHANGE_EVENTS = ("wildfire", "harvest", "deforestation")
EVENT_TYPES = (*STATE_EVENTS, *CHANGE_EVENTS)
RADAR_MERGE_DAYS = 12
CHANGE_GAP_DAYS = 30
CLEARING_GAP_DAYS = 120  # a deforestation front advances patch by patch over months: one event while it goes on
RECENT_DAYS = 20
HARVEST_AFTER_GREEN_DAYS = 60
# a crop is harvested dry: seen vegetated (NDVI >= 0.4, the vegetation threshold) within HARVEST_AFTER_GREEN_DAYS,
# not necessarily lush (a maize or rice field first seen ripening, a drought-stricken millet)
HARVEST_CROP_NDVI = 0.4
SNOW_MEMORY_DAYS = 60
SNOW_SEASON_SHARE = 0.02
FLOOD_MEMORY_DAYS = 60
DROUGHT_MIN_SHARE = 0.2
DROUGHT_MIN_DEFICIT = 0.05
NEIGHBOURHOOD_M = 2000.0
_MAX_VALUES = 100_000
SEASON_DAYS = 45
DROUGHT_SEASON_DAYS = 20
FOREST_GREEN_DAYS = 120
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
    """The place of an optical item (its MGRS tile and grid origin), or of a radar item with no optical place
    (relative orbit + rounded footprint centre); None for an item without a signature."""
    props = item.get("properties", {})
    assets = item.get("assets", {})
    if "signature-cloud" in assets:
        tile = props.get("grid:code") or props.get("s2:mgrs_tile") or props.get("mgrs:grid_square")
        transform = props.get("proj:transform") or assets.get("B04", {}).get("proj:transform")
        origin = f"{round(transform[2])}_{round(transform[5])}" if transform and len(transform) >= 6 else ""
        name = str(tile).removeprefix("MGRS-") if tile else _centre_key(item)
        return f"optical:{name}:{origin}" if origin else f"optical:{name}"
    if "signature-water" in assets:
        return f"radar:R{props.get('sat:relative_orbit')}:{_centre_key(item)}"
    return None


def _centre_key(item: Item) -> str:
    bbox = item.get("bbox") or [0, 0, 0, 0]
    return f"{round((bbox[0] + bbox[2]) / 2, 1)}_{round((bbox[1] + bbox[3]) / 2, 1)}"


def _observation(item: Item) -> Observation:
    kind = "optical" if "signature-cloud" in item.get("assets", {}) else "radar"
    return Observation(item, parse_rfc3339(str(item["properties"]["datetime"])), kind)


def observations_by_place(items: Iterable[Item]) -> dict[str, list[Observation]]:
    """Optical items grouped by tile; each radar item joins every optical place it overlaps (radar evidence
    is read onto the optical grid), else a radar place of its own orbit."""
    places: dict[str, list[Observation]] = defaultdict(list)
    footprints: dict[str, Any] = {}
    radar: list[Item] = []
    for item in items:
        key = place_key(item)
        if key is None or not item.get("properties", {}).get(PREFIX + "version"):
            continue
        if key.startswith("radar:"):
            radar.append(item)
            continue
        places[key].append(_observation(item))
        if item.get("geometry"):
            geom = shape(item["geometry"])
            footprints[key] = geom if key not in footprints else footprints[key].union(geom)
    for item in radar:
        geom = shape(item["geometry"]) if item.get("geometry") else None
        hosts = [
            key
            for key, footprint in footprints.items()
            if geom is not None and geom.intersection(footprint).area >= 0.1 * footprint.area
        ]
        for key in hosts or [str(place_key(item))]:
            places[key].append(_observation(item))
    for obs in places.values():
        obs.sort(key=lambda o: (o.when, o.item_id))
    return dict(places)


# -- reading observations onto the place grid -----------------------------------------------------------------
def place_grid(observations: list[Observation], max_side: int) -> PlaceGrid:
    """The grid of the place's first optical observation (else its first radar one), decimated to ``max_side``."""
    obs = next((o for o in observations if o.kind == "optical"), observations[0])
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
    clear = (cloud == 0) & (indices[0] != 0)
    return OpticalState(
        clear=clear,
        water=(_read(item, "signature-water", grid) == 1) & clear,
        snow=(_read(item, "signature-snow", grid) == 1) & clear,
        burn=(_read(item, "signature-burn", grid) == 1) & clear,
        ndvi=np.where(clear, decode_index(indices[0]), np.nan).astype(np.float32),
        nbr=np.where(clear, decode_index(indices[1]), np.nan).astype(np.float32),
    )


@dataclass
class RadarState:
    valid: np.ndarray
    water: np.ndarray
    vv: np.ndarray


def read_radar(item: Item, grid: PlaceGrid) -> RadarState:
    water = _read(item, "signature-water", grid)
    vv, ok = _radar_db(item, grid)
    valid = (water != 255) & ok
    return RadarState(valid=valid, water=(water == 1) & valid, vv=np.where(valid, vv, np.nan).astype(np.float32))


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

    def __init__(
        self,
        place: str,
        grid: PlaceGrid,
        *,
        min_pixels: int,
        permanent_snow: np.ndarray,
        snow_views: list[SnowView] | None = None,
    ) -> None:
        self.place = place
        self.snow_views = snow_views or []
        self.grid = grid
        self.min_pixels = min_pixels
        self.reach_px = max(1.0, NEIGHBOURHOOD_M / abs(grid.transform.a))
        self.events: list[Event] = []
        self.open: dict[str, list[Event]] = defaultdict(list)
        shape_ = (grid.height, grid.width)
        self.permanent_snow = permanent_snow
        # optical references (last clear value; state events keep the normal state under them)
        self.ref_ndvi = np.full(shape_, np.nan, np.float32)
        self.ref_nbr = np.full(shape_, np.nan, np.float32)
        self.ref_day = np.full(shape_, -1e9, np.float64)  # when ref_ndvi was seen (days since epoch)
        self.ref_snow = np.zeros(shape_, bool)
        self.ref_known = np.zeros(shape_, bool)
        self.clear_count = np.zeros(shape_, np.int32)
        self.water_count = np.zeros(shape_, np.int32)
        self.green_count = np.zeros(shape_, np.int32)
        self.first_clear_day = np.full(shape_, np.nan, np.float64)
        self.last_green_day = np.full(shape_, -1e9, np.float64)
        self.last_snow_day = np.full(shape_, -1e9, np.float64)
        self.last_flood_day = np.full(shape_, -1e9, np.float64)
        # water reference from either sensor
        self.ref_water = np.zeros(shape_, bool)
        self.water_known = np.zeros(shape_, bool)
        self.history: list[tuple[datetime, np.ndarray, np.ndarray, np.ndarray]] = []  # (when, ndvi, water, snow)
        self.history_obs: list[Observation] = []
        self.radar_history: list[tuple[datetime, np.ndarray]] = []  # (when, packed bits of radar water)
        self.previous: Observation | None = None
        self.radar_previous: dict[Any, tuple[Observation, RadarState]] = {}
        # per orbit, the last HISTORY_ACQUISITIONS - 1 acquisitions: (observation, its grid, VV dB or NaN)
        self.radar_orbit_history: dict[Any, list[tuple[Observation, PlaceGrid, np.ndarray]]] = defaultdict(list)
        self.updates: dict[str, dict[str, Any]] = {}  # item id -> temporal properties

    # optical ------------------------------------------------------------------------------------------------
    def add_optical(self, obs: Observation, s: OpticalState) -> None:
        if s.clear.sum() < self.min_pixels:
            return  # too cloudy to say anything; the references stay as they are
        day = _days(obs.when)
        # in and just after the snow season, melt water, wet and shaded snow and snow-flattened meadows mimic
        # floods, harvests and droughts: those pixels are left to the snow events
        snowy = (day - self.last_snow_day <= SNOW_MEMORY_DAYS) | s.snow | self.permanent_snow
        # seasonal snow on the place (not glaciers): it is winter there, the vegetation is dormant; no crop is
        # harvested and no drought develops (low NDVI in the snow season is the season, not a deficit)
        seasonal_snow = snowy & ~self.permanent_snow & s.clear
        snow_season = int(seasonal_snow.sum()) >= SNOW_SEASON_SHARE * max(int(s.clear.sum()), 1)
        # land seen flooded recently: the NDVI drop after the water recedes is flood damage and silt, not a
        # harvest or a clearing
        after_flood = day - self.last_flood_day <= FLOOD_MEMORY_DAYS
        both = s.clear & self.ref_known
        seasonal_water = self._seasonal(obs.when)
        seasonal_water |= self.water_count * 2 > self.clear_count  # water in most clear views: a lake, a river
        flood = s.water & s.clear & self.water_known & ~self.ref_water & ~snowy & ~seasonal_water
        snow = s.snow & ~self.permanent_snow
        dnbr = self.ref_nbr - s.nbr
        fire = s.burn & both & (dnbr >= 0.10)
        recent = both & (day - self.ref_day <= RECENT_DAYS)
        drop = self.ref_ndvi - s.ndvi
        surface = ~s.water & ~snowy & ~s.burn & ~after_flood
        forest_like = (self.clear_count >= 3) & (self.green_count >= 0.9 * self.clear_count)
        # green through more than a crop's season (wheat, maize, rice stay green for ~3 months): a forest
        forest_like &= day - np.nan_to_num(self.first_clear_day, nan=day) >= FOREST_GREEN_DAYS
        deforestation = both & surface & forest_like & (self.ref_ndvi >= 0.6) & (s.ndvi < 0.4) & (drop >= 0.3)
        harvest = recent & surface & ~forest_like & (day - self.last_green_day <= HARVEST_AFTER_GREEN_DAYS)
        harvest &= s.ndvi < 0.25
        harvest &= drop >= 0.08
        if snow_season:  # and snow on or under a canopy lowers its NDVI like a clearing: optical cannot tell
            harvest = np.zeros_like(harvest)
            deforestation = np.zeros_like(deforestation)
        vci = self._vci(obs.when, s)
        drought = np.zeros_like(s.clear)
        if vci is not None and not snow_season:
            drought = (vci < 35) & s.clear & ~snowy
            if drought.sum() < DROUGHT_MIN_SHARE * max(int((s.clear & ~s.water).sum()), 1):
                drought = np.zeros_like(s.clear)  # a drought is regional: a few fields or slopes are not one
        ones = np.ones_like(s.ndvi)
        self._track("flood", clean(flood, self.min_pixels), ones, obs, s.clear, "optical")
        self._track("snow", clean(snow, self.min_pixels), ones, obs, s.clear, "optical")
        self._track("wildfire", clean(fire, self.min_pixels), dnbr, obs, s.clear, "optical")
        self._track("harvest", clean(harvest, self.min_pixels), drop, obs, s.clear, "optical")
        self._track("deforestation", clean(deforestation, self.min_pixels), drop, obs, s.clear, "optical")
        vci_values = vci if vci is not None else np.full_like(s.ndvi, np.nan)
        self._track("drought", clean(drought, self.min_pixels), vci_values, obs, s.clear, "optical")
        # temporal properties of this image
        props: dict[str, Any] = {}
        change, burn_delta = -drop[both], dnbr[both]
        if both.sum() >= self.min_pixels and np.isfinite(change).any() and np.isfinite(burn_delta).any():
            props[PREFIX + "ndvi_change"] = round(float(np.nanmean(change)), 4)
            props[PREFIX + "dnbr_mean"] = round(float(np.nanmean(burn_delta)), 4)
        optical_before = next((o for o in reversed(self.history_obs) if o is not obs), None)
        if optical_before is not None:
            props[PREFIX + "previous"] = optical_before.item_id
        if vci is not None and np.isfinite(vci).any():
            props[PREFIX + "vci_mean"] = round(float(np.nanmean(vci)), 2)
        self.updates[obs.item_id] = props
        # references: clear pixels update, except where a state event holds (keep the normal state there)
        in_flood = self._open_mask("flood")
        in_snow = self._open_mask("snow") | s.snow
        normal = s.clear & ~in_flood & ~in_snow
        self.ref_ndvi = np.where(normal, s.ndvi, self.ref_ndvi)
        self.ref_nbr = np.where(normal, s.nbr, self.ref_nbr)
        self.ref_day = np.where(normal, day, self.ref_day)
        self.ref_snow = np.where(s.clear & ~in_snow, s.snow, self.ref_snow)
        self.ref_known |= normal
        self._update_water(s.clear, s.water, in_flood)
        self.clear_count += normal
        self.water_count += normal & s.water
        self.green_count += normal & (s.ndvi >= 0.5)
        self.first_clear_day = np.where(normal & np.isnan(self.first_clear_day), day, self.first_clear_day)
        self.last_green_day = np.where(normal & (s.ndvi >= HARVEST_CROP_NDVI), day, self.last_green_day)
        self.last_snow_day = np.where(s.snow, day, self.last_snow_day)
        self.last_flood_day = np.where(in_flood, day, self.last_flood_day)
        ndvi16 = np.where(s.clear, s.ndvi, np.nan).astype(np.float16)
        self.history.append((obs.when, ndvi16, s.water & s.clear, s.snow))
        self.history_obs.append(obs)
        self.previous = obs

    def _update_water(self, seen: np.ndarray, water: np.ndarray, in_flood: np.ndarray) -> None:
        update = seen & ~in_flood
        self.ref_water = np.where(update, water, self.ref_water)
        self.water_known |= update

    def _seasonal(self, when: datetime) -> np.ndarray:
        """Pixels seen as water in another year within SEASON_DAYS of the same day of year (paddies, wetlands)."""
        out = np.zeros((self.grid.height, self.grid.width), bool)
        for h_when, _ndvi, water, _snow in self.history:
            if h_when.year != when.year and _doy_distance(h_when, when) <= SEASON_DAYS:
                out |= water
        for h_when, packed in self.radar_history:
            if h_when.year != when.year and _doy_distance(h_when, when) <= SEASON_DAYS:
                out |= _unpacked(packed, out.shape)
        return out

    def _vci(self, when: datetime, s: OpticalState) -> np.ndarray | None:
        """Kogan's VCI against the same season of the other (earlier) years; None without two such years."""
        # the same weeks of the other years (Kogan's weekly VCI): a wider window mixes the phenology itself (the
        # green of August against an October view) into the range
        season = [
            h for h in self.history if h[0].year != when.year and _doy_distance(h[0], when) <= DROUGHT_SEASON_DAYS
        ]
        if len({h[0].year for h in season}) < 2:
            return None
        stack = np.stack([h[1] for h in season]).astype(np.float32)
        with warnings.catch_warnings():  # all-NaN pixels (never clear in that season) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanmin(stack, axis=0)
            high = np.nanmax(stack, axis=0)
            mean = np.nanmean(stack, axis=0)
        span = high - low
        snow_season = np.logical_or.reduce([h[3] for h in season])
        vegetated = (high >= 0.3) & (span >= 0.05) & s.clear & ~s.water & ~s.snow & ~snow_season
        with np.errstate(invalid="ignore", divide="ignore"):
            vci = 100 * (s.ndvi - low) / span
        # with few years the range is narrow: also ask for a real deficit against the seasonal mean
        vci = np.where(vegetated & ((mean - s.ndvi) >= DROUGHT_MIN_DEFICIT), vci, np.where(vegetated, 100.0, np.nan))
        return vci.astype(np.float32)

    # radar -------------------------------------------------------------------------------------------------
    def add_radar(self, obs: Observation, s: RadarState) -> None:
        orbit = obs.item.get("properties", {}).get("sat:relative_orbit")
        same_orbit = self.radar_previous.get(orbit)
        water_props, refined = self._radar_water_with_context(obs, orbit)
        if refined is not None:
            s = refined
        elif water_props:
            s = read_radar(obs.item, self.grid)  # the mask was rewritten with the context
        # wet snow is as dark as water in C-band: no radar flood where the optical reference saw snow
        flood = s.water & s.valid & self.water_known & ~self.ref_water & ~self._seasonal(obs.when)
        flood &= self.water_count * 2 <= self.clear_count
        flood &= ~self.ref_snow & ~self._open_mask("snow") & ~self.permanent_snow
        flood &= _days(obs.when) - self.last_snow_day > SNOW_MEMORY_DAYS
        props: dict[str, Any] = {}
        if same_orbit is not None:
            prev_obs, prev = same_orbit
            both = s.valid & prev.valid
            delta = s.vv - prev.vv
            # new water must also be a backscatter drop seen from the same geometry (speckle, or slopes turned
            # away from another orbit's look direction, are not floods)
            flood &= both & (delta <= -3.0)
            if both.sum():
                props = {
                    PREFIX + "vv_change_db": round(float(np.nanmean(delta[both])), 3),
                    PREFIX + "change_fraction": round(float((np.abs(delta[both]) >= 3.0).mean()), 6),
                    PREFIX + "previous": prev_obs.item_id,
                }
        else:
            flood = np.zeros_like(flood)
        self.updates[obs.item_id] = {**water_props, **props}
        self._track("flood", clean(flood, self.min_pixels), np.ones_like(s.vv), obs, s.valid, "radar")
        if same_orbit is not None:
            self._update_water(s.valid, s.water, self._open_mask("flood"))
        else:
            # the first view from an orbit cannot tell new water from old (nor a wind-roughened lake from land):
            # it only fills in land where nothing was known yet
            first = s.valid & ~s.water & ~self.water_known
            self.water_known |= first
        self.radar_previous[orbit] = (obs, s)
        self.radar_history.append((obs.when, np.packbits(s.water & s.valid)))

    def _snow_exclusion(self, when: datetime) -> np.ndarray | None:
        """Pixels that the last clear optical view before ``when`` or the first one after it (each within
        SNOW_CONTEXT_DAYS) saw under snow, and perennial snow; None when no optical view is that close."""
        day = _days(when)
        views = [v for v in self.snow_views if abs(v.day - day) <= SNOW_CONTEXT_DAYS]
        if not views:
            return None
        shape_ = (self.grid.height, self.grid.width)
        before = np.zeros(shape_, bool)
        after = np.zeros(shape_, bool)
        for view in sorted(views, key=lambda v: v.day):
            if view.day <= day:  # the last clear view before wins
                before = np.where(view.clear_mask(shape_), view.snow_mask(shape_), before)
        for view in sorted(views, key=lambda v: -v.day):
            if view.day > day:  # the first clear view after wins
                after = np.where(view.clear_mask(shape_), view.snow_mask(shape_), after)
        out: np.ndarray = before | after | self.permanent_snow
        return out

    def _snow_exclusion_on(self, when: datetime, native: PlaceGrid) -> np.ndarray | None:
        """``_snow_exclusion`` warped (nearest) onto a radar item's own grid."""
        on_place = self._snow_exclusion(when)
        if on_place is None or native == self.grid:
            return on_place
        out = np.zeros((native.height, native.width), np.uint8)
        reproject(
            on_place.astype(np.uint8),
            out,
            src_transform=self.grid.transform,
            src_crs=self.grid.crs,
            dst_transform=native.transform,
            dst_crs=native.crs,
            resampling=Resampling.nearest,
        )
        return out.astype(bool)

    def _radar_water_with_context(self, obs: Observation, orbit: Any) -> tuple[dict[str, Any], RadarState | None]:
        """Rewrite the radar item's water mask (its own grid) with the optical snow exclusion and the orbit's
        recent acquisitions (``radar.water_with_context``): (the properties that change, the new state when the
        item's grid is the place grid). Nothing when the item is too large to hold whole (the single-image mask of
        ``compute`` stays)."""
        item = obs.item
        spec = band_spec(item, "vv", kind="db")
        with rasterio.open(spec.href) as ds:
            if ds.width * ds.height > MAX_CONTEXT_PIXELS:
                return {}, None
            native = PlaceGrid(ds.crs, ds.transform, ds.height, ds.width)
            vv, ok = to_physical(ds.read(1), spec)
        context: list[str] = []
        exclude = self._snow_exclusion_on(obs.when, native)
        if exclude is not None:
            context.append("optical-snow")
        # what this date says for the next ones: NaN where not valid or under snow (a date when the pixel lay
        # under snow says nothing about water there)
        past = self.radar_orbit_history[orbit]
        stack = [np.where(ok if exclude is None else ok & ~exclude, vv, np.nan).astype(np.float32)]
        for prev_obs, prev_grid, prev_db in past:
            if prev_grid != native:  # another frame of the orbit: read it onto this one's grid
                prev_vv, prev_ok = _radar_db(prev_obs.item, native)
                prev_snow = self._snow_exclusion_on(prev_obs.when, native)
                if prev_snow is not None:
                    prev_ok &= ~prev_snow
                prev_db = np.where(prev_ok, prev_vv, np.nan).astype(np.float32)
            stack.append(prev_db)
        past.append((obs, native, stack[0]))
        del past[: -(HISTORY_ACQUISITIONS - 1) or len(past)]
        history = None
        if len(stack) > 1:
            stack[0] = np.where(ok, vv, np.nan).astype(np.float32)  # this date: only its own exclusion applies
            history = temporal_mean_db(stack)
            context.append(f"orbit-history-{len(stack)}")
        water, threshold, method = water_with_context(vv, ok, exclude=exclude, history_db=history)
        out = np.where(ok, water, False).astype(np.uint8)
        out[~ok] = 255
        grid = Grid(height=native.height, width=native.width, transform=native.transform, crs=native.crs)
        sink = RasterSink(Path(asset_href(item, "signature-water")), grid, count=1, dtype="uint8", nodata=255)
        try:
            sink.write(out, Window(0, 0, native.width, native.height))
            sink.finish()
        except BaseException:
            sink.abort()
            raise
        valid = max(int(ok.sum()), 1)
        props = {
            PREFIX + "water_fraction": round(float(water[ok].sum()) / valid, 6),
            PREFIX + "water_threshold_db": round(float(threshold), 2),
            PREFIX + "water_method": method,
            PREFIX + "water_context": context,
            PREFIX + "water_excluded_fraction": round(float((exclude & ok).sum()) / valid, 6)
            if exclude is not None
            else 0.0,
        }
        if native != self.grid:
            return props, None
        return props, RadarState(valid=ok, water=water & ok, vv=np.where(ok, vv, np.nan).astype(np.float32))

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
                    ev.values.extend(values[(new if kind in CHANGE_EVENTS else mask) & np.isfinite(values)].tolist())
                    del ev.values[_MAX_VALUES:]
                    ev.evidence.add(source)
                    still_open.append(ev)
                    matched = True
                    continue
            if kind in CHANGE_EVENTS:
                # a change event closes once it has stopped growing for CHANGE_GAP_DAYS (a clearing front for
                # CLEARING_GAP_DAYS)
                gap = CLEARING_GAP_DAYS if kind == "deforestation" else CHANGE_GAP_DAYS
                if obs.when - ev.last.when > timedelta(days=gap):
                    ev.open = False
                else:
                    still_open.append(ev)
                continue
            # a state event closes when its area is seen without it
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


MAX_CONTEXT_PIXELS = 4096 * 4096  # a radar image is rewritten with its context whole (a few arrays of this size)


@dataclass
class SnowView:
    """One optical observation's clear and snow pixels on the place grid (bit-packed)."""

    day: float
    clear: np.ndarray
    snow: np.ndarray

    def clear_mask(self, shape_: tuple[int, int]) -> np.ndarray:
        return _unpacked(self.clear, shape_)

    def snow_mask(self, shape_: tuple[int, int]) -> np.ndarray:
        return _unpacked(self.snow, shape_)


def _unpacked(bits: np.ndarray, shape_: tuple[int, int]) -> np.ndarray:
    out: np.ndarray = np.unpackbits(bits, count=shape_[0] * shape_[1]).reshape(shape_).astype(bool)
    return out


def snow_views(observations: list[Observation], grid: PlaceGrid) -> list[SnowView]:
    """The clear and snow pixels of the optical observations that a radar observation of the place may use
    (within SNOW_CONTEXT_DAYS of one)."""
    radar_days = [_days(o.when) for o in observations if o.kind == "radar"]
    out = []
    for obs in observations:
        day = _days(obs.when)
        if obs.kind != "optical" or not any(abs(day - r) <= SNOW_CONTEXT_DAYS for r in radar_days):
            continue
        clear = _read(obs.item, "signature-cloud", grid) == 0
        snow = (_read(obs.item, "signature-snow", grid) == 1) & clear
        out.append(SnowView(day, np.packbits(clear), np.packbits(snow)))
    return out


def _radar_db(item: Item, grid: PlaceGrid) -> tuple[np.ndarray, np.ndarray]:
    """(VV sigma0 dB, valid) of a radar item read onto ``grid``, decoded as ``compute`` decodes it."""
    return to_physical(_read(item, "vv", grid), band_spec(item, "vv", kind="db"))


def permanent_snow(observations: list[Observation], grid: PlaceGrid) -> np.ndarray:
    """Glaciers and perennial snow: snow in >= 90% of >= 5 clear views spanning >= 120 days (not an event)."""
    shape_ = (grid.height, grid.width)
    clear = np.zeros(shape_, np.int32)
    snow = np.zeros(shape_, np.int32)
    optical = [o for o in observations if o.kind == "optical"]
    if len(optical) < 5 or (optical[-1].when - optical[0].when).days < 120:
        return np.zeros(shape_, bool)
    for obs in optical:
        cloud = _read(obs.item, "signature-cloud", grid)
        seen = cloud == 0
        clear += seen
        snow += seen & (_read(obs.item, "signature-snow", grid) == 1)
    out: np.ndarray = (clear >= 5) & (snow >= 0.9 * clear)
    return out


def _days(when: datetime) -> float:
    return when.timestamp() / 86400.0


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
        "geometry": json.loads(shapely.to_geojson(geometry)),
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


def _without_wet_snow(events: list[Event]) -> list[Event]:
    """Radar-only floods that a snow event covers within 30 days were wet snow (as dark as water in C-band)."""
    snows = [e for e in events if e.type == "snow"]
    gap = timedelta(days=30)
    out = []
    for ev in events:
        if ev.type == "flood" and ev.evidence == {"radar"}:
            covered = np.zeros_like(ev.mask)
            for snow in snows:
                if (
                    snow.place == ev.place
                    and snow.start.when - gap <= ev.last.when
                    and ev.start.when <= snow.last.when + gap
                ):
                    covered |= snow.mask
            if (ev.mask & covered).sum() >= 0.5 * ev.pixels:
                continue
        out.append(ev)
    return out


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


def detect_events(
    items: Iterable[Item], *, max_side: int = 1024, min_area_km2: float = 0.05, touched: Any = None
) -> DetectionResult:
    """Events of the places of ``items`` (enriched S2/S1 items), plus temporal properties for the items.

    ``touched`` (a WGS84 shapely geometry) limits the work to the places whose footprint intersects it.
    """
    places = observations_by_place(items)
    events: list[Event] = []
    updates: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    last_seen: dict[str, datetime] = {}
    done: list[str] = []
    for place, obs_list in sorted(places.items()):
        if touched is not None and not any(
            o.item.get("geometry") and shape(o.item["geometry"]).intersects(touched) for o in obs_list
        ):
            continue
        try:
            grid = place_grid(obs_list, max_side)
            perennial = permanent_snow(obs_list, grid)
            views = snow_views(obs_list, grid)
        except (SignatureInputError, rasterio.errors.RasterioError) as exc:
            failures[place] = str(exc)
            continue
        min_pixels = max(4, math.ceil(min_area_km2 / grid.pixel_km2))
        tracker = PlaceTracker(place, grid, min_pixels=min_pixels, permanent_snow=perennial, snow_views=views)
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
        done.append(place)
    events = merge_flood_evidence(_without_wet_snow(events))
    out: list[Item] = []
    for ev in events:
        item = event_item(ev, max(4, math.ceil(min_area_km2 / ev.grid.pixel_km2)), last_seen[ev.place])
        if item is not None:
            out.append(item)
    return DetectionResult(events=out, item_updates=updates, failures=failures, places=done)


@dataclass
class DetectionResult:
    events: list[Item]
    item_updates: dict[str, dict[str, Any]]
    failures: dict[str, str]
    places: list[str] = field(default_factory=list)
