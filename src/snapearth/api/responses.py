"""JSON responses serialised with orjson (fast, and numpy/datetime aware)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # dicts with non-string keys (numpy statistics, counts by number): an option that costs a third more
            # on every dict, so only here, not on the large STAC pages whose keys are all strings.
            return orjson.dumps(content, option=_OPTIONS | orjson.OPT_NON_STR_KEYS)


class GeoJSONResponse(JSONResponse):
    media_type = "application/geo+json"


class SchemaJSONResponse(JSONResponse):
    media_type = "application/schema+json"
