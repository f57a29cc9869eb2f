"""Process graphs: validate (before anything runs), evaluate lazily, compute on Dask with metering, write.

Evaluation builds the lazy xarray/Dask result with openeo-pg-parser-networkx and the registry; nothing is read
from the archive until ``compute_metered`` runs the optimised graph on the cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import xarray as xr

from snapearth.catalog import Catalog
from snapearth.errors import NotFoundError, SnapEarthError
from snapearth.processing import load
from snapearth.processing.errors import OpenEOError
from snapearth.processing.metering import Usage, compute_metered
from snapearth.processing.outputs import OutputFile, write_result
from snapearth.processing.processes import Registry, SaveResult, build_registry

MAX_NODES = 500


@dataclass
class Evaluation:
    """A lazily evaluated graph: the (lazy) result, the output format and what will be read."""

    result: Any
    format: str
    options: dict[str, Any]
    bytes_to_read: int
    loads: list[load.LoadedCube] = field(default_factory=list)

    @property
    def output_bytes_estimate(self) -> int:
        if isinstance(self.result, xr.DataArray):
            return int(self.result.dtype.itemsize) * math.prod(self.result.shape)
        return 1024


@dataclass
class Outcome:
    files: list[OutputFile]
    usage: Usage
    format: str


def graph_of(body: Any) -> dict[str, Any]:
    """The flat process graph of a request body: ``{"process": {"process_graph": ...}}`` or the graph itself."""
    if not isinstance(body, dict):
        raise OpenEOError("ProcessGraphMissing", "process: expected a JSON object with a process graph")
    process = body.get("process", body)
    graph = process.get("process_graph") if isinstance(process, dict) else None
    if not isinstance(graph, dict) or not graph:
        raise OpenEOError("ProcessGraphMissing", "process.process_graph: missing or empty", field="process_graph")
    return graph


def _nodes(graph: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node, callbacks included (depth first)."""
    for node_id, node in graph.items():
        if not isinstance(node, dict):
            raise OpenEOError(
                "ProcessGraphInvalid", f"process_graph.{node_id}: expected an object with process_id and arguments"
            )
        yield node_id, node
        yield from _callback_nodes(node.get("arguments", {}))


