"""EarthSearch: natural-language search over the archive (parse a query, answer it from the catalog)."""

from __future__ import annotations

from snapearth.earthsearch.parser import ParsedQuery, QueryParser, get_parser, parse

__all__ = ["ParsedQuery", "QueryParser", "get_parser", "parse"]
