"""What a satellite sees on a date: phenology, events, snow, clouds and shadows, SAR backscatter — and the truth.

A ``PlaceModel`` holds a place's ground and the static parts of its events (burn dates, clearing dates, flood
heights); ``render_optical`` and ``render_sar`` turn it into surface reflectance / sigma0 for one acquisition,
together with a per-pixel truth state map that the products never see.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

import numpy as np
from scipy import ndimage

from snapearth.sources.sample.landscape import (
    CROPS,
    FORESTS,
    VEGETATED,
    Cover,
    Ground,
    fractal_noise,
    make_ground,
    rng_for,
    smooth_noise,
)
from snapearth.sources.sample.scenario import Event, Place, Scenario

BANDS = ("B02", "B03", "B04", "B05", "B08", "B8A", "B11", "B12")
BANDS_10M = ("B02", "B03", "B04", "B08")
BANDS_20M = ("B05", "B8A", "B11", "B12")


class State(IntEnum):
    """Per-pixel truth codes of ``truth/scenes/<item>.tif``."""

    NODATA = 0
    VEGETATION = 1  # green cover >= 40 %
    NOT_VEGETATED = 2  # soil, rock, urban, stubble, dry or sparse vegetation
    WATER = 3  # permanent water; a flooded paddy or wetland where the open water shows (see ``surface_on``)
    FLOOD = 4  # water where there is usually none
    SNOW = 5  # snow or ice
    BURNED = 6
    CLOUD_SHADOW = 7
    THIN_CLOUD = 8
    CLOUD = 9


def _s(*v: float) -> np.ndarray:
    return np.array(v, np.float32)


# Surface reflectance spectra, bands B02 B03 B04 B05 B08 B8A B11 B12 (typical values from spectral libraries).
SPECTRA: dict[str, np.ndarray] = {
    "soil": _s(0.08, 0.11, 0.15, 0.18, 0.22, 0.24, 0.32, 0.28),
    "sand": _s(0.14, 0.20, 0.28, 0.31, 0.35, 0.37, 0.45, 0.40),
    "rock": _s(0.12, 0.14, 0.16, 0.17, 0.20, 0.21, 0.25, 0.22),
    "green": _s(0.03, 0.07, 0.035, 0.12, 0.42, 0.45, 0.22, 0.11),
    "broadleaf": _s(0.025, 0.05, 0.03, 0.09, 0.33, 0.35, 0.17, 0.08),
    "conifer": _s(0.02, 0.04, 0.025, 0.07, 0.24, 0.25, 0.12, 0.06),
    "rapeseed_flower": _s(0.05, 0.16, 0.13, 0.21, 0.45, 0.46, 0.25, 0.13),
    "dry": _s(0.09, 0.13, 0.17, 0.21, 0.28, 0.30, 0.38, 0.30),
    "urban": _s(0.10, 0.11, 0.12, 0.13, 0.16, 0.17, 0.20, 0.18),
    "water": _s(0.06, 0.05, 0.03, 0.02, 0.012, 0.01, 0.005, 0.003),
    "flood": _s(0.09, 0.10, 0.09, 0.07, 0.04, 0.035, 0.02, 0.015),  # turbid, sediment-laden
    "snow": _s(0.88, 0.87, 0.85, 0.83, 0.78, 0.75, 0.08, 0.06),
    "ice": _s(0.60, 0.58, 0.55, 0.50, 0.42, 0.40, 0.05, 0.04),
    "burn": _s(0.04, 0.05, 0.06, 0.07, 0.09, 0.10, 0.17, 0.17),
    "cloud": _s(0.55, 0.55, 0.56, 0.56, 0.57, 0.57, 0.45, 0.35),
}

# Phenology: (day of year, green fraction, dry fraction, water fraction) knots, linearly interpolated; the rest
# of the pixel is the background (soil, sand or rock). Northern-hemisphere calendar, by climate.
Curve = tuple[tuple[int, float, float, float], ...]
_WHEAT: Curve = ((1, .25, 0, 0), (60, .3, 0, 0), (100, .7, 0, 0), (140, .95, 0, 0), (165, .7, .25, 0),
                 (185, .15, .8, 0), (194, .1, .85, 0), (196, .02, .15, 0), (280, 0, .1, 0), (320, .15, 0, 0),
                 (366, .25, 0, 0))  # fmt: skip
_MAIZE: Curve = ((1, 0, .1, 0), (120, 0, 0, 0), (140, .05, 0, 0), (170, .5, 0, 0), (200, .95, 0, 0), (240, .8, .15, 0),
                 (265, .3, .6, 0), (274, .2, .7, 0), (276, .02, .15, 0), (366, 0, .1, 0))  # fmt: skip
_SUNFLOWER: Curve = ((1, 0, .1, 0), (110, 0, 0, 0), (130, .05, 0, 0), (160, .6, 0, 0), (190, .9, 0, 0),
                     (215, .4, .5, 0), (240, .05, .8, 0), (249, .05, .8, 0), (251, .01, .15, 0),
                     (366, 0, .1, 0))  # fmt: skip
_RAPESEED: Curve = ((1, .35, 0, 0), (60, .45, 0, 0), (90, .8, 0, 0), (110, .85, 0, 0), (150, .6, .3, 0),
                    (180, .1, .8, 0), (189, .1, .8, 0), (191, .02, .15, 0), (240, 0, 0, 0), (270, .3, 0, 0),
                    (330, .4, 0, 0), (366, .35, 0, 0))  # fmt: skip
_RICE: Curve = ((1, 0, .1, .6), (120, 0, 0, .9), (150, .2, 0, .7), (190, .8, 0, .1), (240, .9, 0, 0),
                (260, .4, .5, 0), (269, .3, .6, 0), (271, .02, .4, 0), (320, 0, .1, .5), (366, 0, .1, .6))  # fmt: skip
_MILLET: Curve = ((1, 0, .15, 0), (170, 0, .05, 0), (190, .1, 0, 0), (220, .6, 0, 0), (245, .7, 0, 0),
                  (270, .3, .6, 0), (284, .2, .7, 0), (286, .02, .15, 0), (366, 0, .15, 0))  # fmt: skip
_CURVES: dict[tuple[str, Cover], Curve] = {}
for _climate in ("temperate", "mediterranean", "alpine", "sahel", "tropical"):
    for _crop, _knots in ((Cover.WHEAT, _WHEAT), (Cover.MAIZE, _MAIZE), (Cover.SUNFLOWER, _SUNFLOWER),
                          (Cover.RAPESEED, _RAPESEED), (Cover.RICE, _RICE), (Cover.MILLET, _MILLET)):  # fmt: skip
        _CURVES[(_climate, _crop)] = _knots
_CURVES.update(
    {
        ("temperate", Cover.GRASSLAND): (
            (1, 0.45, 0.1, 0),
            (90, 0.65, 0, 0),
            (150, 0.85, 0, 0),
            (210, 0.6, 0.3, 0),
            (260, 0.65, 0.1, 0),
            (366, 0.45, 0.1, 0),
        ),
        ("alpine", Cover.GRASSLAND): (
            (1, 0.3, 0.3, 0),
            (130, 0.35, 0.2, 0),
            (170, 0.8, 0, 0),
            (240, 0.7, 0.1, 0),
            (290, 0.35, 0.4, 0),
            (366, 0.3, 0.3, 0),
        ),
        ("mediterranean", Cover.GRASSLAND): (
            (1, 0.5, 0.1, 0),
            (90, 0.7, 0, 0),
            (150, 0.4, 0.4, 0),
            (200, 0.15, 0.65, 0),
            (270, 0.2, 0.5, 0),
            (310, 0.45, 0.1, 0),
            (366, 0.5, 0.1, 0),
        ),
        ("sahel", Cover.GRASSLAND): (
            (1, 0.04, 0.4, 0),
            (170, 0.04, 0.3, 0),
            (200, 0.35, 0.1, 0),
            (240, 0.6, 0, 0),
            (280, 0.3, 0.45, 0),
            (330, 0.06, 0.45, 0),
            (366, 0.04, 0.4, 0),
        ),
        ("tropical", Cover.GRASSLAND): (
            (1, 0.75, 0, 0),
            (120, 0.7, 0.05, 0),
            (170, 0.35, 0.45, 0),
            (240, 0.25, 0.6, 0),
            (290, 0.55, 0.1, 0),
            (366, 0.75, 0, 0),
        ),
        ("temperate", Cover.BROADLEAF_FOREST): (
            (1, 0.15, 0.35, 0),
            (105, 0.2, 0.3, 0),
            (140, 0.9, 0, 0),
            (265, 0.85, 0, 0),
            (300, 0.4, 0.4, 0),
            (330, 0.15, 0.35, 0),
            (366, 0.15, 0.35, 0),
        ),
        ("tropical", Cover.BROADLEAF_FOREST): (
            (1, 0.95, 0, 0),
            (180, 0.85, 0.05, 0),
            (260, 0.82, 0.08, 0),
            (366, 0.95, 0, 0),
        ),
        ("temperate", Cover.CONIFER_FOREST): ((1, 0.75, 0, 0), (150, 0.85, 0, 0), (300, 0.8, 0, 0), (366, 0.75, 0, 0)),
        ("temperate", Cover.SHRUBLAND): (
            (1, 0.35, 0.2, 0),
            (120, 0.5, 0.1, 0),
            (220, 0.3, 0.35, 0),
            (366, 0.35, 0.2, 0),
        ),
        ("mediterranean", Cover.SHRUBLAND): (
            (1, 0.4, 0.15, 0),
            (100, 0.5, 0.1, 0),
            (210, 0.25, 0.4, 0),
            (300, 0.35, 0.2, 0),
            (366, 0.4, 0.15, 0),
        ),
        ("sahel", Cover.SHRUBLAND): (
            (1, 0.12, 0.3, 0),
            (180, 0.12, 0.3, 0),
            (230, 0.35, 0.1, 0),
            (300, 0.2, 0.3, 0),
            (366, 0.12, 0.3, 0),
        ),
        ("temperate", Cover.ORCHARD): (
            (1, 0.2, 0.2, 0),
            (110, 0.4, 0, 0),
            (160, 0.7, 0, 0),
            (280, 0.6, 0.1, 0),
            (330, 0.25, 0.2, 0),
            (366, 0.2, 0.2, 0),
        ),
        ("mediterranean", Cover.ORCHARD): ((1, 0.55, 0, 0), (366, 0.55, 0, 0)),  # citrus: evergreen
        ("temperate", Cover.WETLAND): (
            (1, 0.3, 0.2, 0.4),
            (120, 0.6, 0, 0.3),
            (240, 0.7, 0, 0.2),
            (366, 0.3, 0.2, 0.4),
        ),
        ("temperate", Cover.URBAN): ((1, 0.08, 0, 0), (150, 0.15, 0, 0), (366, 0.08, 0, 0)),
    }
)


def _curve(climate: str, cover: Cover) -> Curve:
    for key in ((climate, cover), ("temperate", cover)):
        if key in _CURVES:
            return _CURVES[key]
    if cover == Cover.BROADLEAF_FOREST:
        return _CURVES[("temperate", Cover.BROADLEAF_FOREST)]
    return ((1, 0, 0, 0), (366, 0, 0, 0))


def _interp(curve: Curve, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    knots = np.array(curve, np.float32)
    d = np.mod(doy - 1, 365) + 1
    g, dry, wet = (np.interp(d, knots[:, 0], knots[:, i]).astype(np.float32) for i in (1, 2, 3))
    return g, dry, wet


def _days(a: dt.date, b: dt.date) -> float:
    return float((a - b).days)


@dataclass
class EventModel:
    """The static part of an event at its place: where it can happen and when each pixel is hit."""

    event: Event
    area: np.ndarray  # bool: the largest extent the event ever reaches
    when: np.ndarray | None = None  # float32 day offsets from event start when each pixel is hit (fire, clearing)
    parcel_dates: dict[int, dt.date] = field(default_factory=dict)  # harvest: parcel -> harvest date


@dataclass
class PlaceModel:
    """A place's ground plus everything static about it, built once per worker process."""

    place: Place
    ground: Ground
    n: int
    resolution: float
    texture: np.ndarray  # float32 multiplicative brightness texture
    hand: np.ndarray  # float32 height above the nearest permanent water, metres
    slope: np.ndarray  # float32 radians
    aspect: np.ndarray  # float32 radians, clockwise from north (downslope direction)
    snow_noise: np.ndarray  # float32 metres added to elevation when testing the snow line
    events: list[EventModel]
    key: str  # "<seed>/<place id>": the root of the place's per-date random draws

    @cached_property
    def class_pixels(self) -> list[tuple[Cover, np.ndarray]]:
        """Flat pixel indices of each land-cover class present."""
        flat = self.ground.cover.ravel()
        return [(Cover(int(c)), np.flatnonzero(flat == c)) for c in np.unique(flat)]

    @cached_property
    def spectra(self) -> tuple[np.ndarray, np.ndarray]:
        """(green vegetation, background) spectra per pixel, (8, n, n) each."""
        cover = self.ground.cover
        veg = np.where(
            (cover == Cover.CONIFER_FOREST)[None],
            SPECTRA["conifer"][:, None, None],
            np.where((cover == Cover.BROADLEAF_FOREST)[None], SPECTRA["broadleaf"][:, None, None],
                     SPECTRA["green"][:, None, None]),
        ).astype(np.float32)  # fmt: skip
        background = SPECTRA[{"sahel": "sand", "alpine": "rock"}.get(self.ground.climate, "soil")]
        bg = np.where((cover == Cover.URBAN)[None], SPECTRA["urban"][:, None, None], background[:, None, None])
        return veg, bg.astype(np.float32)

    @cached_property
    def forest(self) -> np.ndarray:
        return np.isin(self.ground.cover, [int(c) for c in FORESTS])


