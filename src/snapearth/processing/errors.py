"""openEO error objects: ``{"code", "message"}`` with the HTTP status the openEO API assigns to each code.

Every error raised on purpose by ``snapearth.processing`` is an :class:`OpenEOError` (a ``SnapEarthError``), so
the openEO router can answer with the code the openEO clients understand and never a 5xx for bad input.
"""

from __future__ import annotations

from snapearth.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    SnapEarthError,
)

# The openEO API's error codes (errors.json of openeo-api 1.x) and their HTTP status.
STATUS_BY_CODE: dict[str, int] = {
    "BadRequest": 400,
    "ProcessGraphInvalid": 400,
    "ProcessGraphMissing": 400,
    "ProcessUnsupported": 400,
    "ProcessParameterInvalid": 400,
    "ProcessParameterRequired": 400,
    "ProcessParameterUnsupported": 400,
    "ProcessGraphComplexity": 400,
    "FormatUnsupported": 400,
    "PropertyNotEditable": 400,
    "NoDataAvailable": 400,
    "CollectionNotFound": 404,
    "ProcessGraphNotFound": 404,
    "JobNotFound": 404,
    "FileNotFound": 404,
    "NotFound": 404,
    "JobNotFinished": 400,
    "JobNotStarted": 400,
    "JobLocked": 400,
    "PaymentRequired": 402,
    "StorageQuotaExceeded": 400,
    "AuthenticationRequired": 401,
    "AuthenticationSchemeInvalid": 403,
    "TokenInvalid": 403,
    "CredentialsInvalid": 403,
    "PermissionsInsufficient": 403,
    "Internal": 500,
}

# SnapEarth errors raised by shared code (catalog, validation) -> openEO code.
CODE_BY_ERROR: list[tuple[type[SnapEarthError], str]] = [
    (QuotaExceededError, "PaymentRequired"),
    (AuthenticationError, "AuthenticationRequired"),
    (ForbiddenError, "PermissionsInsufficient"),
    (NotFoundError, "NotFound"),
    (ConflictError, "BadRequest"),
    (InvalidInputError, "BadRequest"),
]


class OpenEOError(SnapEarthError):
    """An error with an openEO code (``ProcessUnsupported``, ``CollectionNotFound``, ``PaymentRequired``...)."""

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code
        self._status = status

    @property
    def status(self) -> int:
        return self._status or STATUS_BY_CODE.get(self.code, 400)


def openeo_code(exc: SnapEarthError) -> tuple[str, int]:
    """The openEO code and HTTP status for any SnapEarth error."""
    if isinstance(exc, OpenEOError):
        return exc.code, exc.status
    for cls, code in CODE_BY_ERROR:
        if isinstance(exc, cls):
            return code, STATUS_BY_CODE[code]
    return "Internal", 500
