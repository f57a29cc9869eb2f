"""Per-job usage on Dask: CPU-seconds from the scheduler's task stream, memory-seconds from MemorySampler.

The collection is optimised first and computed with ``optimize_graph=False``, so the keys that run on the
workers are exactly the keys of the optimised graph: the task stream is then filtered by key, which keeps the
CPU attribution exact when several jobs share the cluster. Memory is the cluster's *managed* memory (task
results held by the workers) sampled during the job; for jobs shorter than the sampling interval the lower
bound sum(task output bytes x task duration) is used. Cluster memory is shared: with concurrent jobs the
sampled part is an upper bound for each.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import dask

MEMORY_SAMPLE_INTERVAL_S = 0.1


@dataclass
class Usage:
    """Measured usage of one computation (the fields of the openEO job's ``usage``)."""

    cpu_seconds: float = 0.0
    memory_byte_seconds: float = 0.0
    wall_seconds: float = 0.0
    bytes_read: int = 0
    output_bytes: int = 0
    tasks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Canceled(Exception):
    """The computation was canceled on purpose (by its owner, or by its budget)."""


def ensure_task_stream(client: Any) -> None:
    """Install the scheduler's task-stream plugin (it is added on first request)."""
    client.get_task_stream(count=0)


def compute_metered(
    client: Any,
    collection: Any,
    *,
    should_stop: Callable[[float], str | None] | None = None,
    poll_s: float = 0.05,
) -> tuple[Any, Usage]:
    """Compute a Dask collection on ``client``; return (result, usage).

    ``should_stop(elapsed_s)`` is polled while the tasks run: a non-empty string cancels the tasks on the
    cluster and raises :class:`Canceled` with that reason.
    """
    from distributed.diagnostics import MemorySampler

    (optimised,) = dask.optimize(collection)
    keys = {_key_str(k) for k in optimised.__dask_graph__()}
    sampler = MemorySampler()
    label = f"job-{id(optimised)}-{time.monotonic_ns()}"
    started = time.time()
    wall0 = time.perf_counter()
    future = None
    try:
        with sampler.sample(label, client=client, measure="managed", interval=MEMORY_SAMPLE_INTERVAL_S):
            future = client.compute(optimised, optimize_graph=False)
            while not future.done():
                reason = should_stop(time.perf_counter() - wall0) if should_stop else None
                if reason:
                    client.cancel(future, force=True)
                    raise Canceled(reason)
                _wait_a_little(future, poll_s)
            result = future.result()
    finally:
        wall = time.perf_counter() - wall0
        usage = _usage_from_stream(client, keys, started, wall)
        samples = sampler.samples.get(label, [])
        sampled = _integrate(samples)
        usage.memory_byte_seconds = max(sampled, usage.memory_byte_seconds)
        if future is not None:
            future.release()
    return result, usage


def _wait_a_little(future: Any, timeout: float) -> None:
    """Block until the future is done or ``timeout`` passed (a task error surfaces here or at ``result``)."""
    with contextlib.suppress(TimeoutError):
        future.result(timeout=timeout)


def _key_str(key: Any) -> str:
    return str(key)


def _usage_from_stream(client: Any, keys: set[str], started: float, wall: float) -> Usage:
    usage = Usage(wall_seconds=wall)
    records = client.get_task_stream(start=started - 1.0)
    for record in records:
        if _key_str(record.get("key")) not in keys:
            continue
        usage.tasks += 1
        nbytes = int(record.get("nbytes") or 0)
        for span in record.get("startstops", []):
            if span.get("action") == "compute":
                duration = max(0.0, float(span["stop"]) - float(span["start"]))
                usage.cpu_seconds += duration
                usage.memory_byte_seconds += nbytes * duration
    return usage


def _integrate(samples: list[tuple[float, int]]) -> float:
    """Trapezoidal integral of (timestamp, bytes) samples, in byte-seconds."""
    total = 0.0
    for (t0, b0), (t1, b1) in itertools.pairwise(samples):
        total += (t1 - t0) * (b0 + b1) / 2.0
    return total
