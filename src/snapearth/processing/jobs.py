"""Batch jobs, their logs, stored process graphs and usage ledger: records in the catalog database.

Everything here survives a restart of the server because it lives in the Catalog contract's records
(``put_record/get_record/list_records``), in the same database as the items.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from snapearth.catalog import Catalog
from snapearth.processing.errors import OpenEOError

JOBS = "openeo:jobs"
LOGS = "openeo:job-logs"
PROCESS_GRAPHS = "openeo:process-graphs"
USAGE = "openeo:usage"

STATUSES = ("created", "queued", "running", "finished", "canceled", "error")
ACTIVE = ("queued", "running")
MAX_LOG_ENTRIES = 1000


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def month_of(timestamp: str) -> str:
    return timestamp[:7]


class JobStore:
    """Jobs of all users; one lock serialises read-modify-write of a job inside this process."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.RLock()

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(
        self,
        user: str,
        process: dict[str, Any],
        *,
        title: str | None = None,
        description: str | None = None,
        plan: str | None = None,
        budget: float | None = None,
        job_options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        stamp = now()
        job: dict[str, Any] = {
            "id": "j-" + uuid.uuid4().hex[:20],
            "user": user,
            "title": title,
            "description": description,
            "process": process,
            "status": "created",
            "created": stamp,
            "updated": stamp,
            "plan": plan,
            "budget": budget,
            "job_options": job_options or {},
            "progress": 0,
            "usage": None,
            "costs": None,
            "error": None,
            "results": [],
        }
        self.catalog.put_record(JOBS, job["id"], job)
        self.log(job["id"], "info", "job created")
        return job

    def get(self, job_id: str, user: str | None = None) -> dict[str, Any]:
        job = self.catalog.get_record(JOBS, job_id)
        if job is None or (user is not None and job["user"] != user):
            raise OpenEOError("JobNotFound", f"job_id: job {job_id!r} does not exist", field="job_id")
        return job

    def jobs(self, user: str | None = None) -> list[dict[str, Any]]:
        jobs = [job for _, job in self.catalog.list_records(JOBS) if user is None or job["user"] == user]
        return sorted(jobs, key=lambda j: j["created"])

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            job = self.get(job_id)
            job.update(changes)
            job["updated"] = now()
            self.catalog.put_record(JOBS, job_id, job)
            return job

    def transition(self, job_id: str, allowed_from: tuple[str, ...], status: str, **changes: Any) -> dict[str, Any]:
        """Move a job to ``status`` only from one of ``allowed_from`` (raises JobLocked otherwise)."""
        with self._lock:
            job = self.get(job_id)
            if job["status"] not in allowed_from:
                raise OpenEOError(
                    "JobLocked", f"job {job_id}: cannot go from {job['status']!r} to {status!r}", field="status"
                )
            return self.update(job_id, status=status, **changes)

    def delete(self, job_id: str) -> None:
        self.catalog.delete_record(JOBS, job_id)
        self.catalog.delete_record(LOGS, job_id)

    # -- logs -------------------------------------------------------------------------------------------------
    def log(self, job_id: str, level: str, message: str, **data: Any) -> None:
        with self._lock:
            record = self.catalog.get_record(LOGS, job_id) or {"logs": []}
            logs = record["logs"]
            entry: dict[str, Any] = {"id": str(len(logs) + 1), "level": level, "message": message, "time": now()}
            if data:
                entry["data"] = data
            logs.append(entry)
            record["logs"] = logs[-MAX_LOG_ENTRIES:]
            self.catalog.put_record(LOGS, job_id, record)

    def logs(self, job_id: str, offset: str | None = None, level: str | None = None) -> list[dict[str, Any]]:
        record = self.catalog.get_record(LOGS, job_id) or {"logs": []}
        entries: list[dict[str, Any]] = record["logs"]
        if offset is not None:
            ids = [e["id"] for e in entries]
            entries = entries[ids.index(offset) + 1 :] if offset in ids else entries
        if level:
            order = ["debug", "info", "warning", "error"]
            if level not in order:
                raise OpenEOError("BadRequest", f"level: {level!r} is not one of {order}", field="level")
            entries = [e for e in entries if order.index(e["level"]) >= order.index(level)]
        return entries

    # -- usage ledger -----------------------------------------------------------------------------------------
    def record_usage(
        self, user: str, usage: dict[str, Any], costs: dict[str, Any], *, job_id: str | None, kind: str
    ) -> None:
        """One ledger line per metered run (batch job or synchronous request)."""
        stamp = now()
        key = f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.catalog.put_record(
            USAGE,
            key,
            {"user": user, "time": stamp, "month": month_of(stamp), "job_id": job_id, "kind": kind}
            | {"usage": usage, "costs": costs},
        )

    def ledger(self, user: str | None = None, month: str | None = None) -> list[dict[str, Any]]:
        lines = [line for _, line in self.catalog.list_records(USAGE)]
        return sorted(
            (
                line
                for line in lines
                if (user is None or line["user"] == user) and (month is None or line["month"] == month)
            ),
            key=lambda line: line["time"],
        )

    def spent(self, user: str, month: str) -> float:
        return sum(float(line["costs"]["total"]) for line in self.ledger(user, month))

    # -- stored process graphs --------------------------------------------------------------------------------
    def put_process_graph(self, user: str, graph_id: str, process: dict[str, Any]) -> None:
        self.catalog.put_record(PROCESS_GRAPHS, f"{user}/{graph_id}", process | {"id": graph_id})

    def get_process_graph(self, user: str, graph_id: str) -> dict[str, Any]:
        process = self.catalog.get_record(PROCESS_GRAPHS, f"{user}/{graph_id}")
        if process is None:
            raise OpenEOError(
                "ProcessGraphNotFound", f"process_graph_id: {graph_id!r} does not exist", field="process_graph_id"
            )
        return process

    def list_process_graphs(self, user: str) -> list[dict[str, Any]]:
        prefix = f"{user}/"
        return [p for key, p in self.catalog.list_records(PROCESS_GRAPHS) if key.startswith(prefix)]

    def delete_process_graph(self, user: str, graph_id: str) -> None:
        self.get_process_graph(user, graph_id)
        self.catalog.delete_record(PROCESS_GRAPHS, f"{user}/{graph_id}")


def aggregate_costs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger lines -> one row per (user, month): runs, usage totals and cost totals."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        key = (line["user"], line["month"])
        row = rows.setdefault(
            key,
            {
                "user": key[0],
                "month": key[1],
                "runs": 0,
                "cpu_seconds": 0.0,
                "memory_byte_seconds": 0.0,
                "wall_seconds": 0.0,
                "bytes_read": 0,
                "output_bytes": 0,
                "cost": 0.0,
                "currency": line["costs"].get("currency"),
            },
        )
        row["runs"] += 1
        for name in ("cpu_seconds", "memory_byte_seconds", "wall_seconds", "bytes_read", "output_bytes"):
            row[name] += line["usage"].get(name, 0)
        row["cost"] = round(row["cost"] + float(line["costs"]["total"]), 8)
    return [rows[k] for k in sorted(rows)]
