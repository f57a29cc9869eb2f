"""Searching providers through EODAG: one gateway, our collection names, transient-only retries.

EODAG does the provider protocols (STAC, OData, OpenSearch) and maps their metadata to STAC names;
this module picks the EODAG collection for each of ours, pages through results one request at a
time (so a harvest can checkpoint and resume), retries only timeouts, 429 and 5xx (honouring
``Retry-After``), and turns EODAG's exceptions into SnapEarth's error vocabulary.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from shapely.geometry.base import BaseGeometry

from snapearth.errors import AuthenticationError, InvalidInputError, ProviderError

logger = logging.getLogger(__name__)

# Our collection id -> EODAG collection ids, in order of preference (a provider uses the first it offers).
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "sentinel-2-l2a": ("S2_MSI_L2A", "S2_MSI_L2A_COG"),
    "sentinel-2-l1c": ("S2_MSI_L1C",),
    "sentinel-1-grd": ("S1_SAR_GRD",),
}
EODAG_TO_COLLECTION = {eodag_id: ours for ours, ids in COLLECTIONS.items() for eodag_id in ids}

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient provider errors only."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return float(min(self.base_delay * (2 ** (attempt - 1)), self.max_delay))


@dataclass
class Page:
    """One page of a provider's answer, already as EODAG STAC-like features."""

    provider: str
    eodag_collection: str
    features: list[dict[str, Any]]
    number_matched: int | None
    index: int
    requests: int = 1


@dataclass
class _Failure:
    error: BaseException
    status: int | None
    retry_after: float | None
    transient: bool


def _iter_causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0)


def classify_failure(error: BaseException) -> _Failure:
    """Decide whether an EODAG/requests failure is worth retrying, and after how long."""
    import requests
    from eodag.utils.exceptions import QuotaExceededError, TimeOutError

    status: int | None = None
    retry_after: float | None = None
    timed_out = False
    for cause in _iter_causes(error):
        if isinstance(cause, TimeOutError | requests.exceptions.Timeout | TimeoutError):
            timed_out = True
        if isinstance(cause, QuotaExceededError):
            status = status or 429
        response = getattr(cause, "response", None)
        headers = getattr(response, "headers", None) if response is not None else getattr(cause, "headers", None)
        code = getattr(response, "status_code", None) if response is not None else getattr(cause, "code", None)
        if status is None and isinstance(code, int):
            status = code
        if status is None and isinstance(getattr(cause, "status_code", None), int):
            status = cause.status_code  # type: ignore[attr-defined]
        if retry_after is None and headers is not None:
            retry_after = _retry_after_seconds(headers.get("Retry-After"))
    causes = list(_iter_causes(error))
    for cause in causes:  # urllib wraps the socket error in URLError.reason, not in the cause chain
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            causes.append(reason)
    unresolved = any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in causes)
    dropped = any(isinstance(c, ConnectionError | socket.timeout) for c in causes)  # refused, reset, aborted
    transient = timed_out or (status in TRANSIENT_STATUS) or (status is None and dropped and not unresolved)
    return _Failure(error=error, status=status, retry_after=retry_after, transient=transient)


def _credential_variables(provider: str, action: str) -> list[str]:
    """The ``EODAG__...`` variables holding a provider's credentials for ``action`` (EODAG's own template)."""
    from importlib.resources import files

    template = yaml.safe_load(files("eodag.resources").joinpath("user_conf_template.yml").read_text())
    section = (template or {}).get(provider) or {}
    preferred = ("search_auth", "auth") if action == "search" else ("download_auth", "auth")
    plugin_key = next((k for k in preferred if isinstance(section.get(k), dict)), None)
    if plugin_key is None:
        return []
    credentials = section[plugin_key].get("credentials") or {}
    return [
        f"EODAG__{provider.upper()}__{plugin_key.upper()}__CREDENTIALS__{name.upper()}"
        for name in credentials
        if name not in ("aws_profile", "totp", "aws_session_token")
    ]


def missing_credentials_message(provider: str, action: str) -> str:
    variables = _credential_variables(provider, action)
    how = " and ".join(variables) if variables else f"the credentials of {provider}"
    return (
        f"provider {provider!r} needs credentials to {action}: set {how} "
        f"(or the {provider}: section of EODAG's eodag.yml, see EODAG_CFG_FILE)"
    )


