"""Batch jobs on Dask: a small thread pool drives jobs, the Dask cluster does the work.

A job that fails records why (its status ``error`` and a log entry) and never takes the server or other jobs
down; a canceled job's tasks are cancelled on the cluster; a job whose cost passes its own budget or its
owner's monthly budget is stopped. On start-up, jobs left ``running`` by a previous server are marked
``error`` (their Dask work died with it) and ``queued`` jobs are queued again.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from snapearth.errors import SnapEarthError
from snapearth.processing import execute
from snapearth.processing.errors import OpenEOError, openeo_code
from snapearth.processing.jobs import JobStore, month_of, now
from snapearth.processing.metering import Canceled, Usage
from snapearth.processing.pricing import PriceTable
from snapearth.processing.publish import publish_results, unpublish_results

logger = logging.getLogger("snapearth.processing")


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        prices: PriceTable,
        workdir: Path,
        client: Callable[[], Any],
        *,
        budget_of: Callable[[str], float | None],
        evaluate: Callable[[dict[str, Any]], execute.Evaluation],
        max_concurrent_jobs: int = 2,
        on_finish: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.prices = prices
        self.workdir = workdir
        self.client = client
        self.budget_of = budget_of
        self.evaluate = evaluate
        self.on_finish = on_finish
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent_jobs, thread_name_prefix="openeo-job")
        self._cancel: dict[str, str] = {}
        self._lock = threading.Lock()

    def results_dir(self, job_id: str) -> Path:
        return self.workdir / "jobs" / job_id

    def recover(self) -> None:
        """Called once at start-up: reconcile jobs a previous server left behind."""
        for job in self.store.jobs():
            if job["status"] == "running":
                self.store.update(
                    job["id"], status="error", error={"code": "Internal", "message": "the server restarted"}
                )
                self.store.log(job["id"], "error", "the server restarted while the job was running; start it again")
            elif job["status"] == "queued":
                self.store.log(job["id"], "info", "queued again after a server restart")
                self._pool.submit(self._run_safely, job["id"])

    def start(self, job_id: str) -> dict[str, Any]:
        job = self.store.get(job_id)
        if job["status"] in ("queued", "running"):
            return job
        with self._lock:
            self._cancel.pop(job_id, None)
        job = self.store.transition(
            job_id,
            ("created", "canceled", "error", "finished"),
            "queued",
            progress=0,
            error=None,
            usage=None,
            costs=None,
            results=[],
        )
        self.store.log(job_id, "info", "job queued")
        self._pool.submit(self._run_safely, job_id)
        return job

    def stop(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job["status"] not in ("queued", "running"):
            return
        with self._lock:
            self._cancel[job_id] = "canceled by its owner"
        if job["status"] == "queued":
            try:
                self.store.transition(job_id, ("queued",), "canceled")
                self.store.log(job_id, "info", "job canceled before it started")
            except OpenEOError:
                pass  # it started meanwhile: the running job sees the cancel flag

    def shutdown(self) -> None:
        with self._lock:
            for job in self.store.jobs():
                if job["status"] in ("queued", "running"):
                    self._cancel[job["id"]] = "the server is shutting down"
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- the job ----------------------------------------------------------------------------------------------
    def _run_safely(self, job_id: str) -> None:
        try:
            self._run(job_id)
        except Exception as exc:  # a job never takes the runner down
            logger.exception("job %s failed unexpectedly", job_id)
            self._fail(job_id, "Internal", f"internal error: {type(exc).__name__}: {exc}", traceback.format_exc())

    def _run(self, job_id: str) -> None:
        with self._lock:
            reason = self._cancel.get(job_id)
        try:
            job = self.store.transition(job_id, ("queued",), "running", progress=1)
        except OpenEOError:
            return  # canceled or deleted while queued
        if reason:
            self._cancelled(job_id, reason, None)
            return
        self.store.log(job_id, "info", "job started")
        started = time.time()
        user = job["user"]
        options = job.get("job_options") or {}
        spent_before = self.store.spent(user, month_of(now()))
        monthly = self.budget_of(user)
        job_budget = job.get("budget")

        def should_stop(elapsed: float) -> str | None:
            with self._lock:
                flag = self._cancel.get(job_id)
            if flag:
                return flag
            running = self.prices.running_cost(elapsed, options)
            if job_budget is not None and running > float(job_budget):
                return f"budget: the job's cost passed its budget {job_budget} {self.prices.currency}"
            if monthly is not None and spent_before + running > monthly:
                return f"budget: {user}'s monthly budget {monthly} {self.prices.currency} is used up"
            return None

        out_dir = self.results_dir(job_id)
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            evaluation = self.evaluate(job["process"])
            self.store.log(
                job_id,
                "info",
                "process graph evaluated",
                bytes_to_read=evaluation.bytes_to_read,
                format=evaluation.format,
            )
            outcome = execute.run(evaluation, self.client(), out_dir, should_stop=should_stop)
        except Canceled as exc:
            self._cancelled(job_id, str(exc), Usage(wall_seconds=time.time() - started))
            return
        except SnapEarthError as exc:
            self._fail(job_id, openeo_code(exc)[0], exc.message)
            return
        usage = outcome.usage
        costs = self.prices.costs(usage, options)
        self.store.record_usage(user, usage.as_dict(), costs, job_id=job_id, kind="batch")
        results = [
            {
                "name": f.path.name,
                "path": str(f.path),
                "type": f.media_type,
                "size": f.size,
                "datetime": f.datetime,
                "bbox": f.bbox,
                "epsg": f.epsg,
            }
            for f in outcome.files
        ]
        changes = {"progress": 100, "usage": usage.as_dict(), "costs": costs, "results": results}
        # publish first: a client that sees "finished" finds the results collection in the catalog
        try:
            publish_results(self.store.catalog, job | changes | {"status": "finished", "updated": now()})
        except SnapEarthError as exc:
            self.store.log(job_id, "warning", f"results not published to the catalog: {exc.message}")
        try:
            job = self.store.transition(job_id, ("running",), "finished", **changes)
        except OpenEOError:  # deleted while its last tasks ran: keep nothing
            shutil.rmtree(out_dir, ignore_errors=True)
            unpublish_results(self.store.catalog, job_id)
            return
        self.store.log(
            job_id,
            "info",
            f"job finished: {len(results)} file(s), cost {costs['total']} {costs['currency']}",
            usage=usage.as_dict(),
        )
        if self.on_finish:
            self.on_finish(job)

    def _cancelled(self, job_id: str, reason: str, usage: Usage | None) -> None:
        job = self.store.get(job_id)
        options = job.get("job_options") or {}
        changes: dict[str, Any] = {}
        if usage is not None:
            costs = self.prices.costs(usage, options)
            self.store.record_usage(job["user"], usage.as_dict(), costs, job_id=job_id, kind="batch")
            changes = {"usage": usage.as_dict(), "costs": costs}
        if reason.startswith("budget:"):
            changes["error"] = {"code": "PaymentRequired", "message": reason}
            job = self.store.transition(job_id, ("running", "queued"), "error", **changes)
            self.store.log(job_id, "error", f"job stopped: {reason}")
        else:
            job = self.store.transition(job_id, ("running", "queued"), "canceled", **changes)
            self.store.log(job_id, "info", f"job canceled: {reason}")
        if self.on_finish:
            self.on_finish(job)

    def _fail(self, job_id: str, code: str, message: str, trace: str | None = None) -> None:
        try:
            job = self.store.update(job_id, status="error", error={"code": code, "message": message})
        except OpenEOError:
            return  # deleted meanwhile
        self.store.log(job_id, "error", message, **({"trace": trace} if trace else {}))
        if self.on_finish:
            self.on_finish(job)
