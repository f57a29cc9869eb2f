"""Request ids, JSON access logs and Prometheus metrics, in one pure-ASGI middleware (cheap per request).

Metrics are labelled by route *template* (``/collections/{collection_id}/items``), never by raw path, so their
cardinality stays bounded; each app gets its own registry so several apps can live in one process (tests).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("snapearth_request_id", default=None)
access_logger = logging.getLogger("snapearth.access")

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class JSONLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    RESERVED = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in self.RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JSONLogFormatter.converter = time.gmtime


def configure_logging(level: str = "INFO") -> None:
    """Route the snapearth and uvicorn loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONLogFormatter())
    for name in ("snapearth", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "snapearth_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "snapearth_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "snapearth_http_errors_total",
            "Responses with status >= 400 by route template and status class.",
            ["route", "kind"],
            registry=self.registry,
        )

    def add_catalog_size(self, count_items: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_CatalogSizeCollector(count_items))

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _CatalogSizeCollector(Collector):
    def __init__(self, count_items: Callable[[], dict[str, int]]) -> None:
        self.count_items = count_items

    def describe(self) -> list[Any]:
        return []  # do not query the catalog at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "snapearth_catalog_items", "Items in the catalog per collection.", labels=["collection"]
        )
        try:
            counts = self.count_items()
        except Exception:  # a scrape must not fail because the catalog is down; /readyz reports that
            logging.getLogger("snapearth.api").warning("catalog size unavailable", exc_info=True)
            counts = {}
        for collection, count in sorted(counts.items()):
            family.add_metric([collection], count)
        yield family


class ObservabilityMiddleware:
    """X-Request-ID in and out, one JSON access-log line and metrics per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            if status >= 400:
                self.metrics.errors.labels(route, "server" if status >= 500 else "client").inc()
            access_logger.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            text = value.decode("latin-1").strip()
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        root = scope.get("root_path", "")
        return f"{root}{path}" if root and not path.startswith(root) else str(path)
    return "<unmatched>"