def build_place_model(
    scenario: Scenario, place: Place, n: int, resolution: float, centre_px: tuple[float, float]
) -> PlaceModel:
    """Ground and static event fields of ``place`` on an (n, n) grid; ``centre_px`` = the place's (row, col)."""
    ground = make_ground(scenario.seed, place.id, place.landscape, place.elevation_m, place.lat, n, resolution)
    rng = rng_for(scenario.seed, place.id, "static")
    texture = (1 + 0.07 * smooth_noise(rng, (n, n), 0.8) + 0.05 * smooth_noise(rng, (n, n), n / 30)).astype(np.float32)
    water = ground.cover == Cover.WATER
    _, (iy, ix) = ndimage.distance_transform_edt(~water, return_indices=True)
    hand = np.maximum(ground.elevation - ground.elevation[iy, ix], 0).astype(np.float32)
    gy, gx = np.gradient(ground.elevation, resolution)
    slope = np.arctan(np.hypot(gx, gy)).astype(np.float32)
    aspect = np.mod(np.arctan2(-gx, gy), 2 * np.pi).astype(np.float32)  # downslope: -gradient, rows go south
    snow_noise = (150 * smooth_noise(rng, (n, n), n / 25)).astype(np.float32)
    model = PlaceModel(
        place, ground, n, resolution, texture, hand, slope, aspect, snow_noise, [], f"{scenario.seed}/{place.id}"
    )
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    for ev in scenario.events_of(place.id):
        erng = rng_for(scenario.seed, ev.id, "event")
        cy, cx = centre_px if ev.lon is None or ev.lat is None else _event_centre(ev, place, n, resolution, centre_px)
        radius = ev.radius_km * 1000 / resolution
        dist = np.hypot(yy - cy, xx - cx) / radius
        blob = dist + 0.3 * smooth_noise(erng, (n, n), max(2.0, radius / 4)) < 1
        cover = ground.cover
        veg = np.isin(cover, [int(c) for c in VEGETATED])
        em = EventModel(ev, np.zeros((n, n), bool))
        span = max(_days(ev.end, ev.start), 1.0)
        if ev.type == "flood":
            # water spreads from the lowest ground up: rank the land of the circle by height above the river
            land = blob & ~water
            order = np.argsort(ndimage.gaussian_filter(hand, 1.5)[land], kind="stable")
            rank = np.full((n, n), 2.0, np.float32)
            rank[np.flatnonzero(land)[order] // n, np.flatnonzero(land)[order] % n] = np.arange(
                order.size, dtype=np.float32
            ) / max(order.size, 1)
            em.when = rank
            em.area = rank < ev.coverage
        elif ev.type == "wildfire":
            em.area = blob & veg & ~np.isin(cover, [int(c) for c in CROPS])
            em.when = (np.clip(dist, 0, 1) * span).astype(np.float32)
        elif ev.type == "snow":
            em.area = (ground.elevation + snow_noise > ev.snowline_m) & ~water
        elif ev.type == "drought":
            em.area = veg
        elif ev.type == "deforestation":
            forest = np.isin(cover, [int(c) for c in FORESTS])
            area = np.zeros((n, n), bool)
            when = np.full((n, n), np.inf, np.float32)
            # fishbone: farms are cut into the forest on either side of the side roads
            roads = [r for r in ground.side_roads if abs(r - cy) < radius] or [round(cy)]
            for _ in range(max(6, int(radius**2 / 150))):
                row, px = roads[int(erng.integers(len(roads)))], cx + erng.uniform(-radius, radius)
                h, w = erng.uniform(0.3, 0.8) * 600 / resolution, erng.uniform(1.0, 2.5) * 600 / resolution
                top = row + 1 if erng.random() < 0.5 else row - h
                patch = (yy >= top) & (yy < top + h) & (np.abs(xx - px) < w / 2) & forest
                day = float(erng.uniform(0, span))
                when = np.where(patch & (when > day), day, when)
                area |= patch
            em.area = area
            em.when = when
        elif ev.type == "harvest":
            crop = Cover[ev.crop.upper()] if ev.crop else Cover.WHEAT
            em.area = cover == crop
            for pid in np.unique(ground.parcel[em.area]):
                em.parcel_dates[int(pid)] = ev.start + dt.timedelta(days=int(erng.integers(0, int(span) + 1)))
        model.events.append(em)
    return model


