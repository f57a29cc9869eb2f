"""Prometheus metrics of the openEO jobs: queued/running now (read from the job store), finished/failed/canceled
counts, durations and costs. Registered on the registry the app layer passes (the default registry otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200)


class _StatusCollector(Collector):
    def __init__(self, count_by_status: Callable[[], dict[str, int]]) -> None:
        self.count_by_status = count_by_status

    def collect(self) -> Any:
        family = GaugeMetricFamily("snapearth_openeo_jobs", "openEO batch jobs by current status.", labels=["status"])
        counts = self.count_by_status()
        for status in ("created", "queued", "running", "finished", "canceled", "error"):
            family.add_metric([status], counts.get(status, 0))
        yield family


class JobMetrics:
    def __init__(
        self, count_by_status: Callable[[], dict[str, int]], registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else REGISTRY
        self.created = Counter(
            "snapearth_openeo_jobs_created_total", "openEO batch jobs created.", registry=self.registry
        )
        self.ended = Counter(
            "snapearth_openeo_jobs_ended_total",
            "openEO batch jobs that ended, by final status (finished, error, canceled).",
            ["status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "snapearth_openeo_job_duration_seconds",
            "Wall time of openEO runs on Dask, by kind (batch, sync).",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.cost = Counter(
            "snapearth_openeo_cost_total",
            "Cost of openEO runs (usage x price table), by kind and currency.",
            ["kind", "currency"],
            registry=self.registry,
        )
        self.cpu = Counter(
            "snapearth_openeo_cpu_seconds_total",
            "CPU-seconds of openEO runs on the Dask workers.",
            registry=self.registry,
        )
        self._status = _StatusCollector(count_by_status)
        self.registry.register(self._status)

    def observe_job(self, job: dict[str, Any]) -> None:
        self.ended.labels(job["status"]).inc()
        usage, costs = job.get("usage"), job.get("costs")
        if usage:
            self.duration.labels("batch").observe(float(usage.get("wall_seconds", 0.0)))
            self.cpu.inc(float(usage.get("cpu_seconds", 0.0)))
        if costs:
            self.cost.labels("batch", costs["currency"]).inc(float(costs["total"]))

    def observe_sync(self, usage: dict[str, Any], costs: dict[str, Any]) -> None:
        self.duration.labels("sync").observe(float(usage.get("wall_seconds", 0.0)))
        self.cpu.inc(float(usage.get("cpu_seconds", 0.0)))
        self.cost.labels("sync", costs["currency"]).inc(float(costs["total"]))

    def unregister(self) -> None:
        for collector in (self.created, self.ended, self.duration, self.cost, self.cpu, self._status):
            self.registry.unregister(collector)
