"""The facade the openEO router and the CLI use: catalog, jobs, users, prices, the Dask cluster, metrics.

The Dask client is created on first use: ``LocalCluster`` by default, or a connection to an existing scheduler
(``SNAPEARTH_DASK_SCHEDULER``, passed by the app layer as ``dask_scheduler``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snapearth.catalog import Catalog
from snapearth.config import Settings
from snapearth.processing import execute
from snapearth.processing.auth import Auth, User
from snapearth.processing.errors import OpenEOError
from snapearth.processing.jobs import JobStore, aggregate_costs, month_of, now
from snapearth.processing.load import LoadLimits
from snapearth.processing.metering import ensure_task_stream
from snapearth.processing.metrics import JobMetrics
from snapearth.processing.pricing import PriceTable
from snapearth.processing.publish import unpublish_results
from snapearth.processing.runner import JobRunner

logger = logging.getLogger("snapearth.processing")


@dataclass
class ServiceConfig:
    workdir: Path
    dask_scheduler: str | None = None
    dask_workers: int = 2
    dask_threads_per_worker: int = 1
    dask_processes: bool = True
    max_concurrent_jobs: int = 2
    limits: LoadLimits = field(default_factory=LoadLimits)
    max_sync_output_bytes: int = 256 * 1024**2
    max_active_jobs_per_user: int = 4
    max_stored_bytes_per_user: int = 10 * 1024**3
    chunk_size: int = 2048
    prices: PriceTable = field(default_factory=lambda: PriceTable())


def config_from_settings(settings: Settings) -> ServiceConfig:
    """Work folder ``DATA/openeo`` (results, and the price table ``prices.yaml`` when present), Dask settings."""
    workdir = (settings.data / "openeo").resolve()
    prices_file = workdir / "prices.yaml"
    prices = PriceTable.from_file(prices_file) if prices_file.is_file() else PriceTable()
    return ServiceConfig(
        workdir=workdir,
        dask_scheduler=settings.dask_scheduler,
        dask_workers=settings.dask_workers,
        prices=prices,
    )


@dataclass
class SyncResult:
    path: Path
    media_type: str
    costs: dict[str, Any]
    usage: dict[str, Any]
    tmpdir: Path


class OpenEOService:
    def __init__(self, catalog: Catalog, config: ServiceConfig, metrics: JobMetrics | None = None) -> None:
        self.catalog = catalog
        self.config = config
        self.prices = config.prices
        self.store = JobStore(catalog)
        self.auth = Auth(catalog)
        self.metrics = metrics
        self._client: Any = None
        self._cluster: Any = None
        self._client_lock = threading.Lock()
        self.runner = JobRunner(
            self.store,
            self.prices,
            config.workdir,
            self.client,
            budget_of=self.monthly_budget,
            evaluate=self.evaluate,
            max_concurrent_jobs=config.max_concurrent_jobs,
            on_finish=self._job_done,
        )
        self.runner.recover()

    # -- infrastructure ---------------------------------------------------------------------------------------
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from distributed import Client, LocalCluster

                if self.config.dask_scheduler:
                    self._client = Client(self.config.dask_scheduler, set_as_default=False)
                else:
                    self._cluster = LocalCluster(
                        n_workers=self.config.dask_workers,
                        threads_per_worker=self.config.dask_threads_per_worker,
                        processes=self.config.dask_processes,
                        dashboard_address=":0",
                    )
                    self._client = Client(self._cluster, set_as_default=False)
                ensure_task_stream(self._client)
            return self._client

    def close(self) -> None:
        self.runner.shutdown()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None

    def _job_done(self, job: dict[str, Any]) -> None:
        if self.metrics:
            self.metrics.observe_job(job)

    # -- users and budgets ------------------------------------------------------------------------------------
    def monthly_budget(self, user_id: str) -> float | None:
        user = self.auth.user(user_id)
        return user.monthly_budget if user.monthly_budget is not None else self.prices.default_monthly_budget

    def check_budget(self, user: User, expected_cost: float) -> None:
        budget = self.monthly_budget(user.user_id)
        if budget is None:
            return
        spent = self.store.spent(user.user_id, month_of(now()))
        if spent + expected_cost > budget:
            raise OpenEOError(
                "PaymentRequired",
                f"budget: {user.user_id} has spent {spent:.4f} of a monthly budget of {budget} "
                f"{self.prices.currency}; this run is estimated at {expected_cost:.4f}",
            )

    def check_quotas(self, user: User) -> None:
        """Concurrent jobs and stored results per user (results count until their job is deleted)."""
        jobs = self.store.jobs(user.user_id)
        active = sum(job["status"] in ("queued", "running") for job in jobs)
        if active >= self.config.max_active_jobs_per_user:
            raise OpenEOError(
                "PermissionsInsufficient",
                f"quota: {user.user_id} has {active} queued or running jobs, the limit is "
                f"{self.config.max_active_jobs_per_user}; wait for one to finish or stop one",
            )
        stored = sum(int(r.get("size", 0)) for job in jobs for r in job.get("results") or [])
        if stored >= self.config.max_stored_bytes_per_user:
            raise OpenEOError(
                "StorageQuotaExceeded",
                f"quota: {user.user_id} stores {stored:,} bytes of results, the limit is "
                f"{self.config.max_stored_bytes_per_user:,}; delete finished jobs (DELETE /jobs/{{job_id}})",
            )

    def costs_report(self, user_id: str | None = None, month: str | None = None) -> list[dict[str, Any]]:
        rows = aggregate_costs(self.store.ledger(user_id, month))
        known = {user.user_id for user in self.auth.users()}
        for row in rows:
            row["budget"] = self.monthly_budget(row["user"]) if row["user"] in known else None
        return rows

    # -- processing -------------------------------------------------------------------------------------------
    def evaluate(self, process: dict[str, Any], default_format: str = "JSON") -> execute.Evaluation:
        return execute.evaluate(
            process,
            self.catalog,
            limits=self.config.limits,
            default_format=default_format,
            chunk_size=self.config.chunk_size,
        )

    def estimate(self, process: dict[str, Any], job_options: dict[str, Any] | None) -> dict[str, Any]:
        evaluation = self.evaluate(process)
        return self.prices.estimate(evaluation.bytes_to_read, evaluation.output_bytes_estimate, job_options)

    def run_sync(self, user: User, body: dict[str, Any]) -> SyncResult:
        """``POST /result``: estimate, check the budget, compute (metered), write one file."""
        evaluation = self.evaluate(body)
        options = body.get("job_options") or {}
        if evaluation.output_bytes_estimate > self.config.max_sync_output_bytes:
            raise OpenEOError(
                "ProcessGraphComplexity",
                f"result: about {evaluation.output_bytes_estimate:,} bytes, more than the synchronous limit "
                f"{self.config.max_sync_output_bytes:,}; run it as a batch job",
            )
        estimate = self.prices.estimate(evaluation.bytes_to_read, evaluation.output_bytes_estimate, options)
        self.check_budget(user, estimate["costs"]["total"])
        tmpdir = Path(tempfile.mkdtemp(prefix="openeo-sync-", dir=self._tmp_root()))
        try:
            outcome = execute.run(evaluation, self.client(), tmpdir)
            if len(outcome.files) != 1:
                raise OpenEOError(
                    "FormatUnsupported",
                    f"result: {len(outcome.files)} files (one GTiff per time step); reduce the t dimension, use "
                    "netCDF, or run a batch job",
                    field="format",
                )
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        costs = self.prices.costs(outcome.usage, options)
        self.store.record_usage(user.user_id, outcome.usage.as_dict(), costs, job_id=None, kind="sync")
        if self.metrics:
            self.metrics.observe_sync(outcome.usage.as_dict(), costs)
        file = outcome.files[0]
        return SyncResult(file.path, file.media_type, costs, outcome.usage.as_dict(), tmpdir)

    def _tmp_root(self) -> Path:
        root = self.config.workdir / "tmp"
        root.mkdir(parents=True, exist_ok=True)
        return root

    # -- jobs -------------------------------------------------------------------------------------------------
    def create_job(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        graph = execute.graph_of(body)
        process = body.get("process", body)
        problems = execute.validate_graph(graph, self.catalog)
        if problems:
            raise problems[0]
        options = body.get("job_options") or {}
        self.prices.requested(options)
        budget = body.get("budget")
        if budget is not None and (not isinstance(budget, int | float) or budget < 0):
            raise OpenEOError("BadRequest", f"budget: {budget!r} must be a number >= 0", field="budget")
        job = self.store.create(
            user.user_id,
            process,
            title=body.get("title"),
            description=body.get("description"),
            plan=body.get("plan"),
            budget=budget,
            job_options=options,
        )
        if self.metrics:
            self.metrics.created.inc()
        return job

    def start_job(self, user: User, job_id: str) -> dict[str, Any]:
        job = self.store.get(job_id, user.user_id)
        if job["status"] in ("queued", "running"):
            return job
        self.check_quotas(user)
        estimate = self.estimate(job["process"], job.get("job_options"))
        expected = estimate["costs"]["total"]
        if job.get("budget") is not None and expected > float(job["budget"]):
            raise OpenEOError(
                "PaymentRequired",
                f"budget: the job is estimated at {expected:.4f} {self.prices.currency}, above its budget "
                f"{job['budget']}",
            )
        self.check_budget(user, expected)
        self.store.log(job_id, "info", f"estimated cost {expected:.6f} {self.prices.currency}", estimate=estimate)
        return self.runner.start(job_id)

    def delete_job(self, user: User, job_id: str) -> None:
        self.store.get(job_id, user.user_id)
        self.runner.stop(job_id)
        shutil.rmtree(self.runner.results_dir(job_id), ignore_errors=True)
        unpublish_results(self.catalog, job_id)
        self.store.delete(job_id)

    def result_file(self, user: User, job_id: str, name: str) -> tuple[Path, str]:
        job = self.store.get(job_id, user.user_id)
        for result in job["results"]:
            if result["name"] == name:
                path = Path(result["path"])
                if path.is_file():
                    return path, result["type"]
        raise OpenEOError("FileNotFound", f"asset: job {job_id} has no result file {name!r}", field="asset")