def _event_centre(ev: Event, place: Place, n: int, res: float, centre_px: tuple[float, float]) -> tuple[float, float]:
    """Pixel (row, col) of the event's lon/lat, by local equirectangular offsets from the place centre."""
    assert ev.lon is not None
    assert ev.lat is not None
    dx = (ev.lon - place.lon) * 111_320 * math.cos(math.radians(place.lat))
    dy = (ev.lat - place.lat) * 110_540
    return centre_px[0] - dy / res, centre_px[1] + dx / res


@dataclass
class Surface:
    """The ground on a date, before the atmosphere: spectra mixing weights and the truth state."""

    reflectance: np.ndarray  # float32 (8, n, n) surface reflectance, before clouds
    state: np.ndarray  # uint8 State (surface part: VEGETATION..BURNED), what the optical pixel shows
    green: np.ndarray  # float32 green fraction
    events: dict[str, float]  # event id -> share of the image affected on this date
    sar_class: np.ndarray  # uint8 backscatter class (see SAR_DB)
    radar_state: np.ndarray  # uint8 State as the radar shows it: water wherever ``sar_class`` is open water


# SAR classes and their sigma0 (VV, VH) in dB at ~35 degrees incidence.
SAR_DB: dict[int, tuple[float, float]] = {
    0: (-23.0, -29.0),  # open water
    1: (0.0, -9.0),  # urban
    2: (-7.5, -13.0),  # forest
    3: (-15.0, -24.0),  # low vegetation, bare vegetation end member (shifted by the green fraction)
    4: (-13.0, -21.0),  # bare soil
    5: (-17.0, -25.0),  # dry sand
    6: (-17.5, -24.5),  # wet snow
    7: (-11.0, -19.5),  # burned
    8: (3.0, -7.0),  # flooded urban (double bounce)
    9: (-14.0, -20.0),  # ice
}


