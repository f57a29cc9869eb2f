"""Health, readiness, Prometheus metrics, request ids, JSON logs, CORS, browser redirect."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from snapearth.api.observability import JSONLogFormatter
from tests.api.conftest import Archive


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["collections"] == 2


def test_metrics_count_requests_per_route_template(client: TestClient, api_archive: Archive) -> None:
    for item_id in api_archive.s2_ids[:3]:
        client.get(f"/collections/sentinel-2-l2a/items/{item_id}")
    client.get("/search?limit=0")
    text = client.get("/metrics").text
    route = "/collections/{collection_id}/items/{item_id}"
    assert f'snapearth_http_requests_total{{method="GET",route="{route}",status="200"}} 3.0' in text
    assert f'snapearth_http_request_duration_seconds_bucket{{le="0.05",method="GET",route="{route}"}}' in text
    assert 'snapearth_http_errors_total{kind="client",route="/search"} 1.0' in text
    assert f'snapearth_catalog_items{{collection="sentinel-2-l2a"}} {float(len(api_archive.s2_ids))}' in text
    assert api_archive.s2_ids[0] not in text  # raw paths never become labels


def test_request_id_is_kept_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32


def test_access_log_is_json_with_the_request_id(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="snapearth.access"):
        client.get("/collections", headers={"X-Request-ID": "req-42"})
    records = [r for r in caplog.records if r.name == "snapearth.access"]
    assert records
    line = json.loads(JSONLogFormatter().format(records[-1]))
    assert line["request_id"] == "req-42"
    assert line["route"] == "/collections"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0


def test_cors_follows_settings(client: TestClient) -> None:
    allowed = client.options(
        "/search", headers={"Origin": "https://maps.example.org", "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://maps.example.org"
    refused = client.get("/collections", headers={"Origin": "https://elsewhere.example.com"})
    assert "access-control-allow-origin" not in refused.headers


def test_json_clients_get_the_landing_page(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json()["type"] == "Catalog"


def test_serve_command_logs_json_with_request_ids(api_archive: Archive) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SNAPEARTH_DATA": str(api_archive.root), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "snapearth.cli", "serve", "--port", str(port)]
    command += ["--catalog", api_archive.catalog_url]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "serve-1"})
                break
            except httpx.TransportError:
                assert server.poll() is None, "snapearth serve exited"
                assert time.monotonic() < deadline, "snapearth serve did not start"
                time.sleep(0.3)
        assert response.json() == {"status": "ok"}
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "snapearth.access"]
    assert any(line["request_id"] == "serve-1" and line["route"] == "/healthz" for line in access), stderr[-2000:]
