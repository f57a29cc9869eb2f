"""Validate our responses against the openEO API 1.2.0 OpenAPI document (shipped in the titiler-openeo 0.19.0
wheel as ``titiler/openeo/openapi.yaml``; copied here because that package pins dependencies that conflict with
ours). OpenAPI 3.0 schemas become JSON Schema (``nullable`` -> a null type; ``oneOf`` -> ``anyOf`` because the
API's alternatives overlap) and are checked with jsonschema (draft 7)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

BASE = "urn:openeo-api-1.2.0"
SPEC = Path(__file__).parent / "data" / "openeo-api-1.2.0.openapi.yaml"


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("example", "examples", "discriminator", "xml")}
    if "oneOf" in out:  # the openEO API's oneOf branches overlap (a "Generic" branch matches everything)
        out["anyOf"] = out.pop("oneOf")
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = BASE + out["$ref"]
    if out.pop("nullable", False):
        if "type" in out and isinstance(out["type"], str):
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return _convert(yaml.safe_load(SPEC.read_text()))


def response_schema(path: str, method: str, status: int, media_type: str = "application/json") -> dict[str, Any]:
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    assert response is not None, f"{method} {path}: status {status} is not in the openEO API"
    while "$ref" in response:
        response = _resolve(response["$ref"].removeprefix(BASE))
    content = response.get("content")
    if not content:
        return {}
    return content.get(media_type, next(iter(content.values())))["schema"]


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = spec()
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def validate(response: httpx.Response, path: str, method: str = "GET") -> None:
    """Assert the response's status and JSON body are what the openEO API describes for ``method path``."""
    schema = response_schema(path, method, response.status_code)
    if not schema:
        return
    registry: Registry = Registry().with_resource(BASE, Resource.from_contents(spec(), default_specification=DRAFT7))
    validator = jsonschema.Draft7Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{method} {path}: " + "; ".join(
        f"{'/'.join(str(p) for p in e.path)}: {e.message[:300]}" for e in errors[:5]
    )
