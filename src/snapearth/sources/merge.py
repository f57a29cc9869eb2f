"""One product, many providers: one item, every access route kept (STAC alternate-assets).

Identity is what a product *is*: platform, acquisition time, tile (Sentinel-2) or orbit
(Sentinel-1), and the ESA product name when known. Two providers' features with the same
identity become one item; the provider with the higher priority gives the top-level asset hrefs
and wins on properties, the others are kept under each asset's ``alternate`` map, keyed by provider.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snapearth.catalog.base import Item, parse_rfc3339
from snapearth.sources.normalize import SOURCES_FIELD, extensions_of

ALTERNATE_NAME = "alternate:name"


@dataclass(frozen=True)
class Identity:
    collection: str
    platform: str
    when: datetime  # to the second
    place: str  # "MGRS-31TCJ" or "orbit-42968"
    product: str | None  # the ESA product name, when known

    def matches(self, other: Identity) -> bool:
        if (self.collection, self.platform, self.when, self.place) != (
            other.collection,
            other.platform,
            other.when,
            other.place,
        ):
            return False
        return self.product is None or other.product is None or self.product == other.product


def identity_of(item: Item) -> Identity:
    props = item["properties"]
    place = props.get("grid:code")
    if not place:
        orbit = props.get("sat:absolute_orbit") or props.get("sat:relative_orbit")
        place = f"orbit-{orbit}" if orbit is not None else "unknown"
    product = props.get("s2:product_uri") or (item["id"] if props.get("sar:product_type") else None)
    if isinstance(product, str) and product.endswith(".SAFE"):
        product = product[: -len(".SAFE")]
    return Identity(
        collection=item.get("collection", ""),
        platform=str(props.get("platform", "")),
        when=parse_rfc3339(props["datetime"]).replace(microsecond=0),
        place=str(place),
        product=product,
    )


def providers_of(item: Item) -> list[str]:
    return [s["provider"] for s in item["properties"].get(SOURCES_FIELD, [])]


def _routes(item: Item) -> dict[str, dict[str, dict[str, Any]]]:
    """asset key -> provider -> asset (primary and alternates flattened)."""
    primary = providers_of(item)[0] if providers_of(item) else "unknown"
    routes: dict[str, dict[str, dict[str, Any]]] = {}
    for key, asset in item.get("assets", {}).items():
        asset = copy.deepcopy(asset)
        alternates = asset.pop("alternate", {}) or {}
        owner = asset.pop(ALTERNATE_NAME, primary)
        routes.setdefault(key, {})[owner] = asset
        for name, alternate in alternates.items():
            alt = {k: v for k, v in asset.items() if k not in ("href", "file:checksum", "file:size")}
            alt.update(alternate)
            routes[key][name] = alt
    return routes


def _rank(priority: Sequence[str]) -> dict[str, int]:
    return {name: index for index, name in enumerate(priority)}


def merge_items(existing: Item, incoming: Item, priority: Sequence[str]) -> Item:
    """Merge two items of the same product; ``priority`` lists providers, most trusted first."""
    rank = _rank(priority)

    def order(provider: str) -> tuple[int, str]:
        return (rank.get(provider, len(rank)), provider)

    sources: dict[str, dict[str, Any]] = {s["provider"]: s for s in existing["properties"].get(SOURCES_FIELD, [])}
    for source in incoming["properties"].get(SOURCES_FIELD, []):
        sources[source["provider"]] = source
    ordered = sorted(sources, key=order)
    top = ordered[0]
    incoming_providers = set(providers_of(incoming))
    winner, other = (incoming, existing) if top in incoming_providers else (existing, incoming)

    routes = _routes(existing)
    for provider in incoming_providers:
        for per_provider in routes.values():
            per_provider.pop(provider, None)
    for key, per_provider in _routes(incoming).items():
        routes.setdefault(key, {}).update(per_provider)

    assets: dict[str, dict[str, Any]] = {}
    for key, per_provider in routes.items():
        if not per_provider:
            continue
        names = sorted(per_provider, key=order)
        main = copy.deepcopy(per_provider[names[0]])
        if len(names) > 1:
            main[ALTERNATE_NAME] = names[0]
            main["alternate"] = {
                name: {
                    k: v
                    for k, v in per_provider[name].items()
                    if k in ("href", "title", "type", "file:checksum", "file:size", "storage:refs")
                }
                for name in names[1:]
            }
        assets[key] = main

    props = copy.deepcopy(other["properties"])
    props.update(copy.deepcopy(winner["properties"]))
    props[SOURCES_FIELD] = [sources[name] for name in ordered]
    hosts: dict[str, dict[str, Any]] = {}
    for candidate in (*existing["properties"].get("providers", []), *incoming["properties"].get("providers", [])):
        hosts[candidate["name"]] = candidate
    props["providers"] = [hosts[name] for name in sorted(hosts, key=lambda n: (n not in sources, order(n)))]

    merged = copy.deepcopy(winner)
    merged["id"] = existing["id"]
    merged["properties"] = props
    merged["assets"] = assets
    merged["stac_extensions"] = sorted(set(extensions_of(merged)) | set(winner.get("stac_extensions", [])))
    return merged


def merge_batch(items: Iterable[Item], priority: Sequence[str]) -> list[Item]:
    """Collapse a batch from several providers: same identity -> one item."""
    merged: list[tuple[Identity, Item]] = []
    by_id: dict[str, int] = {}
    by_core: dict[tuple[str, str, datetime, str], list[int]] = {}
    for item in items:
        ident = identity_of(item)
        core = (ident.collection, ident.platform, ident.when, ident.place)
        index = by_id.get(item["id"])
        if index is None:
            index = next((i for i in by_core.get(core, []) if merged[i][0].matches(ident)), None)
        if index is None:
            by_id[item["id"]] = len(merged)
            by_core.setdefault(core, []).append(len(merged))
            merged.append((ident, item))
        else:
            kept_ident, kept = merged[index]
            merged[index] = (kept_ident, merge_items(kept, item, priority))
    return [item for _, item in merged]
