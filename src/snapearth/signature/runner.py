"""`enrich`: signatures for the items that have none, in parallel on Dask; then events and the similarity index.

The driver selects the items, ships each one (a small JSON dict) to a worker, and writes results back in
batches with the catalog's upsert. A worker reads the item's bands window by window (bounded memory) and
returns the signature or the reason it could not compute one; a failure is recorded (catalog records,
namespace ``signature-failures``) and reported, never raised through the run, and never stored as a signature.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snapearth.catalog.base import Catalog, Item, SearchRequest
from snapearth.errors import NotFoundError, SnapEarthError
from snapearth.signature.compute import PREFIX, SIGNATURE_VERSION, ItemSignature, compute_signature
from snapearth.signature.embeddings import SimilarityIndex
from snapearth.signature.events import EVENTS_COLLECTION, detect_events, place_key

FAILURES = "signature-failures"
EMBEDDINGS = "signature-embeddings"
EVENT_PLACES = "signature-events"
_BATCH = 200

EVENTS_COLLECTION_JSON: dict[str, Any] = {
    "type": "Collection",
    "stac_version": "1.1.0",
    "id": EVENTS_COLLECTION,
    "title": "Detected events",
    "description": "Floods, wildfires, snow, droughts, deforestation and harvests detected by EarthSignature "
    "from Sentinel-2 and Sentinel-1 time series; geometry is the affected area.",
    "license": "CC-BY-4.0",
    "extent": {
        "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
        "temporal": {"interval": [["2015-06-23T00:00:00Z", None]]},
    },
    "summaries": {PREFIX + "event_type": ["flood", "wildfire", "snow", "drought", "deforestation", "harvest"]},
    "links": [],
}


@dataclass
class Failure:
    collection: str
    item_id: str
    field: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "item": self.item_id, "field": self.field, "reason": self.reason}


@dataclass
class EnrichReport:
    selected: int = 0
    enriched: int = 0
    failures: list[Failure] = field(default_factory=list)
    events: int = 0
    events_removed: int = 0
    pixels: int = 0
    seconds: float = 0.0
    peak_worker_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "enriched": self.enriched,
            "failed": len(self.failures),
            "failures": [f.as_dict() for f in self.failures],
            "events": self.events,
            "events_removed": self.events_removed,
            "pixels": self.pixels,
            "seconds": round(self.seconds, 3),
            "pixels_per_second": round(self.pixels / self.seconds, 1) if self.seconds else None,
            "peak_worker_rss_mb": round(self.peak_worker_rss_mb, 1),
        }


def signature_task(item: Item, out_dir: str | None) -> dict[str, Any]:
    """What a worker runs for one item: a signature or a failure, never an exception."""
    try:
        signature = compute_signature(item, out_dir=Path(out_dir) if out_dir else None)
        result: dict[str, Any] = {"ok": True, "signature": signature}
    except SnapEarthError as exc:
        result = {"ok": False, "field": exc.field, "reason": exc.message}
    except Exception as exc:  # a corrupt file can fail deep in GDAL/numpy: the item fails, the run goes on
        result = {"ok": False, "field": None, "reason": f"{type(exc).__name__}: {exc}"}
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def select_items(
    catalog: Catalog, collections: list[str], *, since: str | None = None, force: bool = False
) -> Iterator[Item]:
    """Items of ``collections`` (acquired since ``since``) without a current signature (all with ``force``)."""
    request = SearchRequest(collections=collections, datetime=f"{since}/.." if since else None, limit=500)
    for item in catalog.iter_items(request):
        if force or item.get("properties", {}).get(PREFIX + "version") != SIGNATURE_VERSION:
            yield item


def default_collections(catalog: Catalog) -> list[str]:
    return sorted(c["id"] for c in catalog.list_collections() if str(c["id"]).startswith(("sentinel-2", "sentinel-1")))


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client on ``scheduler`` (tcp://...), or on a LocalCluster of single-threaded worker processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


ProgressHook = Callable[[int, int], None]


def enrich(
    catalog: Catalog,
    *,
    data_dir: Path,
    collections: list[str] | None = None,
    since: str | None = None,
    force: bool = False,
    scheduler: str | None = None,
    workers: int = 2,
    client: Any = None,
    progress: ProgressHook | None = None,
    events: bool = True,
) -> EnrichReport:
    """Enrich the selected items, then recompute the events of the places they belong to."""
    started = time.perf_counter()
    chosen = collections or default_collections(catalog)
    for name in chosen:
        catalog.get_collection(name)  # NotFoundError naming the collection
    items = list(select_items(catalog, chosen, since=since, force=force))
    report = EnrichReport(selected=len(items))
    mask_dir = data_dir / "signature" / "masks"
    if items:
        if client is not None:
            _run(client, catalog, items, mask_dir, data_dir, report, progress)
        else:
            with dask_client(scheduler, workers) as own:
                _run(own, catalog, items, mask_dir, data_dir, report, progress)
    if events:
        touched = {key for item in items if (key := place_key(_with_sig_assets(item))) is not None}
        if force or touched:
            _events(catalog, chosen, touched if not force else None, report)
    report.seconds = time.perf_counter() - started
    return report


def _with_sig_assets(item: Item) -> Item:
    """The place of an item as if enriched (optical items place by tile, radar by orbit)."""
    assets = dict(item.get("assets", {}))
    if "B04" in assets:
        assets.setdefault("signature-cloud", {})
    elif "vv" in assets:
        assets.setdefault("signature-water", {})
    return {**item, "assets": assets}


def _run(
    client: Any,
    catalog: Catalog,
    items: list[Item],
    mask_dir: Path,
    data_dir: Path,
    report: EnrichReport,
    progress: ProgressHook | None,
) -> None:
    from distributed import as_completed

    by_key = {(str(i.get("collection")), str(i["id"])): i for i in items}
    futures = [
        client.submit(signature_task, item, str(mask_dir), key=f"signature-{item.get('collection')}-{item['id']}")
        for item in items
    ]
    origin = {f.key: (str(i.get("collection")), str(i["id"])) for f, i in zip(futures, items, strict=True)}
    pending: list[Item] = []
    indexes: dict[str, SimilarityIndex] = {}
    for done, future in enumerate(as_completed(futures), start=1):
        collection, item_id = origin[future.key]
        try:
            result = future.result()
        except Exception as exc:  # the worker itself died (killed for memory, ...)
            result = {"ok": False, "field": None, "reason": f"worker failed: {type(exc).__name__}: {exc}"}
        future.release()
        report.peak_worker_rss_mb = max(report.peak_worker_rss_mb, float(result.get("rss_mb", 0.0)))
        record_key = f"{collection}/{item_id}"
        if result["ok"]:
            signature: ItemSignature = result["signature"]
            pending.append(signature.apply(by_key[(collection, item_id)]))
            report.enriched += 1
            report.pixels += signature.pixels
            catalog.put_record(EMBEDDINGS, record_key, {"vector": signature.vector, "chips": signature.chips})
            index = indexes.get(collection) or indexes.setdefault(collection, SimilarityIndex(data_dir, collection))
            index.upsert(item_id, signature.vector, signature.chips)
            if catalog.get_record(FAILURES, record_key) is not None:
                catalog.delete_record(FAILURES, record_key)
        else:
            failure = Failure(collection, item_id, result.get("field"), str(result["reason"]))
            report.failures.append(failure)
            catalog.put_record(FAILURES, record_key, {**failure.as_dict(), "at": datetime.now(UTC).isoformat()})
        if len(pending) >= _BATCH:
            _flush(catalog, pending, report)
        if progress is not None:
            progress(done, len(items))
    _flush(catalog, pending, report)
    for index in indexes.values():
        index.save()


def _flush(catalog: Catalog, pending: list[Item], report: EnrichReport) -> None:
    if not pending:
        return
    load = catalog.add_items(list(pending), mode="upsert")
    for refusal in load.refused:
        report.enriched -= 1
        report.failures.append(Failure("", refusal.item_id or "", refusal.field, f"catalog refused: {refusal.reason}"))
    pending.clear()


def _events(catalog: Catalog, collections: list[str], places: set[str] | None, report: EnrichReport) -> None:
    """Recompute the events of ``places`` (all when None) from every enriched item of those places."""
    enriched = [
        item
        for item in catalog.iter_items(SearchRequest(collections=collections, limit=500))
        if item.get("properties", {}).get(PREFIX + "version")
    ]
    if places is not None:
        places = _with_neighbours(enriched, places)
    items = [item for item in enriched if places is None or place_key(item) in places]
    result = detect_events(items)
    try:
        catalog.get_collection(EVENTS_COLLECTION)
    except NotFoundError:
        catalog.create_collection(EVENTS_COLLECTION_JSON, exist_ok=True)
    by_place: dict[str, list[str]] = {}
    for ev in result.events:
        for place in ev["properties"][PREFIX + "place"].split("+"):
            by_place.setdefault(place, []).append(ev["id"])
    if result.events:
        catalog.add_items(result.events, mode="upsert")
    report.events = len(result.events)
    fresh = {ev["id"] for ev in result.events}
    recompute = places if places is not None else {place_key(i) for i in items} - {None}
    for place in sorted(p for p in recompute if p):
        old = catalog.get_record(EVENT_PLACES, place) or {"ids": []}
        for stale in sorted(set(old["ids"]) - fresh):
            try:
                catalog.delete_item(EVENTS_COLLECTION, stale)
                report.events_removed += 1
            except NotFoundError:
                pass
        catalog.put_record(EVENT_PLACES, place, {"ids": sorted(by_place.get(place, []))})
    changed = list(_with_updates(items, result.item_updates))
    if changed:
        catalog.add_items(changed, mode="upsert")
    for item_id, reason in result.failures.items():
        report.failures.append(Failure("", item_id, "events", reason))


def _with_neighbours(items: list[Item], places: set[str]) -> set[str]:
    """``places`` and the places overlapping them (radar and optical evidence of one flood are merged)."""
    import shapely
    from shapely.geometry import shape

    footprints: dict[str, list[Any]] = {}
    for item in items:
        key = place_key(item)
        if key is not None and item.get("geometry"):
            footprints.setdefault(key, []).append(shape(item["geometry"]))
    merged = {key: shapely.union_all(geoms) for key, geoms in footprints.items()}
    wanted = [merged[p] for p in places if p in merged]
    if not wanted:
        return set(places)
    area = shapely.union_all(wanted)
    return set(places) | {key for key, geom in merged.items() if geom.intersects(area)}


def _with_updates(items: Iterable[Item], updates: dict[str, dict[str, Any]]) -> Iterator[Item]:
    for item in items:
        extra = updates.get(str(item["id"]))
        if not extra:
            continue
        props = item["properties"]
        if all(props.get(k) == v for k, v in extra.items()):
            continue
        yield {**item, "properties": {**props, **extra}}
