"""A small real HTTP server on loopback replaying recorded provider responses.

Routes map a path prefix to a handler; recorded files are served byte for byte except that the
providers' own host names in links are rewritten to the loopback address (so next-page links stay
here). ``StacPages`` serves a set of recorded real STAC features the way a STAC API paginates them
(``limit`` + a ``next`` link). Failures can be scheduled per route: HTTP errors with ``Retry-After``,
slow answers (timeouts), garbage.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fixtures.shared import PROVIDER_RESPONSES as RECORDED
from tests.fixtures.shared import STAC_ITEMS

Response = tuple[int, dict[str, str], bytes]


@dataclass
class Failure:
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    body: bytes = b'{"message": "service unavailable"}'


@dataclass
class Route:
    prefix: str
    handler: Callable[[str, str, dict[str, list[str]], bytes], Response]
    failures: list[Failure] = field(default_factory=list)
    always_fail: Failure | None = None


class ReplayServer:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.log: list[tuple[str, str]] = []
        self._request = threading.local()  # the request being answered, per server thread
        self.bodies: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server._request.range = self.headers.get("Range")
                status, headers, payload = server.dispatch(self.command, self.path, body)
                self.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, prefix: str, handler: Callable[[str, str, dict[str, list[str]], bytes], Response]) -> Route:
        route = Route(prefix, handler)
        self.routes.append(route)
        return route

    def requests_to(self, prefix: str) -> list[str]:
        with self._lock:
            return [path for _, path in self.log if path.startswith(prefix)]

    def json_bodies_to(self, prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for path, body in self.bodies if path.startswith(prefix) and body]

    def dispatch(self, method: str, raw_path: str, body: bytes) -> Response:
        with self._lock:
            self.log.append((method, raw_path))
            self.bodies.append((raw_path, body))
        split = urlsplit(raw_path)
        query = parse_qs(split.query, keep_blank_values=True)
        for route in self.routes:
            if split.path.startswith(route.prefix):
                failure = route.failures.pop(0) if route.failures else route.always_fail
                if failure is not None:
                    if failure.delay:
                        time.sleep(failure.delay)
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                    return failure.status, headers, failure.body
                return route.handler(method, split.path, query, body)
        return 404, {}, b'{"message": "no such route"}'

    # handlers ------------------------------------------------------------------------------------

    def recorded(self, name: str, *, hosts: tuple[str, ...] = ()) -> Callable[..., Response]:
        """Serve a recorded file, with the given provider hosts rewritten to this server."""
        payload = (RECORDED / name).read_bytes()
        for host in hosts:
            payload = payload.replace(host.encode(), self.url.encode())

        def handler(method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
            return 200, {}, payload

        return handler

    def json(self, document: Any) -> Callable[..., Response]:
        payload = json.dumps(document).encode()
        return lambda method, path, query, body: (200, {}, payload)

    def files(self, contents: dict[str, bytes], ranges: list[str] | None = None) -> Callable[..., Response]:
        """Serve bytes by path, honouring ``Range: bytes=N-`` (206) like object stores do."""

        def handler(method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
            if path not in contents:
                return 404, {"Content-Type": "text/plain"}, b"NoSuchKey"
            data = contents[path]
            wanted = getattr(self._request, "range", None)
            if wanted and ranges is not None:
                ranges.append(wanted)
            match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            if match:
                start = int(match[1])
                if start >= len(data):
                    return 416, {"Content-Range": f"bytes */{len(data)}"}, b""
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                }
                return 206, headers, data[start:]
            return 200, {"Content-Type": "application/octet-stream"}, data

        return handler

    def oidc(self) -> Callable[..., Response]:
        """The OpenID discovery document Keycloak-based providers (CDSE, Creodias) read at start."""
        return self.json(
            {
                "issuer": f"{self.url}/auth",
                "token_endpoint": f"{self.url}/auth/token",
                "authorization_endpoint": f"{self.url}/auth/authorize",
                "jwks_uri": f"{self.url}/auth/certs",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )


class StacPages:
    """A STAC ``/search`` over recorded real features, paginated like a STAC API (limit + next token)."""

    def __init__(self, server: ReplayServer, prefix: str, features: list[dict[str, Any]]) -> None:
        self.server = server
        self.prefix = prefix
        self.features = sorted(features, key=lambda f: f["properties"]["datetime"])
        self.broken_offsets: set[int] = set()  # pages (by offset) answering 500

    def __call__(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        params: dict[str, Any] = json.loads(body) if body else {k: v[0] for k, v in query.items()}
        limit = int(params.get("limit") or 10)
        start = int(params.get("token") or params.get("next") or 0)
        if start in self.broken_offsets:
            return 500, {}, b'{"code": "InternalServerError"}'
        selected = self.features
        window = params.get("datetime")
        if window:
            low, _, high = str(window).partition("/")
            selected = [
                f
                for f in selected
                if (low in ("", "..") or f["properties"]["datetime"] >= low)
                and (high in ("", "..") or f["properties"]["datetime"] <= high)
            ]
        page = selected[start : start + limit]
        links = []
        if start + limit < len(selected):
            links.append(
                {
                    "rel": "next",
                    "href": f"{self.server.url}{self.prefix}",
                    "method": "POST",
                    "body": {**params, "token": str(start + limit)},
                    "merge": False,
                }
            )
        document = {
            "type": "FeatureCollection",
            "features": page,
            "links": links,
            "numberMatched": len(selected),
            "numberReturned": len(page),
        }
        return 200, {"Content-Type": "application/geo+json"}, json.dumps(document).encode()


def recorded_features(name: str) -> list[dict[str, Any]]:
    return list(json.loads((RECORDED / name).read_text())["features"])


def stac_item(name: str) -> dict[str, Any]:
    return dict(json.loads((STAC_ITEMS / name).read_text()))


def rewrite_hosts(document: Any, hosts: tuple[str, ...], url: str) -> Any:
    text = json.dumps(document)
    for host in hosts:
        text = re.sub(re.escape(host), url, text)
    return json.loads(text)
