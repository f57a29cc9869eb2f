"""One error vocabulary for every layer; the API maps it to HTTP once (``api.errors``)."""

from __future__ import annotations


class SnapEarthError(Exception):
    """Root of every error SnapEarth raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": type(self).__name__, "description": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInputError(SnapEarthError, ValueError):
    """A client's input is wrong: the message names the field and the reason."""


class NotFoundError(SnapEarthError, LookupError):
    """A collection, item, job or resource does not exist."""


class ConflictError(SnapEarthError):
    """The operation conflicts with the current state (duplicate id, non-empty collection)."""


class AuthenticationError(SnapEarthError):
    """Missing or wrong credentials."""


class ForbiddenError(SnapEarthError):
    """Authenticated, but not allowed (over quota, not the owner)."""


class QuotaExceededError(ForbiddenError):
    """A budget or quota would be exceeded."""


class ProviderError(SnapEarthError):
    """A remote data provider failed (timeout, garbage, refused)."""


class BackendError(SnapEarthError):
    """The storage backend failed for a reason that is not the client's."""
