"""SnapEarth errors -> HTTP, installed once on the app (titiler's ``add_exception_handlers`` pattern).

Every error body is JSON ``{"code", "description", "field"?, "request_id"?}`` (the STAC API error shape plus
the offending parameter), so a client always learns which parameter was wrong and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from stac_fastapi.types import errors as stac_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from snapearth import errors
from snapearth.api.responses import JSONResponse

logger = logging.getLogger("snapearth.api")

# Most specific class first: the first isinstance match wins.
STATUS_CODES: dict[type[Exception], int] = {
    errors.QuotaExceededError: 403,
    errors.InvalidInputError: 400,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.AuthenticationError: 401,
    errors.ForbiddenError: 403,
    errors.ProviderError: 502,
    errors.BackendError: 503,
    stac_errors.NotFoundError: 404,
    stac_errors.ConflictError: 409,
    stac_errors.InvalidQueryParameter: 400,
    stac_errors.ForeignKeyError: 424,
    stac_errors.DatabaseError: 503,
}


def status_for(exc: Exception) -> int:
    for cls, code in STATUS_CODES.items():
        if isinstance(exc, cls):
            return code
    return 500


def error_response(
    request: Request, status: int, code: str, description: str, field: str | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "description": description}
    if field:
        body["field"] = field
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: Sequence[Any]) -> str:
    """``("query", "limit")`` -> ``limit``; ``("body", "bbox", 2)`` -> ``bbox``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    parts = [p for p in parts if not p.isdigit() and not p.startswith("function-") and not p[:1].isupper()]
    return parts[0] if parts else "body"


def validation_error_message(exc: RequestValidationError) -> tuple[str, str]:
    problems = exc.errors()
    if not problems:
        return "request", "invalid request"
    first = problems[0]
    field = _field_of(first.get("loc", ()))
    reasons = "; ".join(f"{_field_of(p.get('loc', ()))}: {p.get('msg', 'invalid')}" for p in problems[:5])
    return field, reasons


def add_exception_handlers(app: FastAPI) -> None:
    async def snapearth_error(request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if status >= 500:
            logger.error("request failed: %s", message, exc_info=exc)
        return error_response(request, status, type(exc).__name__, message, field)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        field, reasons = validation_error_message(exc)
        return error_response(request, 400, "InvalidInputError", reasons, field)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        field = "bbox" if "bbox" in detail.lower() else None
        names = {400: "InvalidInputError", 401: "AuthenticationError", 403: "ForbiddenError", 404: "NotFoundError"}
        response = error_response(request, exc.status_code, names.get(exc.status_code, "HTTPError"), detail, field)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "InternalServerError", "internal error; see the server log")

    for cls in STATUS_CODES:
        app.add_exception_handler(cls, snapearth_error)
    app.add_exception_handler(errors.SnapEarthError, snapearth_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
