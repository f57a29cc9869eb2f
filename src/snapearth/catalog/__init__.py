"""The STAC catalog: one contract, an embedded (SQLite) and a scale (PostgreSQL/pgstac) backend."""

from __future__ import annotations

from snapearth.catalog.base import (
    Catalog,
    Collection,
    Fields,
    Item,
    LoadReport,
    Refusal,
    SearchPage,
    SearchRequest,
    SortKey,
)
from snapearth.errors import InvalidInputError


def open_catalog(url: str) -> Catalog:
    """Open the catalog behind ``url``: ``sqlite:///path.db`` or ``postgresql://...``."""
    if url.startswith("sqlite://"):
        from snapearth.catalog.sqlite import SQLiteCatalog

        return SQLiteCatalog(url)
    if url.startswith(("postgresql://", "postgres://")):
        from snapearth.catalog.pgstac import PgSTACCatalog

        return PgSTACCatalog(url)
    raise InvalidInputError(
        f"unsupported catalog URL {url!r}: use sqlite:///path/catalog.db or postgresql://...",
        field="catalog",
    )


__all__ = [
    "Catalog",
    "Collection",
    "Fields",
    "Item",
    "LoadReport",
    "Refusal",
    "SearchPage",
    "SearchRequest",
    "SortKey",
    "open_catalog",
]
