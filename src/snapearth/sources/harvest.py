"""Harvest: providers -> normalised, merged items in the catalog, incrementally and resumably.

State lives in catalog records (namespace ``harvest-state``), one per provider, collection and
area: the acquisition windows already covered. A run asks each provider only for the uncovered
parts of the requested window; while it pages through a provider sorted by acquisition time, it
records progress after every stored page, so an interrupted run resumes where it stopped. A
provider that fails is reported and skipped; the others still count.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry.base import BaseGeometry

from snapearth.catalog.base import Catalog, Item, SearchRequest, parse_rfc3339
from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError
from snapearth.sources.eodag_source import EodagGateway
from snapearth.sources.merge import identity_of, merge_batch, merge_items
from snapearth.sources.normalize import normalize_feature
from snapearth.sources.query import Window, area_key, check_collection, subtract, union

logger = logging.getLogger(__name__)

STATE_NAMESPACE = "harvest-state"
SETTLE = timedelta(days=1)  # recent acquisitions may still be published: not recorded as covered
RUNS_NAMESPACE = "harvest-runs"

COLLECTION_TITLES = {
    "sentinel-2-l2a": "Sentinel-2 Level-2A",
    "sentinel-2-l1c": "Sentinel-2 Level-1C",
    "sentinel-1-grd": "Sentinel-1 Level-1 GRD",
}


@dataclass
class ProviderReport:
    provider: str
    status: str = "pending"  # ok | up-to-date | failed
    error: str | None = None
    error_code: str | None = None
    windows: list[list[str]] = field(default_factory=list)
    pages: int = 0
    requests: int = 0
    results: int = 0


@dataclass
class HarvestReport:
    run_id: str
    collection: str
    area: str
    window: list[str]
    priority: list[str]
    providers: list[ProviderReport] = field(default_factory=list)
    inserted: int = 0
    merged: int = 0

    @property
    def failed(self) -> list[ProviderReport]:
        return [p for p in self.providers if p.status == "failed"]

    @property
    def all_failed(self) -> bool:
        return bool(self.providers) and len(self.failed) == len(self.providers)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_collection(catalog: Catalog, collection: str) -> None:
    try:
        catalog.get_collection(collection)
        return
    except NotFoundError:
        pass
    catalog.create_collection(
        {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": collection,
            "title": COLLECTION_TITLES.get(collection, collection),
            "description": f"{COLLECTION_TITLES.get(collection, collection)} products harvested by SnapEarth.",
            "license": "proprietary",
            "extent": {
                "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                "temporal": {"interval": [["2014-04-03T00:00:00Z", None]]},
            },
            "links": [
                {
                    "rel": "license",
                    "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
                }
            ],
        },
        exist_ok=True,
    )


def store_items(catalog: Catalog, collection: str, items: Sequence[Item], priority: Sequence[str]) -> tuple[int, int]:
    """Merge a batch with itself and with what the catalog holds, then upsert it. Returns (new, merged)."""
    batch = merge_batch(items, priority)
    ready: list[Item] = []
    merged = 0
    for item in batch:
        existing: Item | None
        try:
            existing = catalog.get_item(collection, item["id"])
        except NotFoundError:
            existing = _same_product(catalog, collection, item)
        if existing is None:
            ready.append(item)
            continue
        ready.append(merge_items(existing, item, priority))
        merged += 1
    if ready:
        report = catalog.add_items(ready, mode="upsert")
        if report.refused:
            reasons = "; ".join(str(r) for r in report.refused[:3])
            raise InvalidInputError(f"catalog refused {len(report.refused)} items: {reasons}", field="item")
    return len(ready) - merged, merged


def _same_product(catalog: Catalog, collection: str, item: Item) -> Item | None:
    """For a result without an ESA name (so without a canonical id): the stored item with the same identity."""
    identity = identity_of(item)
    if identity.product is not None or identity.place == "unknown":
        return None
    place_field = "grid:code" if identity.place.startswith("MGRS-") else None
    query: dict[str, dict[str, Any]] = {"platform": {"eq": identity.platform}}
    if place_field:
        query[place_field] = {"eq": identity.place}
    second = Window(identity.when, identity.when + timedelta(seconds=1))
    request = SearchRequest(collections=[collection], datetime="/".join(second.as_list()), query=query, limit=10)
    for candidate in catalog.search(request).items:
        if identity_of(candidate).matches(identity):
            return candidate
    return None


@dataclass
class HarvestState:
    """Covered windows of one provider/collection/area, as kept in a catalog record."""

    key: str
    covered: list[Window] = field(default_factory=list)
    last_success: str | None = None

    @classmethod
    def load(cls, catalog: Catalog, key: str) -> HarvestState:
        record = catalog.get_record(STATE_NAMESPACE, key) or {}
        return cls(
            key=key,
            covered=[Window.from_list(w) for w in record.get("covered", [])],
            last_success=record.get("last_success"),
        )

    def add(self, window: Window) -> None:
        self.covered = union([*self.covered, window])

    def save(self, catalog: Catalog, extra: dict[str, Any]) -> None:
        catalog.put_record(
            STATE_NAMESPACE,
            self.key,
            {"covered": [w.as_list() for w in self.covered], "last_success": self.last_success, **extra},
        )


def priority_order(gateway: EodagGateway | None, providers: Sequence[str], explicit: Sequence[str] | None) -> list[str]:
    """Explicit order first; then EODAG's configured priorities (higher first); then the order given."""
    ordered = [p for p in (explicit or []) if p in providers]
    configured = gateway.priorities() if gateway is not None else {}
    rest = sorted(
        (p for p in providers if p not in ordered),
        key=lambda p: (-configured.get(p, 0), list(providers).index(p)),
    )
    return ordered + rest