def surface_on(model: PlaceModel, day: dt.date) -> Surface:
    """The ground of ``model`` on ``day``: phenology, then every event active on that day."""
    g_ = model.ground
    n = model.n
    cover = g_.cover
    doy = day.timetuple().tm_yday + (182 if g_.hemisphere < 0 and g_.climate != "tropical" else 0)
    doy_px = (doy + g_.jitter).astype(np.float32)
    green = np.zeros((n, n), np.float32)
    dry = np.zeros((n, n), np.float32)
    wet = np.zeros((n, n), np.float32)
    # harvest events move the harvest of their parcels to the scripted dates (the knot just before the drop)
    shift = np.zeros((n, n), np.float32)
    for em in model.events:
        if em.event.type == "harvest" and em.parcel_dates and em.event.start.year == day.year:
            crop = Cover[em.event.crop.upper()] if em.event.crop else Cover.WHEAT
            knots = _curve(g_.climate, crop)
            drop = next(k[0] for a, k in itertools.pairwise(knots) if k[1] < 0.05 and a[1] >= 0.05)
            lut = np.zeros(int(g_.parcel.max()) + 1, np.float32)
            for pid, when in em.parcel_dates.items():
                lut[pid] = when.timetuple().tm_yday - drop + 1
            shift = np.where(em.area, lut[g_.parcel] - g_.jitter, shift)
    doy_px = doy_px + shift
    flat_doy = doy_px.ravel()
    for cls, idx in model.class_pixels:
        gg, dd, ww = _interp(_curve(g_.climate, cls), flat_doy[idx])
        green.ravel()[idx], dry.ravel()[idx], wet.ravel()[idx] = gg, dd, ww
    events: dict[str, float] = {}
    flood = np.zeros((n, n), bool)
    burn_w = np.zeros((n, n), np.float32)
    cleared = np.zeros((n, n), bool)
    snow = cover == Cover.GLACIER
    for em in model.events:
        ev = em.event
        since = _days(day, ev.start)
        if ev.type == "drought" and ev.start <= day <= ev.end:
            ramp = min(1.0, since / 30, _days(ev.end, day) / 30)
            loss = green * ev.severity * max(ramp, 0.0) * em.area
            green, dry = green - loss, dry + loss
            events[ev.id] = float(ev.severity * max(ramp, 0.0))
        elif ev.type == "flood" and ev.start <= day <= ev.end:
            peak = ev.peak or ev.start
            if day <= peak:
                share = ev.coverage * (0.3 + 0.7 * (since + 1) / (_days(peak, ev.start) + 1))
            else:
                share = ev.coverage * max(0.0, 1 - _days(day, peak) / (_days(ev.end, peak) + 1))
            assert em.when is not None
            hit = em.when < share
            flood |= hit
            events[ev.id] = float(hit.mean())
        elif ev.type == "wildfire" and em.when is not None and since >= 0:
            age = since - em.when
            tau = np.where(np.isin(cover, [int(c) for c in FORESTS]), 900.0, 400.0)
            w = np.where(em.area & (age >= 0), np.exp(-np.maximum(age, 0) / tau), 0).astype(np.float32)
            burn_w = np.maximum(burn_w, w)
            events[ev.id] = float((w > 0.5).mean())
        elif ev.type == "deforestation" and em.when is not None and since >= 0:
            hit = em.area & (em.when <= since)
            cleared |= hit
            events[ev.id] = float(hit.mean())
        elif ev.type == "snow" and ev.start <= day <= ev.end:
            frac = since / max(_days(ev.end, ev.start), 1)
            line = ev.snowline_m + (3200 - ev.snowline_m) * (1 - math.sin(math.pi * frac)) ** 1.5
            line += float(rng_for(model.key, ev.id, day.isoformat()).normal(0, 120))
            hit = (g_.elevation + model.snow_noise > line) & (cover != Cover.WATER)
            snow |= hit
            events[ev.id] = float(hit.mean())
        elif ev.type == "harvest" and em.parcel_dates and day.year == ev.start.year:
            lut = np.zeros(int(g_.parcel.max()) + 1, bool)
            for pid, when in em.parcel_dates.items():
                lut[pid] = when <= day
            hit = em.area & lut[g_.parcel] & (day <= ev.end + dt.timedelta(days=60))
            events[ev.id] = float(hit.mean())
    if cleared.any():
        green = np.where(cleared, 0.1, green)
        dry = np.where(cleared, 0.6, dry)

    veg_spec, bg = model.spectra
    if g_.climate == "temperate":
        flowering = (cover == Cover.RAPESEED) & (np.mod(doy_px, 365) > 100) & (np.mod(doy_px, 365) < 130)
        veg_spec = np.where(flowering[None], SPECTRA["rapeseed_flower"][:, None, None], veg_spec)
    soil_w = np.clip(1 - green - dry - wet, 0, 1)
    refl = green * veg_spec + dry * SPECTRA["dry"][:, None, None] + wet * SPECTRA["water"][:, None, None] + soil_w * bg
    # A partly flooded pixel (paddy, wetland) shows as water where the open water covers at least half of it *and*
    # makes at least half of its green reflectance (B03, the band where water is brightest against land; the mix
    # is linear, texture and illumination scale every part alike). Water is dark: a paddy 60 % under water between
    # bright sand or soil reflects like dim sand or a built-up surface in every band, and no one can call it water
    # from the image; against sand the open water has to cover ~80 % of the pixel, against soil ~70 %.
    shows_water = (wet >= 0.5) & (wet * SPECTRA["water"][1] >= 0.5 * refl[1])
    refl = np.where((cover == Cover.WATER)[None], SPECTRA["water"][:, None, None], refl)
    refl = np.where((cover == Cover.GLACIER)[None], SPECTRA["ice"][:, None, None], refl)
    refl = refl * model.texture
    if burn_w.any():
        refl = burn_w * SPECTRA["burn"][:, None, None] + (1 - burn_w) * refl
        green = green * (1 - burn_w)
    forest = model.forest
    # the share of a snowy pixel that shows snow: conifers hide most of it, leafless broadleaf trees less
    if snow.any():
        canopy = np.where(cover == Cover.CONIFER_FOREST, 0.35, np.where(cover == Cover.BROADLEAF_FOREST, 0.6, 1.0))
        snow_vis = canopy.astype(np.float32) * (snow & (cover != Cover.GLACIER))
        refl = snow_vis * SPECTRA["snow"][:, None, None] + (1 - snow_vis) * refl
    if flood.any():
        refl = np.where(flood[None], 0.95 * SPECTRA["flood"][:, None, None] * model.texture + 0.05 * refl, refl)

    state = np.where(green >= 0.4, State.VEGETATION, State.NOT_VEGETATED).astype(np.uint8)
    radar_state = state.copy()
    state[shows_water] = State.WATER
    radar_state[wet >= 0.5] = State.WATER  # the backscatter model makes such a pixel open water (SAR class 0)
    for st in (state, radar_state):
        st[cover == Cover.WATER] = State.WATER
        st[burn_w > 0.5] = State.BURNED
        st[snow] = State.SNOW  # under a forest canopy too: a third of the pixel is snow, NDSI says snow
        st[flood] = State.FLOOD

    sar = np.full((n, n), 3, np.uint8)
    sar[np.isin(cover, [int(c) for c in FORESTS]) & ~cleared] = 2
    sar[(green + dry < 0.2) & (cover != Cover.URBAN)] = 5 if g_.climate == "sahel" else 4
    sar[cover == Cover.URBAN] = 1
    sar[burn_w > 0.5] = 7
    sar[snow & (cover != Cover.GLACIER) & ~forest] = 6
    sar[cover == Cover.GLACIER] = 9
    sar[(cover == Cover.WATER) | (wet >= 0.5)] = 0
    sar[flood] = 0
    sar[flood & (cover == Cover.URBAN)] = 8
    return Surface(refl.astype(np.float32), state, green.astype(np.float32), events, sar, radar_state)


