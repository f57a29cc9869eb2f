"""The STAC catalog: one contract, an embedded (SQLite) and a scale (PostgreSQL/pgstac) backend.

- ``base``: the ``Catalog`` protocol, ``SearchRequest``/``SearchPage``, load reports;
- ``search_params``: a request checked and normalised once (bbox, intersects, datetime, CQL2 text/JSON and
  ``query`` as one CQL2 JSON tree, sortby, fields, limit, free text) -> ``ParsedSearch`` for every backend;
- ``validate``: item and collection checks (refusals name the item, the field and the reason);
- ``geometry``: GeoJSON checks and antimeridian-aware boxes; ``aggregation``: aggregation names and shapes;
- ``sqlite`` (+ ``sqlite_cql2``, CQL2 -> parameterised SQL) and ``pgstac``: the backends;
- ``load``: streamed loaders (ndjson, ItemCollection, static catalogs); ``cli``: ``snapearth catalog ...``.
"""

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
