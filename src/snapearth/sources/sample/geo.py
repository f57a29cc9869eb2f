"""Where and when: the real MGRS tile and UTM grid of a place, sun angles, and the satellites' acquisition plans.

The orbits are modelled, not propagated: each relative orbit's ground track shifts west by a fixed step per
orbit from one real reference pass, which gives the real relative orbit numbers within a track or two, the
real overpass local times (Sentinel-2 10:30 descending, Sentinel-1 ~06:00 descending / ~18:00 ascending)
and the real repeat cycles (Sentinel-2 10 days per satellite, Sentinel-1 12 days per satellite).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass

import mgrs
from affine import Affine
from pyproj import Transformer

UTC = dt.UTC
S2_TILE_SIZE_M = 109_800.0


@dataclass(frozen=True)
class Grid:
    """A product's pixel grid inside the real MGRS tile of a place."""

    mgrs_tile: str  # e.g. "30SYJ"
    epsg: int
    x0: float  # upper-left corner, metres, on the tile's 60 m grid
    y0: float
    size_m: float
    resolution: float  # pixel of the 10 m-class bands

    @property
    def utm_zone(self) -> int:
        return int(self.mgrs_tile[:-3])

    @property
    def latitude_band(self) -> str:
        return self.mgrs_tile[-3]

    @property
    def grid_square(self) -> str:
        return self.mgrs_tile[-2:]

    def shape(self, factor: int = 1) -> tuple[int, int]:
        n = round(self.size_m / (self.resolution * factor))
        return n, n

    def transform(self, factor: int = 1) -> Affine:
        res = self.resolution * factor
        return Affine(res, 0.0, self.x0, 0.0, -res, self.y0)

    @property
    def proj_bbox(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0 - self.size_m, self.x0 + self.size_m, self.y0)

    def footprint_lonlat(self) -> list[tuple[float, float]]:
        """The product's outline in WGS84 (closed ring, counter-clockwise, corners and edge midpoints)."""
        tr = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        w, s, e, n = self.proj_bbox
        xs = [w, (w + e) / 2, e, e, e, (w + e) / 2, w, w]
        ys = [s, s, s, (s + n) / 2, n, n, n, (s + n) / 2]
        lons, lats = tr.transform(xs, ys)
        ring = [(round(x, 7), round(y, 7)) for x, y in zip(lons, lats, strict=True)]
        return [*ring, ring[0]]


def place_grid(lon: float, lat: float, size_km: float, resolution: float) -> Grid:
    """The real MGRS tile covering (lon, lat), and a product window inside it, aligned to the tile's grid."""
    tile = mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=0)
    if isinstance(tile, bytes):
        tile = tile.decode()
    with warnings.catch_warnings():
        # the square's SW corner may lie south of the tile's latitude band: mgrs warns, the corner is still right
        warnings.filterwarnings("ignore", message=".*Latitude Warning", category=RuntimeWarning)
        zone, hemisphere, sq_e, sq_n = mgrs.MGRS().MGRSToUTM(tile + "0000000000")  # SW corner (+0.5 m)
    sq_e, sq_n = math.floor(sq_e), math.floor(sq_n)
    epsg = (32600 if hemisphere == "N" else 32700) + int(zone)
    # Sentinel-2 tiles: 109.8 km squares whose upper-left corner is the 100 km square's corner + 100 020 m north.
    tile_x0, tile_y0 = float(sq_e), float(sq_n) + 100_020.0
    cx, cy = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    size_m = round(size_km * 1000 / (2 * resolution)) * 2 * resolution  # whole number of 20 m-class pixels
    step = 2 * resolution
    x0 = min(max(cx - size_m / 2, tile_x0), tile_x0 + S2_TILE_SIZE_M - size_m)
    y0 = max(min(cy + size_m / 2, tile_y0), tile_y0 - S2_TILE_SIZE_M + size_m)
    x0 = tile_x0 + math.floor((x0 - tile_x0) / step) * step
    y0 = tile_y0 - math.floor((tile_y0 - y0) / step) * step
    return Grid(mgrs_tile=tile, epsg=epsg, x0=x0, y0=y0, size_m=size_m, resolution=resolution)


def sun_angles(when: dt.datetime, lon: float, lat: float) -> tuple[float, float]:
    """(azimuth, elevation) of the sun in degrees (NOAA solar position equations, ~0.1 degree)."""
    doy = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hour * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi)))
    return (az + 180) % 360, 90 - math.degrees(zen)


@dataclass(frozen=True)
class Pass:
    """One acquisition of a place by a satellite."""

    platform: str  # sentinel-2a, sentinel-1a, ...
    datetime: dt.datetime
    relative_orbit: int
    absolute_orbit: int
    orbit_state: str  # ascending | descending


@dataclass(frozen=True)
class _Track:
    """A reference pass of a constellation, the source of every modelled pass of that orbit type."""

    satellite: str
    reference: dt.datetime  # UTC time of the reference pass over ``reference_lon``
    reference_lon: float
    reference_relative_orbit: int
    cycle_days: int
    orbits_per_cycle: int
    orbit_state: str
    active: tuple[dt.date, dt.date]
    anchor: tuple[dt.datetime, int]  # a known (time, absolute orbit) of this satellite

    @property
    def period(self) -> dt.timedelta:
        return dt.timedelta(days=self.cycle_days) / self.orbits_per_cycle


