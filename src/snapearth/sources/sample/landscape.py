"""The ground of a place: a land-cover map, an elevation model and its crop parcels, drawn from a landscape profile.

Everything is seeded by (scenario seed, place id), so a place looks the same in every product and every build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


class Cover(IntEnum):
    """Land-cover classes of the truth maps (``truth/places/<id>/landcover.tif``)."""

    WATER = 1
    URBAN = 2
    BROADLEAF_FOREST = 3
    CONIFER_FOREST = 4
    GRASSLAND = 5
    SHRUBLAND = 6
    BARE = 7
    WHEAT = 8
    MAIZE = 9
    RAPESEED = 10
    SUNFLOWER = 11
    MILLET = 12
    RICE = 13
    ORCHARD = 14
    GLACIER = 15
    WETLAND = 16


CROPS = (Cover.WHEAT, Cover.MAIZE, Cover.RAPESEED, Cover.SUNFLOWER, Cover.MILLET, Cover.RICE)
FORESTS = (Cover.BROADLEAF_FOREST, Cover.CONIFER_FOREST)
VEGETATED = (*FORESTS, Cover.GRASSLAND, Cover.SHRUBLAND, *CROPS, Cover.ORCHARD, Cover.WETLAND)


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts`` (never Python's salted ``hash``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to mean 0, std 1 (a cheap fractal-free random field)."""
    white = rng.standard_normal(shape).astype(np.float32)
    if sigma <= 3:
        field_ = ndimage.gaussian_filter(white, sigma, mode="wrap")
    else:  # the same periodic Gaussian filter, in the frequency domain: cost independent of sigma
        ky = np.fft.fftfreq(shape[0])[:, None]
        kx = np.fft.rfftfreq(shape[1])[None, :]
        gain = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
        field_ = np.fft.irfft2(np.fft.rfft2(white) * gain, s=shape).astype(np.float32)
    std = float(field_.std()) or 1.0
    return ((field_ - field_.mean()) / std).astype(np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], sigmas: tuple[float, ...]) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    for i, s in enumerate(sigmas):
        out += smooth_noise(rng, shape, s) / (i + 1)
    return out / float(out.std() or 1.0)


@dataclass(frozen=True)
class Profile:
    """How a kind of landscape is made: shares of cover, relief, water features, crops and climate."""

    climate: str  # temperate | mediterranean | alpine | sahel | tropical
    relief_m: float = 40.0
    coast: bool = False  # sea on the east side
    river_width_px: float = 3.0
    city_radius: float = 0.12  # share of the image side
    farmland: float = 0.6  # share of the land in crop parcels
    field_px: float = 14.0  # typical parcel side, pixels at 40 m
    crops: dict[Cover, float] = field(default_factory=dict)
    natural: dict[Cover, float] = field(default_factory=dict)  # shares of the non-farmed land
    lakes: int = 1


PROFILES: dict[str, Profile] = {
    "mediterranean_coast": Profile(
        "mediterranean",
        relief_m=120,
        coast=True,
        city_radius=0.16,
        farmland=0.6,
        field_px=6,
        crops={Cover.ORCHARD: 0.5, Cover.RICE: 0.25, Cover.MAIZE: 0.1, Cover.WHEAT: 0.15},
        natural={Cover.SHRUBLAND: 0.5, Cover.GRASSLAND: 0.3, Cover.BARE: 0.2},
        lakes=1,
    ),
    "mediterranean_hills": Profile(
        "mediterranean",
        relief_m=350,
        city_radius=0.06,
        farmland=0.3,
        field_px=8,
        crops={Cover.WHEAT: 0.5, Cover.SUNFLOWER: 0.3, Cover.MAIZE: 0.2},
        natural={Cover.BROADLEAF_FOREST: 0.45, Cover.CONIFER_FOREST: 0.2, Cover.SHRUBLAND: 0.3, Cover.GRASSLAND: 0.05},
    ),
    "alpine": Profile(
        "alpine",
        relief_m=2600,
        river_width_px=2,
        city_radius=0.05,
        farmland=0.0,
        natural={Cover.CONIFER_FOREST: 0.5, Cover.GRASSLAND: 0.3, Cover.BROADLEAF_FOREST: 0.2},
        lakes=0,
    ),
    "cropland_plain": Profile(
        "temperate",
        relief_m=30,
        river_width_px=1.5,
        city_radius=0.08,
        farmland=0.9,
        field_px=14,
        crops={Cover.WHEAT: 0.45, Cover.RAPESEED: 0.2, Cover.MAIZE: 0.2, Cover.SUNFLOWER: 0.15},
        natural={Cover.BROADLEAF_FOREST: 0.6, Cover.GRASSLAND: 0.4},
        lakes=0,
    ),
    "sahel": Profile(
        "sahel",
        relief_m=60,
        river_width_px=8,
        city_radius=0.14,
        farmland=0.45,
        field_px=5,
        crops={Cover.MILLET: 0.85, Cover.RICE: 0.15},
        natural={Cover.BARE: 0.45, Cover.GRASSLAND: 0.35, Cover.SHRUBLAND: 0.2},
    ),
    "river_plain": Profile(
        "temperate",
        relief_m=25,
        river_width_px=3,
        city_radius=0.07,
        farmland=0.85,
        field_px=8,
        crops={Cover.WHEAT: 0.35, Cover.MAIZE: 0.3, Cover.SUNFLOWER: 0.15, Cover.ORCHARD: 0.2},
        natural={Cover.GRASSLAND: 0.5, Cover.BROADLEAF_FOREST: 0.3, Cover.WETLAND: 0.2},
    ),
    "tropical_forest": Profile(
        "tropical",
        relief_m=120,
        river_width_px=4,
        city_radius=0.0,
        farmland=0.2,
        field_px=20,
        crops={Cover.MAIZE: 1.0},
        natural={Cover.BROADLEAF_FOREST: 0.85, Cover.GRASSLAND: 0.15},
    ),
    "city_fields": Profile(
        "temperate",
        relief_m=80,
        river_width_px=5,
        city_radius=0.3,
        farmland=0.75,
        field_px=10,
        crops={Cover.WHEAT: 0.4, Cover.SUNFLOWER: 0.3, Cover.MAIZE: 0.2, Cover.RAPESEED: 0.1},
        natural={Cover.GRASSLAND: 0.5, Cover.BROADLEAF_FOREST: 0.5},
    ),
}