def _callback_nodes(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        if isinstance(value.get("process_graph"), dict):
            yield from _nodes(value["process_graph"])
        else:
            for child in value.values():
                yield from _callback_nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _callback_nodes(child)


def validate_graph(graph: dict[str, Any], catalog: Catalog, registry: Registry | None = None) -> list[OpenEOError]:
    """Problems of a flat process graph (empty list when valid): structure, processes, collections, formats."""
    registry = registry or build_registry()
    problems: list[OpenEOError] = []
    try:
        nodes = list(_nodes(graph))
    except OpenEOError as exc:
        return [exc]
    if len(nodes) > MAX_NODES:
        problems.append(
            OpenEOError("ProcessGraphComplexity", f"process_graph: {len(nodes)} nodes, more than {MAX_NODES}")
        )
    results = [node_id for node_id, node in graph.items() if node.get("result")]
    if len(results) != 1:
        problems.append(
            OpenEOError(
                "ProcessGraphInvalid",
                f"process_graph: exactly one node must have result: true (found {len(results)})",
                field="process_graph",
            )
        )
    for node_id, node in nodes:
        process_id = node.get("process_id")
        if not isinstance(process_id, str):
            problems.append(OpenEOError("ProcessGraphInvalid", f"process_graph.{node_id}: process_id missing"))
            continue
        if process_id not in registry:
            problems.append(
                OpenEOError(
                    "ProcessUnsupported",
                    f"process_graph.{node_id}: process {process_id!r} is not supported by this back-end "
                    "(GET /processes lists them)",
                    field="process_id",
                )
            )
            continue
        arguments = node.get("arguments", {})
        spec = registry.specs[process_id]
        known = {p["name"] for p in spec.get("parameters", [])}
        unknown_args = [a for a in arguments if a not in known]
        if unknown_args:
            problems.append(
                OpenEOError(
                    "ProcessParameterUnsupported",
                    f"process_graph.{node_id}: {process_id} has no parameter(s) {unknown_args}",
                    field=unknown_args[0],
                )
            )
        required = [p["name"] for p in spec.get("parameters", []) if not p.get("optional")]
        missing = [p for p in required if p not in arguments]
        if missing:
            problems.append(
                OpenEOError(
                    "ProcessParameterRequired",
                    f"process_graph.{node_id}: {process_id} needs parameter(s) {missing}",
                    field=missing[0],
                )
            )
        if process_id == "load_collection" and isinstance(arguments.get("id"), str):
            try:
                catalog.get_collection(arguments["id"])
            except NotFoundError:
                problems.append(
                    OpenEOError(
                        "CollectionNotFound",
                        f"process_graph.{node_id}: collection {arguments['id']!r} does not exist (GET /collections)",
                        field="id",
                    )
                )
        if process_id == "save_result" and isinstance(arguments.get("format"), str):
            try:
                registry.processes["save_result"].implementation(data=None, format=arguments["format"])
            except OpenEOError as exc:
                problems.append(exc)
    return problems


def evaluate(
    body: Any,
    catalog: Catalog,
    *,
    limits: load.LoadLimits | None = None,
    default_format: str = "JSON",
    chunk_size: int = 2048,
) -> Evaluation:
    """Validate and evaluate a graph lazily; raise the first problem as an :class:`OpenEOError`."""
    from openeo_pg_parser_networkx import OpenEOProcessGraph

    registry = build_registry()
    graph = graph_of(body)
    problems = validate_graph(graph, catalog, registry)
    if problems:
        raise problems[0]
    try:
        parsed = OpenEOProcessGraph({"process_graph": graph})
    except Exception as exc:  # the parser raises pydantic, networkx and key errors alike
        raise OpenEOError("ProcessGraphInvalid", f"process_graph: cannot be parsed: {exc}") from exc
    session = load.LoadSession(catalog=catalog, limits=limits or load.LoadLimits(), chunk_size=chunk_size)
    token = load.current_session.set(session)
    try:
        with dask.config.set({"array.slicing.split_large_chunks": False}):
            result = parsed.to_callable(registry.processes)()
    except SnapEarthError:
        raise
    except Exception as exc:
        raise _as_openeo_error(exc) from exc
    finally:
        load.current_session.reset(token)
    if isinstance(result, SaveResult):
        return Evaluation(result.data, result.format, result.options, session.bytes_to_read, session.loads)
    return Evaluation(result, default_format, {}, session.bytes_to_read, session.loads)


def _as_openeo_error(exc: Exception) -> OpenEOError:
    """Errors of the process implementations are the user's graph's fault: say which and why."""
    name = type(exc).__name__
    message = str(exc) or name
    if name in ("ProcessParameterMissing",):
        return OpenEOError("ProcessParameterRequired", message)
    return OpenEOError("ProcessParameterInvalid", f"{name}: {message}")


def run(
    evaluation: Evaluation,
    client: Any,
    out_dir: Path,
    *,
    should_stop: Callable[[float], str | None] | None = None,
) -> Outcome:
    """Compute an evaluation on the Dask ``client`` (metered) and write its files under ``out_dir``."""
    result = evaluation.result
    if dask.is_dask_collection(result):
        computed, usage = compute_metered(client, result, should_stop=should_stop)
    else:
        computed, usage = result, Usage()
    usage.bytes_read = evaluation.bytes_to_read
    try:
        files = write_result(computed, evaluation.format, out_dir, evaluation.options)
    except SnapEarthError:
        raise
    except (ValueError, TypeError) as exc:
        raise OpenEOError(
            "FormatUnsupported", f"save_result: cannot write the result as {evaluation.format}: {exc}"
        ) from exc
    usage.output_bytes = sum(f.size for f in files)
    return Outcome(files=files, usage=usage, format=evaluation.format)
