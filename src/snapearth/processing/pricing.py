"""Costs: usage x a configurable price table, with the OpenCost rule cost = max(requested, used).

A job *requests* resources (``job_options``: ``cores``, ``memory_gb``; defaults in the price table) for its wall
time; it *uses* the CPU-seconds and memory-seconds measured on the workers. Compute is billed on the larger of
the two (what OpenCost does for Kubernetes workloads), data read per GB, results stored per GB-month.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from snapearth.errors import InvalidInputError
from snapearth.processing.metering import Usage

GB = 1024**3


class PriceTable(BaseModel):
    """Prices in ``currency``; load one from YAML with :meth:`from_file`."""

    model_config = ConfigDict(extra="forbid")

    currency: str = "EUR"
    core_hour: float = Field(default=0.05, ge=0, description="Price of one CPU core for one hour.")
    gb_hour: float = Field(default=0.006, ge=0, description="Price of one GB of memory for one hour.")
    gb_read: float = Field(default=0.002, ge=0, description="Price of one GB read from the archive.")
    gb_month_stored: float = Field(default=0.023, ge=0, description="Price of storing one GB of results for a month.")
    storage_months: float = Field(default=1.0, ge=0, description="How long results are kept (and billed), in months.")
    default_cores: float = Field(default=1.0, gt=0, description="Cores a job requests unless job_options.cores says.")
    default_memory_gb: float = Field(default=2.0, gt=0, description="Memory a job requests unless job_options says.")
    max_cores: float = Field(default=16.0, gt=0)
    max_memory_gb: float = Field(default=64.0, gt=0)
    throughput_bytes_per_core_second: float = Field(
        default=150e6, gt=0, description="Used by estimates: bytes a core processes per second."
    )
    default_monthly_budget: float | None = Field(
        default=None, ge=0, description="Budget of users without their own; None means unlimited."
    )

    @classmethod
    def from_file(cls, path: Path) -> PriceTable:
        try:
            data = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"price_table: cannot read {path}: {exc}", field="price_table") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInputError(f"price_table.{where}: {first['msg']}", field=f"price_table.{where}") from exc

    def requested(self, job_options: dict[str, Any] | None) -> tuple[float, float]:
        """(cores, memory_gb) a job requests, validated against the maxima."""
        options = job_options or {}
        cores = _positive(options.get("cores", self.default_cores), "job_options.cores", self.max_cores)
        memory = _positive(
            options.get("memory_gb", self.default_memory_gb), "job_options.memory_gb", self.max_memory_gb
        )
        return cores, memory

    def costs(self, usage: Usage, job_options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Cost breakdown of ``usage``: compute and memory on max(requested, used), read and storage."""
        cores, memory_gb = self.requested(job_options)
        requested_core_s = cores * usage.wall_seconds
        requested_gb_s = memory_gb * usage.wall_seconds
        used_gb_s = usage.memory_byte_seconds / GB
        cpu_core_hours = max(requested_core_s, usage.cpu_seconds) / 3600.0
        memory_gb_hours = max(requested_gb_s, used_gb_s) / 3600.0
        read_gb = usage.bytes_read / GB
        stored_gb_months = usage.output_bytes / GB * self.storage_months
        parts = {
            "cpu": cpu_core_hours * self.core_hour,
            "memory": memory_gb_hours * self.gb_hour,
            "read": read_gb * self.gb_read,
            "storage": stored_gb_months * self.gb_month_stored,
        }
        return {
            "currency": self.currency,
            "total": round(sum(parts.values()), 8),
            "breakdown": {k: round(v, 8) for k, v in parts.items()},
            "quantities": {
                "core_hours": cpu_core_hours,
                "gb_hours": memory_gb_hours,
                "gb_read": read_gb,
                "gb_months_stored": stored_gb_months,
                "requested_cores": cores,
                "requested_memory_gb": memory_gb,
            },
        }

    def running_cost(self, elapsed_s: float, job_options: dict[str, Any] | None) -> float:
        """Lower bound of a running job's cost: its requested resources for the time so far."""
        cores, memory_gb = self.requested(job_options)
        return elapsed_s / 3600.0 * (cores * self.core_hour + memory_gb * self.gb_hour)

    def estimate(self, bytes_to_read: int, output_bytes: int, job_options: dict[str, Any] | None) -> dict[str, Any]:
        """Expected usage and costs before running: duration from the configured throughput."""
        cores, _memory_gb = self.requested(job_options)
        cpu_s = bytes_to_read / self.throughput_bytes_per_core_second
        wall_s = max(cpu_s / cores, 1.0)
        usage = Usage(
            cpu_seconds=cpu_s,
            memory_byte_seconds=0.0,
            wall_seconds=wall_s,
            bytes_read=bytes_to_read,
            output_bytes=output_bytes,
        )
        return {"usage": usage.as_dict(), "costs": self.costs(usage, job_options)}


def _positive(value: Any, field: str, maximum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field}: {value!r} is not a number", field=field) from None
    if not 0 < number <= maximum:
        raise InvalidInputError(f"{field}: {number} is out of range (0, {maximum}]", field=field)
    return number