@dataclass
class OpticalScene:
    reflectance: np.ndarray  # float32 (8, n, n) bottom-of-atmosphere reflectance as the product shows it
    opacity: np.ndarray  # float32 cloud opacity 0..1
    shadow: np.ndarray  # bool
    state: np.ndarray  # uint8 State including clouds and shadows
    surface: Surface
    cloud_target: float


# Monthly mean cloudiness by climate (Jan..Dec), in line with MODIS cloud climatologies.
CLOUDINESS = {
    "temperate": (0.75, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.4, 0.45, 0.6, 0.75, 0.8),
    "mediterranean": (0.5, 0.45, 0.4, 0.35, 0.25, 0.15, 0.08, 0.1, 0.2, 0.35, 0.45, 0.5),
    "alpine": (0.6, 0.6, 0.6, 0.65, 0.65, 0.55, 0.5, 0.5, 0.45, 0.5, 0.6, 0.6),
    "sahel": (0.05, 0.05, 0.08, 0.15, 0.25, 0.35, 0.5, 0.55, 0.4, 0.15, 0.05, 0.05),
    "tropical": (0.85, 0.85, 0.8, 0.6, 0.3, 0.12, 0.1, 0.12, 0.3, 0.6, 0.8, 0.85),
}


def render_optical(
    model: PlaceModel, when: dt.datetime, sun_azimuth: float, sun_elevation: float, key: str
) -> OpticalScene:
    """Surface + topographic illumination + clouds (thick, thin, cirrus) + shadows cast along the sun direction."""
    rng = rng_for(key, "clouds")
    n = model.n
    surface = surface_on(model, when.date())
    zen = math.radians(90 - sun_elevation)
    az = math.radians(sun_azimuth)
    cos_i = np.cos(zen) * np.cos(model.slope) + np.sin(zen) * np.sin(model.slope) * np.cos(az - model.aspect - np.pi)
    illum = np.clip(0.35 + 0.65 * cos_i / max(math.cos(zen), 0.1), 0.25, 1.6).astype(np.float32)
    refl = surface.reflectance * illum

    mean = CLOUDINESS[model.ground.climate][when.month - 1]
    k = 0.8  # Beta(k m, k (1 - m)): U-shaped, mostly clear or mostly overcast, as the real archive
    target = float(rng.beta(max(k * mean, 0.02), max(k * (1 - mean), 0.02)))
    target = 0.0 if target < 0.01 else target
    field_ = fractal_noise(rng, (n, n), (n / 6, n / 16, n / 48))
    opacity = np.zeros((n, n), np.float32)
    if target > 0:
        q = float(np.quantile(field_, 1 - target))
        opacity = np.clip((field_ - q) / 0.5 + 0.12, 0, 1).astype(np.float32) * (field_ > q)
    if rng.random() < 0.15:  # a cirrus veil over part of the scene
        veil = smooth_noise(rng, (n, n), n / 5)
        opacity = np.maximum(opacity, np.clip(0.12 + 0.1 * veil, 0, 0.3) * (veil > 0.3)).astype(np.float32)
    shadow = np.zeros((n, n), bool)
    if opacity.max() >= 0.35:
        height = rng.uniform(1000, 3500)
        dist = height * math.tan(zen) / model.resolution
        drow = dist * math.cos(az)  # shadows fall away from the sun: north (up) when the sun is south
        dcol = -dist * math.sin(az)
        # the cloud field is periodic (wrap-around filtering), so clouds beyond the edge cast shadows inside
        shifted = np.roll(opacity, (round(drow), round(dcol)), axis=(0, 1))
        shadow = (shifted >= 0.35) & (opacity < 0.1)
    cloud = SPECTRA["cloud"][:, None, None] * (0.9 + 0.2 * rng.random())
    out = np.where(shadow[None], refl * 0.3 + 0.01, refl)
    out = opacity * cloud * (1 + 0.1 * field_) + (1 - opacity) * out
    out = out + 0.003 * rng.standard_normal(out.shape, dtype=np.float32)
    state = surface.state.copy()
    state[shadow] = State.CLOUD_SHADOW
    state[(opacity >= 0.1) & (opacity < 0.35)] = State.THIN_CLOUD
    state[opacity >= 0.35] = State.CLOUD
    return OpticalScene(np.clip(out, 0.0001, 1.5).astype(np.float32), opacity, shadow, state, surface, target)