# Real reference passes: S2A R051 over T31TDH on 2018-01-01 10:54 UTC (track centre ~1.5 E at 45 N, the real SAFE in
# shared/data), S1A R021 descending over lon ~30 E on 2022-04-28 03:44 UTC (the real Planetary Computer item).
# Sentinel-2B flies 180 degrees (5 days) behind; Sentinel-2C took Sentinel-2A's slot on 2025-01-21;
# Sentinel-1B failed on 2021-12-23; Sentinel-1C flies in Sentinel-1B's slot (6 days apart) from 2025-05-20.
# Absolute orbits are anchored on real products (S2A A013263... see the anchors) or, for 2C/1B/1C, counted
# from launch (approximate).
_DAY = dt.timedelta(days=1)
_S2A_REF = dt.datetime(2018, 1, 1, 10, 54, 41, tzinfo=UTC)
_S1A_REF = dt.datetime(2022, 4, 28, 3, 44, 30, tzinfo=UTC)
_S1_HALF = dt.timedelta(days=12) / 175 / 2
_S1A_ASC_REF = _S1A_REF + _S1_HALF  # same orbit, half a revolution later, on the other side of the Earth
_S1_ASC_LON = 30.0 + 180.0 - 360.0 * (_S1_HALF / _DAY)
_FOREVER = dt.date(2099, 12, 31)


def _s2(sat: str, lag_days: int, active: tuple[dt.date, dt.date], anchor: tuple[dt.datetime, int]) -> _Track:
    return _Track(sat, _S2A_REF + lag_days * _DAY, 1.5, 51, 10, 143, "descending", active, anchor)


def _s1(sat: str, lag_days: int, active: tuple[dt.date, dt.date], anchor: tuple[dt.datetime, int]) -> list[_Track]:
    return [
        _Track(sat, _S1A_REF + lag_days * _DAY, 30.0, 21, 12, 175, "descending", active, anchor),
        _Track(sat, _S1A_ASC_REF + lag_days * _DAY, _S1_ASC_LON, 21, 12, 175, "ascending", active, anchor),
    ]


def _t(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=UTC)


TRACKS: tuple[_Track, ...] = (
    _s2("sentinel-2a", 0, (dt.date(2015, 6, 23), dt.date(2025, 1, 20)), (_t(2023, 11, 7, 14, 47), 43_751)),
    _s2("sentinel-2b", 5, (dt.date(2017, 3, 7), _FOREVER), (_t(2024, 2, 6, 13, 12), 36_143)),
    _s2("sentinel-2c", 0, (dt.date(2025, 1, 21), _FOREVER), (_t(2025, 1, 21), 1_975)),
    *_s1("sentinel-1a", 0, (dt.date(2014, 10, 3), _FOREVER), (_S1A_REF, 42_968)),
    *_s1("sentinel-1b", 6, (dt.date(2016, 9, 26), dt.date(2021, 12, 23)), (_t(2021, 12, 23), 30_160)),
    *_s1("sentinel-1c", 6, (dt.date(2025, 5, 20), _FOREVER), (_t(2025, 5, 20), 2_420)),
)


def _track_over(track: _Track, lon: float) -> tuple[int, dt.datetime]:
    """The orbit offset k (from the reference) whose ground track passes closest to ``lon``, and its time."""
    period = track.period
    shift = 360.0 * (period / _DAY)  # westward shift of the ground track per orbit, degrees
    best_k, best_d = 0, 1e9
    for k in range(track.orbits_per_cycle):
        d = abs(((track.reference_lon - k * shift - lon) + 180) % 360 - 180)
        if d < best_d:
            best_k, best_d = k, d
    # the exact crossing of lon happens a little before/after, at the satellite's local solar time
    lon_track = track.reference_lon - best_k * shift
    offset = ((lon_track - lon + 180) % 360 - 180) / 360 * 86400  # seconds: sun-synchronous, 1 deg = 4 min
    return best_k, track.reference + best_k * period + dt.timedelta(seconds=offset)


def acquisitions(mission: str, lon: float, lat: float, start: dt.date, end: dt.date) -> list[Pass]:
    """Every pass of ``mission`` (``sentinel-2`` or ``sentinel-1``) over (lon, lat) between start and end, by time."""
    passes: list[Pass] = []
    for track in TRACKS:
        if not track.satellite.startswith(mission):
            continue
        k, first = _track_over(track, lon)
        # the overpass time drifts with latitude along the track (~ 1 min per 3.8 degrees from the equator)
        sign = -1 if track.orbit_state == "descending" else 1
        first += dt.timedelta(seconds=sign * lat / 3.8 * 60)
        cycle = dt.timedelta(days=track.cycle_days)
        n0 = math.ceil((dt.datetime.combine(start, dt.time(), UTC) - first) / cycle)
        n = n0
        while True:
            when = first + n * cycle
            if when.date() > end:
                break
            if track.active[0] <= when.date() <= track.active[1] and when.date() >= start:
                relative = (track.reference_relative_orbit - 1 + k) % track.orbits_per_cycle + 1
                absolute = track.anchor[1] + round((when - track.anchor[0]) / track.period)
                passes.append(
                    Pass(
                        platform=track.satellite,
                        datetime=when.replace(microsecond=(when.microsecond // 1000) * 1000),
                        relative_orbit=relative,
                        absolute_orbit=absolute,
                        orbit_state=track.orbit_state,
                    )
                )
            n += 1
    passes.sort(key=lambda p: (p.datetime, p.platform))
    return passes
