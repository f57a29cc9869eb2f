"""The catalog contract: what every backend (sqlite, pgstac) implements.

Items and collections travel as plain STAC JSON dicts (what the API serves and loaders read);
pystac is used at the edges for typed access and validation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Item = dict[str, Any]
Collection = dict[str, Any]
LoadMode = Literal["insert", "upsert", "ignore"]


class SortKey(BaseModel):
    field: str
    direction: Literal["asc", "desc"] = "asc"


class Fields(BaseModel):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class SearchRequest(BaseModel):
    """A STAC item search, backend-neutral; ``catalog.search_params`` validates and normalises it."""

    model_config = ConfigDict(extra="forbid")

    bbox: list[float] | None = None
    intersects: dict[str, Any] | None = None
    datetime: str | None = None
    collections: list[str] | None = None
    ids: list[str] | None = None
    filter: dict[str, Any] | str | None = None
    filter_lang: Literal["cql2-text", "cql2-json"] | None = None
    query: dict[str, dict[str, Any]] | None = None
    q: list[str] | None = None
    sortby: list[SortKey] | None = None
    fields: Fields | None = None
    limit: int = 10
    token: str | None = None
    count: bool = True


@dataclass
class SearchPage:
    items: list[Item]
    number_matched: int | None
    next_token: str | None = None
    prev_token: str | None = None


@dataclass
class Refusal:
    item_id: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"item {self.item_id!r}" if self.item_id else "item"
        return f"{where}: {self.field or 'item'}: {self.reason}"


@dataclass
class LoadReport:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    refused: list[Refusal] = field(default_factory=list)
    batches: int = 0

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated

    def as_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "skipped": self.skipped,
            "refused": [vars(r) for r in self.refused],
            "batches": self.batches,
        }


ProgressCallback = Callable[[int], None]


@runtime_checkable
class Catalog(Protocol):
    """A STAC store. Open one with ``snapearth.catalog.open_catalog(url)``."""

    url: str

    def close(self) -> None: ...

    # collections
    def create_collection(self, collection: Collection, *, exist_ok: bool = False) -> None: ...
    def update_collection(self, collection: Collection) -> None: ...
    def get_collection(self, collection_id: str) -> Collection: ...
    def list_collections(self) -> list[Collection]: ...
    def delete_collection(self, collection_id: str, *, force: bool = False) -> None: ...

    # items
    def add_items(
        self,
        items: Iterable[Item],
        *,
        mode: LoadMode = "insert",
        batch_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load items, one transaction per batch (a batch is stored whole or not at all).

        Bad items (``validate.check_item``) and items of unknown collections are refused in the report, the
        rest go on. An item already there (same collection and id) is refused in ``insert`` mode, skipped in
        ``ignore`` mode and replaced in ``upsert`` mode. ``progress`` gets the number of items handled since
        its last call.
        """
        ...

    def get_item(self, collection_id: str, item_id: str) -> Item: ...
    def delete_item(self, collection_id: str, item_id: str) -> None: ...

    def refresh_indexes(self, progress: ProgressCallback | None = None) -> int:
        """Bring derived indexes up to date after bulk loads (the embedded catalog's free-text index); searches
        are right before it too, only slower. Returns how many items were indexed; ``progress`` gets counts."""
        ...

    # search
    def search(self, request: SearchRequest) -> SearchPage:
        """One page; ``next_token`` (opaque, backend-specific) continues it with the same request."""
        ...

    def iter_items(self, request: SearchRequest) -> Iterator[Item]:
        """Every match, streamed page by page (``request.limit`` is the page size)."""
        ...

    def aggregate(self, request: SearchRequest, aggregations: list[str]) -> dict[str, Any]:
        """``{"aggregations": [...]}`` in the STAC aggregation extension's shapes; names in ``catalog.aggregation``."""
        ...

    # small records kept beside the items (harvest state, jobs, users, ...)
    def put_record(self, namespace: str, key: str, value: dict[str, Any]) -> None: ...
    def get_record(self, namespace: str, key: str) -> dict[str, Any] | None: ...
    def list_records(self, namespace: str) -> list[tuple[str, dict[str, Any]]]: ...
    def delete_record(self, namespace: str, key: str) -> None: ...


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset) to an aware datetime."""
    from datetime import UTC

    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
