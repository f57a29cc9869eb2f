"""EarthSearch over HTTP: ``GET /earthsearch?q=...&now=...`` (ranked ItemCollection) and ``GET /earthsearch/parse``.

The parse object is the one ``snapearth parse`` prints; the answer is the one ``snapearth ask`` prints.
"""

from __future__ import annotations

import threading
from datetime import date
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from snapearth.catalog import Catalog
from snapearth.config import Settings
from snapearth.earthsearch.answer import MAX_LIMIT, Answerer
from snapearth.earthsearch.parser import get_parser
from snapearth.earthsearch.refine import refine
from snapearth.earthsearch.suggest import Suggester
from snapearth.errors import InvalidInputError

PREFIX = "/earthsearch"
MAX_Q_CHARS = 10_000

QueryText = Annotated[str, Query(description="What to look for, in plain words (en, fr, de, es, it).")]
NowParam = Annotated[
    str | None, Query(description="Reference day for relative dates (YYYY-MM-DD); default: today (UTC).")
]


def _now(value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"now: {value!r} is not a date (expected YYYY-MM-DD)", field="now") from None


def _q(value: str) -> str:
    if len(value) > MAX_Q_CHARS:
        raise InvalidInputError(f"q: {len(value)} characters, more than {MAX_Q_CHARS}", field="q")
    return value


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",")]


@cache
def _suggester() -> Suggester:
    """One completion index per process, not per app (it is built from the shared gazetteer: ~0.5 s of CPU).

    Its warm-up starts in the background with the first app, so a client's first keystroke does not wait for it.
    """
    suggester = Suggester()
    threading.Thread(target=suggester.warm_up, name="earthsearch-suggest-warm-up", daemon=True).start()
    return suggester


def create_router(catalog: Catalog, settings: Settings | None = None) -> APIRouter:
    """The EarthSearch endpoints over ``catalog`` (mount with ``prefix=PREFIX``)."""
    router = APIRouter(tags=["EarthSearch"])
    parser = get_parser()
    answerer = Answerer(catalog, parser)

    suggester = _suggester()

    @router.get("", summary="Search the archive in plain words: ranked images with reasons, events, pair")
    async def earthsearch(
        q: QueryText = "",
        now: NowParam = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Images to return.")] = 10,
        bbox: Annotated[
            str | None, Query(description="Replaces the understood place: west,south,east,north, or 'none'.")
        ] = None,
        datetime: Annotated[
            str | None,
            Query(description="Replaces the understood period: RFC 3339 interval ('..' open), or 'none'."),
        ] = None,
        max_cloud_cover: Annotated[
            float | None, Query(description="Replaces the understood cloud limit, percent (100: no limit).")
        ] = None,
        collections: Annotated[
            str | None, Query(description="Replaces the understood sensor: comma-separated collection ids, or 'any'.")
        ] = None,
        themes: Annotated[
            str | None, Query(description="Replaces the understood themes: comma-separated, or 'none'.")
        ] = None,
    ) -> dict[str, Any]:
        text, reference = _q(q), _now(now)

        def answer() -> dict[str, Any]:
            parsed = refine(
                parser.parse(text, reference),
                bbox=bbox,
                datetime_=datetime,
                max_cloud_cover=max_cloud_cover,
                collections=_list(collections),
                themes=_list(themes),
                today=reference,
            )
            return answerer.answer(parsed, limit=limit)

        return await run_in_threadpool(answer)

    @router.get("/suggest", summary="Completions of what is being typed: places and theme words")
    async def suggest(
        q: QueryText = "",
        limit: Annotated[int, Query(ge=1, le=20, description="Suggestions to return.")] = 8,
    ) -> dict[str, Any]:
        found = await run_in_threadpool(suggester.suggest, _q(q), limit)
        return {"query": q, "suggestions": [s.as_dict() for s in found]}

    @router.get("/parse", summary="What EarthSearch understands of a query (place, dates, conditions, themes)")
    async def parse(q: QueryText = "", now: NowParam = None) -> dict[str, Any]:
        text, reference = _q(q), _now(now)
        parsed = await run_in_threadpool(parser.parse, text, reference)
        return parsed.to_dict()

    return router