def _provider_items(
    features: Iterable[dict[str, Any]], provider: str, collection: str, url: str | None, now: datetime
) -> list[Item]:
    return [
        normalize_feature(f, provider=provider, collection=collection, provider_url=url, harvested=now)
        for f in features
    ]


def harvest(
    catalog: Catalog,
    gateway: EodagGateway,
    *,
    providers: Sequence[str],
    collection: str,
    geometry: BaseGeometry,
    window: Window,
    priority: Sequence[str] | None = None,
    full: bool = False,
    settle: timedelta = SETTLE,
    progress: Callable[[str], None] | None = None,
) -> HarvestReport:
    """Harvest ``collection`` over ``geometry`` and ``window`` from each provider into ``catalog``.

    The last ``settle`` before now is searched but not recorded as covered: providers publish products
    hours after acquisition, so the next run asks for that stretch again (upserts make it harmless).
    """
    check_collection(collection)
    if not providers:
        raise InvalidInputError("provider: give at least one provider", field="provider")
    if len(set(providers)) != len(providers):
        raise InvalidInputError("provider: a provider is listed twice", field="provider")
    for provider in providers:  # every input is checked before anything is written
        gateway.check_provider(provider)
        gateway.eodag_collection(provider, collection)
    order = priority_order(gateway, providers, priority)
    # merging also ranks providers harvested earlier (their routes are in the catalog already)
    merge_order = [*(priority or []), *(p for p in order if p not in (priority or []))]
    area = area_key(geometry)
    run = HarvestReport(
        run_id=uuid.uuid4().hex[:12],
        collection=collection,
        area=area,
        window=window.as_list(),
        priority=merge_order,
    )
    ensure_collection(catalog, collection)
    say = progress or (lambda message: logger.info(message))
    settled = datetime.now(UTC) - settle
    for provider in order:
        report = ProviderReport(provider)
        run.providers.append(report)
        key = f"{provider}|{collection}|{area}"
        state = HarvestState.load(catalog, key)
        gaps = [window] if full else subtract(window, state.covered)
        report.windows = [g.as_list() for g in gaps]
        if not gaps:
            report.status = "up-to-date"
            say(f"{provider}: up to date for {collection} in {window.as_list()}")
            continue
        sorted_by_start = gateway.sorts_by_start(provider)
        url = gateway.provider_url(provider)
        try:
            for gap in gaps:
                latest: datetime | None = None
                for page in gateway.iter_pages(provider, collection, geometry, gap.start, gap.end):
                    report.pages += 1
                    report.requests += page.requests
                    now = datetime.now(UTC)
                    items = _provider_items(page.features, provider, collection, url, now)
                    report.results += len(items)
                    inserted, merged = store_items(catalog, collection, items, merge_order)
                    run.inserted += inserted
                    run.merged += merged
                    if sorted_by_start and items:
                        # everything acquired before the latest start seen is stored: checkpoint it
                        starts = [
                            parse_rfc3339(i["properties"].get("start_datetime") or i["properties"]["datetime"])
                            for i in items
                        ]
                        latest = max([*starts, *([latest] if latest else [])])
                        if min(latest, settled) > gap.start:
                            state.add(Window(gap.start, min(latest, settled)))
                            state.save(catalog, {"provider": provider, "collection": collection, "area": area})
                    say(f"{provider}: page {report.pages}, {len(items)} results stored")
                if min(gap.end, settled) > gap.start:
                    state.add(Window(gap.start, min(gap.end, settled)))
                state.save(catalog, {"provider": provider, "collection": collection, "area": area})
            report.status = "ok"
            state.last_success = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            state.save(catalog, {"provider": provider, "collection": collection, "area": area})
        except SnapEarthError as error:
            if isinstance(error, InvalidInputError) and error.field in ("collection", "provider"):
                raise
            report.status = "failed"
            report.error = error.message
            report.error_code = type(error).__name__
            say(f"{provider}: FAILED, skipped: {error.message}")
    catalog.put_record(RUNS_NAMESPACE, run.run_id, {**run.as_dict(), "finished": datetime.now(UTC).isoformat()})
    return run