def render_sar(
    model: PlaceModel, when: dt.datetime, orbit_state: str, key: str
) -> tuple[np.ndarray, np.ndarray, Surface]:
    """Sigma0 (VV, VH) in dB with speckle (ENL 4.4), incidence gradient and slope brightening; plus the surface."""
    rng = rng_for(key, "speckle")
    n = model.n
    surface = surface_on(model, when.date())
    cls = surface.sar_class
    vv = np.zeros((n, n), np.float32)
    vh = np.zeros((n, n), np.float32)
    for c, (a, b) in SAR_DB.items():
        m = cls == c
        vv[m], vh[m] = a, b
    veg = cls == 3
    vv = np.where(veg, vv + 6 * surface.green, vv)
    vh = np.where(veg, vh + 10 * surface.green, vh)
    # right-looking: ascending passes look east, descending look west; slopes facing the radar are brighter
    look = math.pi / 2 if orbit_state == "ascending" else 3 * math.pi / 2
    facing = np.sin(model.slope) * np.cos(model.aspect - look + math.pi)
    # open water (lakes, rivers, floods, flooded paddies) has a level surface: the slope of the ground around
    # and under it does not tilt it towards or away from the radar
    terrain = np.where(cls == 0, 0.0, 8 * facing).astype(np.float32)
    incidence = np.linspace(-1.0, 1.0, n, dtype=np.float32)[None, :]
    if orbit_state == "descending":
        incidence = incidence[:, ::-1]
    wind = float(rng.uniform(0, 2)) * (cls == 0)  # wind roughens open water a little
    out = []
    for base in (vv, vh):
        speckle = 10 * np.log10(rng.gamma(4.4, 1 / 4.4, (n, n)).astype(np.float32))
        out.append(base + terrain - incidence + wind + speckle)
    return out[0].astype(np.float32), out[1].astype(np.float32), surface