@dataclass
class Ground:
    """A place's permanent ground: what the truth land-cover map shows, before any event."""

    cover: np.ndarray  # uint8 Cover, (n, n) on the 10 m-class grid
    elevation: np.ndarray  # float32 metres
    parcel: np.ndarray  # int32 parcel id (0 outside crop parcels)
    jitter: np.ndarray  # float32 per-pixel phenology shift in days (parcel-wise for crops)
    climate: str
    hemisphere: int  # +1 north, -1 south
    side_roads: tuple[int, ...] = ()  # rows of the side roads (tropical forest frontier)


def _pick(rng: np.random.Generator, shares: dict[Cover, float], n: int) -> np.ndarray:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], float)
    return np.array(keys, np.uint8)[rng.choice(len(keys), size=n, p=p / p.sum())]


def make_ground(seed: int, place_id: str, landscape: str, elevation_m: float, lat: float, n: int, res: float) -> Ground:
    """Draw the ground of a place on an (n, n) grid of ``res`` metre pixels."""
    prof = PROFILES[landscape]
    rng = rng_for(seed, place_id, "ground")
    scale = 40.0 / res  # profiles are written for 40 m pixels
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n

    # relief: broad hills plus detail; alpine: a deep valley across the middle
    relief = fractal_noise(rng, (n, n), (n / 4, n / 12, n / 40))
    if prof.climate == "alpine":
        valley = np.abs(yy - 0.55 - 0.08 * np.sin(xx * 5)) * 2
        valley = np.clip(valley, 0, 1)
        elevation = elevation_m + prof.relief_m * valley**0.8 + 250 * relief * (0.2 + valley)
    else:
        elevation = elevation_m + prof.relief_m * 0.5 * relief
    if prof.coast:
        coast_x = 0.78 + 0.05 * smooth_noise(rng, (1, n), n / 10)[0][:, None].T
        dist_coast = coast_x - xx  # > 0 on land
        elevation = np.where(dist_coast > 0, 2 + dist_coast * (elevation - elevation_m + prof.relief_m), -10)
    # a meandering river across the image, in a shallow valley
    phase = rng.uniform(0, 2 * np.pi)
    river_y = 0.45 + 0.12 * np.sin(xx * 2 * np.pi * rng.uniform(0.6, 1.2) + phase) + 0.04 * np.sin(xx * 17 + phase)
    d_river = np.abs(yy - river_y) * n
    elevation = elevation - prof.relief_m * 0.15 * np.exp(-d_river / (n / 6)) - 3 * np.exp(-d_river / 6)
    water = d_river < prof.river_width_px * scale / 2 + 0.5
    if prof.coast:
        water |= dist_coast <= 0
    for _ in range(prof.lakes):
        ly, lx = rng.uniform(0.15, 0.85, 2)
        r = rng.uniform(0.025, 0.05)
        lake = ((yy - ly) ** 2 + (xx - lx) ** 2) < r**2 * (1 + 0.3 * smooth_noise(rng, (n, n), n / 30))
        water |= lake
    cover = np.full((n, n), Cover.GRASSLAND, np.uint8)

    # natural land: patches by smooth noise quantiles
    nat = prof.natural
    if nat:
        patch = fractal_noise(rng, (n, n), (n / 10, n / 30))
        bounds = np.cumsum([nat[k] for k in nat]) / sum(nat.values())
        qs = np.quantile(patch, bounds[:-1])
        idx = np.searchsorted(qs, patch)
        cover = np.array(list(nat), np.uint8)[idx]
    if prof.climate == "alpine":
        above = elevation
        cover = np.where(above > 1900, Cover.GRASSLAND, cover)
        cover = np.where(above > 2700, Cover.BARE, cover)
        cover = np.where(above > 3200, Cover.GLACIER, cover).astype(np.uint8)

    # crop parcels: Voronoi cells over the farmed part of the land
    parcel = np.zeros((n, n), np.int32)
    jitter = rng.normal(0, 4, (n, n)).astype(np.float32)
    if prof.farmland > 0 and prof.crops:
        cell = prof.field_px * scale
        k = max(4, int((n / cell) ** 2))
        seeds = rng.uniform(0, n, (k, 2))
        _, nearest = cKDTree(seeds).query(np.stack([yy.ravel() * n, xx.ravel() * n], 1))
        nearest = nearest.reshape(n, n).astype(np.int32) + 1
        farm_noise = smooth_noise(rng, (n, n), n / 8)
        farmed_cells = np.zeros(k + 1, bool)
        sums = np.bincount(nearest.ravel(), weights=farm_noise.ravel(), minlength=k + 1)
        counts = np.bincount(nearest.ravel(), minlength=k + 1)
        cell_noise = np.where(counts > 0, sums / np.maximum(counts, 1), 1e9)
        farmed_cells[np.argsort(cell_noise)[: round(prof.farmland * (k + 1))]] = True
        farmed_cells[0] = False
        crop_of_cell = _pick(rng, prof.crops, k + 1)
        farmed = farmed_cells[nearest]
        if prof.climate == "alpine":
            farmed &= elevation < 1500
        cover = np.where(farmed, crop_of_cell[nearest], cover).astype(np.uint8)
        parcel = np.where(farmed, nearest, 0).astype(np.int32)
        jitter = np.where(farmed, rng.normal(0, 6, k + 1).astype(np.float32)[nearest], jitter)
        # field margins: a pixel of grass between parcels
        edge = ndimage.morphological_gradient(parcel, size=2) > 0
        cover = np.where(edge & farmed & (rng.random((n, n)) < 0.5), Cover.GRASSLAND, cover).astype(np.uint8)

    # the town: a blob around the place's centre (the place's coordinates are its centre)
    if prof.city_radius > 0:
        d_centre = np.hypot(yy - 0.5, xx - 0.5)
        blob = d_centre < prof.city_radius * (1 + 0.35 * smooth_noise(rng, (n, n), n / 20))
        roads = (np.abs(yy - 0.5) < 1.0 / n) | (np.abs(xx - 0.5) < 1.0 / n)
        cover = np.where(blob | (roads & (d_centre < prof.city_radius * 2.2)), Cover.URBAN, cover).astype(np.uint8)
        for _ in range(3):
            vy, vx = rng.uniform(0.1, 0.9, 2)
            village = np.hypot(yy - vy, xx - vx) < 0.025 * (1 + 0.3 * smooth_noise(rng, (n, n), n / 40))
            cover = np.where(village, Cover.URBAN, cover).astype(np.uint8)
        parcel = np.where(cover == Cover.URBAN, 0, parcel)
    side_roads: tuple[int, ...] = ()
    if prof.climate == "tropical":
        # the colonisation pattern of Rondonia ("fishbone"): a main road, side roads every ~1.2 km
        spacing = 1200 / res
        side_roads = tuple(int(r) for r in np.arange(rng.uniform(0, spacing), n, spacing))
        roads = np.abs(xx - 0.3 - 0.05 * yy) < 1.2 / n
        roads[list(side_roads), :] = True
        cover = np.where(roads, Cover.BARE, cover).astype(np.uint8)
    cover = np.where(water, Cover.WATER, cover).astype(np.uint8)
    parcel = np.where(water, 0, parcel)
    return Ground(
        cover=cover,
        elevation=elevation.astype(np.float32),
        parcel=parcel,
        jitter=jitter.astype(np.float32),
        climate=prof.climate,
        hemisphere=1 if lat >= 0 else -1,
        side_roads=side_roads,
    )