def bundled_provider_names() -> list[str]:
    from eodag.config import DEFAULT_PROVIDERS_DIR

    return sorted(path.stem for path in Path(DEFAULT_PROVIDERS_DIR).glob("*.yml"))


@dataclass
class EodagGateway:
    """One EODAG gateway configured by EODAG's own files and env vars, plus optional overrides.

    ``provider_overrides`` is EODAG provider configuration (what ``eodag.yml`` holds), applied after
    the file and the environment: tests use it to point providers at a loopback server.
    """

    cfg_file: Path | None = None
    cfg_dir: Path | None = None
    providers: tuple[str, ...] | None = None  # load only these (faster); None: every provider
    provider_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    page_size: int = 100

    @cached_property
    def dag(self) -> Any:
        from eodag import EODataAccessGateway
        from eodag.config import EODAGSettings

        kwargs: dict[str, Any] = {}
        if self.cfg_dir is not None:
            kwargs["cfg_dir"] = self.cfg_dir
        if self.cfg_file is not None:
            kwargs["cfg_file"] = self.cfg_file
        elif "EODAG_CFG_FILE" in os.environ:
            kwargs["cfg_file"] = Path(os.environ["EODAG_CFG_FILE"])
        if self.providers is not None:
            kwargs["providers_whitelist"] = sorted({*self.providers, *self.provider_overrides})
        dag = EODataAccessGateway(settings=EODAGSettings(**kwargs))
        if self.provider_overrides:
            dag.update_providers_config(dict_conf=self.provider_overrides)
            dag._prune_providers_list()
        return dag

    def _tune(self, provider: str) -> None:
        """Our retry layer is the only one: EODAG's own urllib3 retries would also retry 401s."""
        if provider in self._tuned:
            return
        config = self.dag.providers[provider].config
        search = getattr(config, "search", None)
        if search is not None and getattr(search, "retry_total", None) != 0:
            self.dag.update_providers_config(dict_conf={provider: {"search": {"retry_total": 0}}})
        self._tuned.add(provider)

    @cached_property
    def _tuned(self) -> set[str]:
        return set()

    # providers -------------------------------------------------------------------------------------

    def known_providers(self) -> list[str]:
        pruned = set(self.dag._providers.pruned_providers_config)
        return sorted(set(self.dag.providers) | pruned | set(bundled_provider_names()))

    def check_provider(self, provider: str) -> None:
        """Unknown provider -> InvalidInputError; known but without its search credentials -> AuthenticationError."""
        if provider in self.dag.providers:
            return
        reasons = self.dag._providers.pruned_providers_reasons
        if provider in reasons:
            reason = reasons[provider]
            if reason.get("reason_type") == "missing_credentials":
                raise AuthenticationError(missing_credentials_message(provider, "search"), field="provider")
            raise ProviderError(f"provider {provider!r} is not usable: {reason.get('reason')}", field="provider")
        known = ", ".join(self.known_providers())
        raise InvalidInputError(f"provider: unknown provider {provider!r}; EODAG knows: {known}", field="provider")

    def priorities(self) -> dict[str, int]:
        """EODAG's configured provider priorities (``priority:`` in eodag.yml, ``EODAG__P__PRIORITY``)."""
        return {name: int(prov.priority) for name, prov in self.dag.providers.items()}

    def provider_url(self, provider: str) -> str | None:
        prov = self.dag.providers.get(provider)
        return getattr(prov.config, "url", None) if prov is not None else None

    def eodag_collection(self, provider: str, collection: str) -> str:
        if collection not in COLLECTIONS:
            raise InvalidInputError(
                f"collection: unknown collection {collection!r}; use one of {', '.join(sorted(COLLECTIONS))}",
                field="collection",
            )
        offered = {c.id for c in self.dag.list_collections(provider=provider, fetch_providers=False)}
        for candidate in COLLECTIONS[collection]:
            if candidate in offered:
                return candidate
        raise InvalidInputError(
            f"collection: provider {provider!r} does not offer {collection!r} (EODAG ids {COLLECTIONS[collection]})",
            field="collection",
        )

    def page_limit(self, provider: str) -> int:
        prov = self.dag.providers.get(provider)
        pagination = getattr(getattr(prov.config, "search", None), "pagination", None) if prov else None
        most = pagination.get("max_limit") if isinstance(pagination, dict) else None
        return min(self.page_size, int(most)) if most else self.page_size

    def sorts_by_start(self, provider: str) -> bool:
        sortables = self.dag.available_sortables().get(provider) or {}
        return "start_datetime" in (sortables.get("sortables") or [])

    # search ----------------------------------------------------------------------------------------

    def _with_retry(self, provider: str, what: str, call: Callable[[], Any]) -> tuple[Any, int]:
        from eodag.utils.exceptions import AuthenticationError as EodagAuthError
        from eodag.utils.exceptions import MisconfiguredError, UnsupportedCollection, ValidationError

        attempt = 0
        while True:
            attempt += 1
            try:
                return call(), attempt
            except (ValidationError, UnsupportedCollection) as error:
                raise InvalidInputError(f"{provider}: {what} refused: {error}", field="query") from error
            except EodagAuthError as error:
                raise AuthenticationError(
                    f"{missing_credentials_message(provider, 'search')} ({error})", field="provider"
                ) from error
            except MisconfiguredError as error:
                raise ProviderError(f"{provider}: misconfigured: {error}", field="provider") from error
            except Exception as error:
                failure = classify_failure(error)
                status = f"HTTP {failure.status}" if failure.status else type(error).__name__
                if failure.status in (401, 403):
                    raise AuthenticationError(
                        f"{provider}: {what} refused ({status}); {missing_credentials_message(provider, 'search')}",
                        field="provider",
                    ) from error
                if not failure.transient:
                    raise ProviderError(f"{provider}: {what} failed ({status}): {error}", field="provider") from error
                if attempt >= self.retry.attempts:
                    raise ProviderError(
                        f"{provider}: {what} failed after {attempt} attempts ({status}): {error}", field="provider"
                    ) from error
                wait = self.retry.delay(attempt, failure.retry_after)
                logger.warning("%s: %s failed (%s), retrying in %.1fs", provider, what, status, wait)
                self.retry.sleep(wait)

    def iter_pages(
        self,
        provider: str,
        collection: str,
        geometry: BaseGeometry,
        start: datetime | None,
        end: datetime | None,
    ) -> Iterator[Page]:
        """Yield the provider's answer page by page (sorted by acquisition start when it can sort)."""
        self.check_provider(provider)
        self._tune(provider)
        eodag_collection = self.eodag_collection(provider, collection)
        kwargs: dict[str, Any] = {
            "provider": provider,
            "collection": eodag_collection,
            "geom": geometry,
            "limit": self.page_limit(provider),
            "count": False,
            "raise_errors": True,
            # our parameters are area, dates and collection only: no need for EODAG to fetch queryables first
            "validate": False,
        }
        if start is not None:
            kwargs["start"] = start.isoformat().replace("+00:00", "Z")
        if end is not None:
            kwargs["end"] = end.isoformat().replace("+00:00", "Z")
        if self.sorts_by_start(provider):
            kwargs["sort_by"] = [("start_datetime", "ASC")]
        result, tries = self._with_retry(provider, "search", lambda: self.dag.search(**kwargs))
        index = 0
        while True:
            features = [_as_feature(product, provider) for product in result]
            yield Page(provider, eodag_collection, features, result.number_matched, index, tries)
            if not features or result.next_page_token is None or len(features) < kwargs["limit"]:
                return
            previous = result

            def next_page(previous: Any = previous) -> Any:
                return next(previous.next_page(update=False), None)

            result, tries = self._with_retry(provider, f"search page {index + 2}", next_page)
            if result is None:
                return
            index += 1


def _as_feature(product: Any, provider: str) -> dict[str, Any]:
    """An EOProduct as a STAC-like feature.

    Not ``EOProduct.as_dict()``: that builds a pydantic model per product to validate it (about 0.1 s each),
    while normalisation keeps and checks its own fields anyway.
    """
    import shapely

    try:
        geometry = json.loads(shapely.to_geojson(product.geometry)) if product.geometry is not None else None
        properties = {k: v for k, v in product.properties.items() if k not in ("geometry", "id")}
        return {
            "type": "Feature",
            "id": product.properties.get("id"),
            "geometry": geometry,
            "bbox": list(product.geometry.bounds) if product.geometry is not None else None,
            "properties": properties,
            "assets": product.assets.as_dict(),
            "collection": product.collection,
        }
    except Exception as error:
        raise ProviderError(f"{provider}: unreadable product in the answer: {error}", field="provider") from error
