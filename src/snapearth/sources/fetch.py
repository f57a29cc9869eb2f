"""Downloads on demand into a local cache, then the catalog's hrefs point at the local copy.

Cache layout is by item and asset: ``<cache>/<collection>/<item id>/<asset key><ext>``. A download
goes to ``.part`` first and resumes from its size with an HTTP ``Range`` request; the file is
checked against ``file:checksum`` (multihash MD5 / SHA-256) and ``file:size`` when the provider gave
them, then moved into place. Credentials come from EODAG: the provider's authentication plugin
matching the href (Copernicus Data Space tokens, GEODES API keys, ...). Routes are tried in order,
primary then alternates, so a failing mirror falls over to the next.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import mimetypes
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from snapearth.catalog.base import Catalog, Item, SearchRequest
from snapearth.errors import AuthenticationError, InvalidInputError, NotFoundError, ProviderError, SnapEarthError
from snapearth.sources.eodag_source import EodagGateway, classify_failure, missing_credentials_message
from snapearth.sources.merge import ALTERNATE_NAME, providers_of

logger = logging.getLogger(__name__)

LOCAL = "local"
CHUNK = 1 << 20


@dataclass
class AssetFetch:
    key: str
    path: str
    route: str
    bytes_downloaded: int
    resumed_from: int = 0
    checksum: str = "not given"
    cached: bool = False


@dataclass
class FetchReport:
    item_id: str
    collection: str
    assets: list[AssetFetch] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def find_item(catalog: Catalog, item_id: str, collection: str | None = None) -> Item:
    if collection:
        return catalog.get_item(collection, item_id)
    page = catalog.search(SearchRequest(ids=[item_id], limit=2))
    if not page.items:
        raise NotFoundError(f"item {item_id!r} is not in the catalog", field="item")
    if len(page.items) > 1:
        names = sorted(i.get("collection", "?") for i in page.items)
        raise InvalidInputError(f"item: {item_id!r} is in several collections {names}; give --collection", field="item")
    return page.items[0]


def _routes(item: Item, key: str) -> list[tuple[str, dict[str, Any]]]:
    asset = item["assets"][key]
    sources = providers_of(item)
    primary_name = asset.get(ALTERNATE_NAME) or (sources[0] if sources else LOCAL)
    primary = {k: v for k, v in asset.items() if k != "alternate"}
    routes = [(str(primary_name), primary)]
    for name, alternate in (asset.get("alternate") or {}).items():
        routes.append(
            (name, {**{k: v for k, v in primary.items() if k not in ("file:checksum", "file:size")}, **alternate})
        )
    return routes


def _hasher(checksum: str | None) -> tuple[str, str] | None:
    """A ``file:checksum`` multihash -> (hashlib algorithm, hex digest)."""
    if not checksum:
        return None
    text = checksum.lower()
    if text.startswith("d510") and len(text) == 36:
        return "md5", text[4:]
    if text.startswith("1220") and len(text) == 68:
        return "sha256", text[4:]
    return None


def _suffix(key: str, route: dict[str, Any]) -> str:
    path = unquote(urlsplit(str(route["href"])).path)
    ext = Path(path).suffix
    if ext and len(ext) <= 6 and ext.lower() not in (".value",) and "$" not in ext:
        return ext
    guessed = mimetypes.guess_extension(str(route.get("type") or "").split(";")[0]) if route.get("type") else None
    return guessed or ".bin"


class Fetcher:
    def __init__(self, catalog: Catalog, cache_dir: Path, gateway: EodagGateway | None = None) -> None:
        self.catalog = catalog
        self.cache_dir = cache_dir
        self.gateway = gateway

    def fetch(self, item_id: str, *, assets: list[str] | None = None, collection: str | None = None) -> FetchReport:
        item = find_item(self.catalog, item_id, collection)
        available = list(item.get("assets", {}))
        if assets:
            unknown = [a for a in assets if a not in item["assets"]]
            if unknown:
                raise InvalidInputError(
                    f"assets: {unknown} not in item {item_id!r}; it has {', '.join(available)}", field="assets"
                )
            keys = list(assets)
        else:
            keys = [k for k, a in item["assets"].items() if "data" in (a.get("roles") or []) or k == "thumbnail"]
        report = FetchReport(item_id=item["id"], collection=item.get("collection", ""))
        folder = self.cache_dir / report.collection / item["id"]
        folder.mkdir(parents=True, exist_ok=True)
        updated = copy.deepcopy(item)
        errors: list[SnapEarthError] = []
        for key in keys:
            try:
                done = self._fetch_asset(item, key, folder)
            except SnapEarthError as error:
                report.failed[key] = error.message
                errors.append(error)
                continue
            report.assets.append(done)
            updated["assets"][key] = self._pointing_home(item["assets"][key], done, item)
        if report.assets:
            self.catalog.add_items([updated], mode="upsert")
        if errors and not report.assets:
            raise errors[0]  # nothing came: the first reason (missing credentials, bad checksum...) is the answer
        return report

    @staticmethod
    def _pointing_home(asset: dict[str, Any], done: AssetFetch, item: Item) -> dict[str, Any]:
        """The local copy becomes the href; every remote route stays as an alternate."""
        routes = _routes({"assets": {"a": asset}, "properties": item["properties"]}, "a")
        local = {k: v for k, v in asset.items() if k not in ("alternate", ALTERNATE_NAME)}
        local["href"] = done.path
        local[ALTERNATE_NAME] = LOCAL
        local["alternate"] = {
            name: {k: v for k, v in route.items() if k in ("href", "title", "type", "file:checksum", "file:size")}
            for name, route in routes
            if name != LOCAL
        }
        return local

    def _fetch_asset(self, item: Item, key: str, folder: Path) -> AssetFetch:
        errors: list[str] = []
        for name, route in _routes(item, key):
            if (
                name == LOCAL
                and Path(str(route["href"])).is_file()
                and str(route["href"]).startswith(str(self.cache_dir))
            ):
                return AssetFetch(key, str(route["href"]), LOCAL, 0, cached=True, checksum="cached")
            target = folder / f"{key}{_suffix(key, route)}"
            try:
                return self._download(name, key, route, target)
            except AuthenticationError:
                raise
            except SnapEarthError as error:
                errors.append(f"{name}: {error.message}")
                logger.warning("%s/%s: route %s failed: %s", item["id"], key, name, error.message)
        raise ProviderError(f"{key}: every route failed ({'; '.join(errors)})", field="assets")

    def _download(self, provider: str, key: str, route: dict[str, Any], target: Path) -> AssetFetch:
        href = str(route["href"])
        expected_size = route.get("file:size")
        checker = _hasher(route.get("file:checksum"))
        if (
            target.is_file()
            and (expected_size is None or target.stat().st_size == expected_size)
            and (checker is None or _digest(target, checker[0]) == checker[1])
        ):
            return AssetFetch(key, str(target), provider, 0, cached=True, checksum=_status(checker))
        partial = target.with_name(target.name + ".part")
        scheme = urlsplit(href).scheme
        if scheme in ("http", "https"):
            resumed, written = self._http(provider, href, partial)
        elif scheme in ("", "file"):
            source = Path(unquote(urlsplit(href).path) if scheme == "file" else href)
            if not source.is_file():
                raise NotFoundError(f"{key}: local file {source} does not exist", field="assets")
            shutil.copyfile(source, partial)
            resumed, written = 0, partial.stat().st_size
        else:
            raise ProviderError(f"{key}: {scheme}:// hrefs are not downloadable here (no HTTP route)", field="assets")
        if expected_size is not None and partial.stat().st_size != expected_size:
            size = partial.stat().st_size
            partial.unlink()
            raise ProviderError(f"{key}: size {size} differs from file:size {expected_size}", field="assets")
        if checker is not None:
            digest = _digest(partial, checker[0])
            if digest != checker[1]:
                partial.unlink()
                raise ProviderError(f"{key}: checksum mismatch ({digest} != {checker[1]})", field="assets")
        os.replace(partial, target)
        return AssetFetch(key, str(target), provider, written, resumed_from=resumed, checksum=_status(checker))

    def _http(self, provider: str, href: str, partial: Path) -> tuple[int, int]:
        import requests

        auth = self._auth(provider, href)
        have = partial.stat().st_size if partial.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        attempts = self.gateway.retry.attempts if self.gateway else 3
        for attempt in range(1, attempts + 1):
            try:
                with requests.get(href, headers=headers, auth=auth, stream=True, timeout=60) as response:
                    if response.status_code == 416 and have:
                        return have, 0  # the part file is already complete
                    if response.status_code in (401, 403):
                        raise AuthenticationError(
                            f"{provider} refused the download ({response.status_code}); "
                            f"{missing_credentials_message(provider, 'download')}",
                            field="provider",
                        )
                    response.raise_for_status()
                    resumed = have if response.status_code == 206 else 0
                    mode = "ab" if resumed else "wb"
                    written = 0
                    with partial.open(mode) as sink:
                        for chunk in response.iter_content(CHUNK):
                            sink.write(chunk)
                            written += len(chunk)
                    return resumed, written
            except (requests.RequestException, OSError) as error:
                failure = classify_failure(error)
                if not failure.transient or attempt == attempts:
                    raise ProviderError(f"{provider}: download of {href} failed: {error}", field="assets") from error
                if self.gateway:
                    self.gateway.retry.sleep(self.gateway.retry.delay(attempt, failure.retry_after))
                have = partial.stat().st_size if partial.is_file() else 0
                headers = {"Range": f"bytes={have}-"} if have else {}
        raise ProviderError(f"{provider}: download of {href} failed", field="assets")

    def _auth(self, provider: str, href: str) -> Any:
        """EODAG's authentication for this provider and URL (None when the URL needs none)."""
        if self.gateway is None or provider == LOCAL or provider not in self.gateway.dag.providers:
            return None
        from eodag.config import credentials_in_auth

        manager = self.gateway.dag._plugins_manager
        plugins = list(manager.get_auth_plugins(provider, matching_url=href))
        if not plugins:
            return None
        if not any(credentials_in_auth(p.config) for p in plugins):
            raise AuthenticationError(missing_credentials_message(provider, "download"), field="provider")
        return manager.get_auth(provider, matching_url=href)


def _digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def _status(checker: tuple[str, str] | None) -> str:
    return "verified" if checker is not None else "not given"
