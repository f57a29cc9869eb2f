"""Users, HTTP Basic -> bearer tokens, API keys; all kept as catalog records (they survive restarts).

openEO clients send ``Authorization: Bearer basic//<token>`` after ``GET /credentials/basic``. API keys are
long-lived tokens a user creates once; they are accepted the same way (``Bearer basic//<key>``, which is what
``openeo.Connection.authenticate_bearer_token`` style clients send) or as ``X-API-Key``. Secrets are stored as
PBKDF2 (passwords) or SHA-256 (tokens, keys) digests, never in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from snapearth.catalog import Catalog
from snapearth.errors import InvalidInputError
from snapearth.processing.errors import OpenEOError

USERS = "openeo:users"
TOKENS = "openeo:tokens"
API_KEYS = "openeo:api-keys"
TOKEN_TTL_S = 24 * 3600
PBKDF2_ROUNDS = 120_000


@dataclass(frozen=True)
class User:
    user_id: str
    name: str | None
    monthly_budget: float | None
    roles: tuple[str, ...] = ()

    def as_me(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "name": self.name or self.user_id}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _hash_password(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ROUNDS).hex()


class Auth:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def add_user(
        self,
        user_id: str,
        password: str,
        *,
        name: str | None = None,
        monthly_budget: float | None = None,
        roles: list[str] | None = None,
    ) -> User:
        if not user_id or not user_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InvalidInputError(f"user_id: {user_id!r} must be letters, digits, '-', '_' or '.'", field="user_id")
        if len(password) < 8:
            raise InvalidInputError("password: must have at least 8 characters", field="password")
        if monthly_budget is not None and monthly_budget < 0:
            raise InvalidInputError(f"monthly_budget: {monthly_budget} must be >= 0", field="monthly_budget")
        salt = secrets.token_hex(16)
        self.catalog.put_record(
            USERS,
            user_id,
            {
                "user_id": user_id,
                "name": name,
                "salt": salt,
                "password": _hash_password(password, salt),
                "monthly_budget": monthly_budget,
                "roles": roles or [],
            },
        )
        return self.user(user_id)

    def set_budget(self, user_id: str, monthly_budget: float | None) -> User:
        record = self._record(user_id)
        if monthly_budget is not None and monthly_budget < 0:
            raise InvalidInputError(f"monthly_budget: {monthly_budget} must be >= 0", field="monthly_budget")
        record["monthly_budget"] = monthly_budget
        self.catalog.put_record(USERS, user_id, record)
        return self.user(user_id)

    def _record(self, user_id: str) -> dict[str, Any]:
        record = self.catalog.get_record(USERS, user_id)
        if record is None:
            raise InvalidInputError(f"user_id: no user {user_id!r}", field="user_id")
        return record

    def user(self, user_id: str) -> User:
        record = self._record(user_id)
        return User(user_id, record.get("name"), record.get("monthly_budget"), tuple(record.get("roles", [])))

    def users(self) -> list[User]:
        return [self.user(key) for key, _ in self.catalog.list_records(USERS)]

    def login_basic(self, user_id: str, password: str) -> str:
        """Check a password; return a new bearer token valid for a day."""
        record = self.catalog.get_record(USERS, user_id)
        if record is None or not hmac.compare_digest(record["password"], _hash_password(password, record["salt"])):
            raise OpenEOError("CredentialsInvalid", "credentials: wrong user name or password")
        token = secrets.token_urlsafe(32)
        self.catalog.put_record(TOKENS, _digest(token), {"user_id": user_id, "expires": time.time() + TOKEN_TTL_S})
        return token

    def create_api_key(self, user_id: str, label: str = "default") -> str:
        self._record(user_id)
        key = "se_" + secrets.token_urlsafe(32)
        self.catalog.put_record(API_KEYS, _digest(key), {"user_id": user_id, "label": label, "created": time.time()})
        return key

    def revoke_api_key(self, key: str) -> None:
        self.catalog.delete_record(API_KEYS, _digest(key))

    def authenticate(self, authorization: str | None, api_key: str | None = None) -> User:
        """The user behind an ``Authorization`` header (``Bearer basic//TOKEN``) or an ``X-API-Key``."""
        secret = api_key
        if secret is None:
            if not authorization:
                raise OpenEOError("AuthenticationRequired", "Authorization: this endpoint needs a bearer token")
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer":
                raise OpenEOError(
                    "AuthenticationSchemeInvalid", f"Authorization: scheme {scheme!r} is not supported; use Bearer"
                )
            method, _, secret = credentials.partition("//")
            if method not in ("basic", ""):
                raise OpenEOError(
                    "AuthenticationSchemeInvalid", f"Authorization: method {method!r} is not supported; use basic"
                )
            secret = secret or credentials
        digest = _digest(secret)
        token = self.catalog.get_record(TOKENS, digest)
        if token is not None and token["expires"] > time.time():
            return self.user(token["user_id"])
        key = self.catalog.get_record(API_KEYS, digest)
        if key is not None:
            return self.user(key["user_id"])
        raise OpenEOError("TokenInvalid", "Authorization: the token or API key is invalid or expired")
