"""Batch jobs without HTTP: restart survival, failure isolation, cancellation on Dask, budgets, metering, prices."""

from __future__ import annotations

import time
from pathlib import Path

import dask
import pytest

from snapearth.catalog import Catalog, SearchRequest
from snapearth.processing.auth import Auth, User
from snapearth.processing.errors import OpenEOError
from snapearth.processing.jobs import JobStore, aggregate_costs
from snapearth.processing.metering import Canceled, Usage, compute_metered
from snapearth.processing.pricing import PriceTable
from snapearth.processing.publish import results_document
from snapearth.processing.service import OpenEOService, ServiceConfig
from tests.fixtures.shared import offline_schemas
from tests.processing.test_openeo_api import ndvi_graph


def assert_valid_stac(*documents: dict) -> None:
    """STAC schema validation offline (../shared/tools/offline_schemas answers the schema URLs)."""
    offline_schemas()
    from stac_validator import stac_validator

    for document in documents:
        validator = stac_validator.StacValidate(extensions=True)
        assert validator.validate_dict(document), (document["id"], validator.message)


def make_service(catalog: Catalog, workdir: Path, scheduler: str, prices: PriceTable | None = None) -> OpenEOService:
    config = ServiceConfig(workdir=workdir, dask_scheduler=scheduler, prices=prices or PriceTable())
    return OpenEOService(catalog, config)


def wait(service: OpenEOService, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.store.get(job_id)
        if job["status"] in ("finished", "error", "canceled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


@pytest.fixture
def alice(scene_catalog: Catalog) -> User:
    return Auth(scene_catalog).add_user("alice", "alice-password-1")


def test_jobs_survive_a_restart_and_failures_stay_contained(
    scene_catalog: Catalog, alice: User, tmp_path: Path, dask_scheduler: str
) -> None:
    service = make_service(scene_catalog, tmp_path, dask_scheduler)
    good = service.create_job(alice, ndvi_graph("netCDF"))
    # no scene in 2023: evaluation fails with NoDataAvailable, recorded in the job; the other job is unaffected
    empty = ndvi_graph("netCDF")
    empty["process"]["process_graph"]["load"]["arguments"]["temporal_extent"] = ["2023-01-01", "2023-02-01"]
    bad = service.create_job(alice, empty)
    service.runner.start(bad["id"])
    service.start_job(alice, good["id"])
    assert wait(service, bad["id"])["status"] == "error"
    finished = wait(service, good["id"])
    assert finished["status"] == "finished"
    failed = service.store.get(bad["id"])
    assert failed["error"]["code"] == "NoDataAvailable"
    assert any(e["level"] == "error" and "no items" in e["message"] for e in service.store.logs(bad["id"]))
    assert_valid_stac(
        results_document(finished, lambda name: f"http://localhost/{name}"),
        scene_catalog.get_collection(f"openeo-{good['id']}"),  # published in the catalog
        *scene_catalog.iter_items(SearchRequest(collections=[f"openeo-{good['id']}"])),
    )

    # a job left "running" and one left "queued" by a server that died
    crashed = service.create_job(alice, ndvi_graph())
    service.store.update(crashed["id"], status="running")
    waiting = service.create_job(alice, ndvi_graph("JSON"))
    service.store.update(waiting["id"], status="queued")
    service.close()

    restarted = make_service(scene_catalog, tmp_path, dask_scheduler)
    try:
        again = restarted.store.get(good["id"])
        assert again["status"] == "finished"
        assert again["usage"] == finished["usage"]
        path, _ = restarted.result_file(alice, good["id"], "result.nc")
        assert path.stat().st_size == again["usage"]["output_bytes"]
        assert restarted.store.logs(good["id"])[-1]["message"].startswith("job finished")
        assert restarted.store.get(crashed["id"])["status"] == "error"
        assert wait(restarted, waiting["id"])["status"] == "finished"
    finally:
        restarted.close()


def test_budget_stops_a_running_job(scene_catalog: Catalog, alice: User, tmp_path: Path, dask_scheduler: str) -> None:
    expensive = PriceTable(core_hour=1e6)
    service = make_service(scene_catalog, tmp_path, dask_scheduler, expensive)
    try:
        Auth(scene_catalog).set_budget("alice", 0.01)
        job = service.create_job(alice, ndvi_graph())
        with pytest.raises(OpenEOError) as refused:
            service.start_job(alice, job["id"])  # the estimate alone is over budget
        assert refused.value.code == "PaymentRequired"
        service.runner.start(job["id"])  # bypassing the estimate: the runner stops it while it runs
        stopped = wait(service, job["id"])
        assert stopped["status"] == "error"
        assert stopped["error"]["code"] == "PaymentRequired"
        assert stopped["costs"]["total"] > 0.01
    finally:
        service.close()


def test_job_quotas(scene_catalog: Catalog, alice: User, tmp_path: Path, dask_scheduler: str) -> None:
    config = ServiceConfig(workdir=tmp_path, dask_scheduler=dask_scheduler, max_active_jobs_per_user=1)
    config.max_stored_bytes_per_user = 1
    service = OpenEOService(scene_catalog, config)
    try:
        first = service.create_job(alice, ndvi_graph("JSON"))
        second = service.create_job(alice, ndvi_graph("JSON"))
        service.store.update(first["id"], status="running")
        with pytest.raises(OpenEOError) as busy:
            service.start_job(alice, second["id"])
        assert (busy.value.code, busy.value.status) == ("PermissionsInsufficient", 403)
        service.store.update(first["id"], status="finished", results=[{"name": "a.json", "size": 10}])
        with pytest.raises(OpenEOError) as full:
            service.start_job(alice, second["id"])
        assert full.value.code == "StorageQuotaExceeded"
        service.delete_job(alice, first["id"])
        assert wait(service, service.start_job(alice, second["id"])["id"])["status"] == "finished"
    finally:
        service.close()


def test_cancel_stops_the_dask_tasks(dask_scheduler: str) -> None:
    from distributed import Client

    @dask.delayed
    def slow(i: int) -> int:
        time.sleep(0.2)
        return i

    client = Client(dask_scheduler, set_as_default=False)
    try:
        work = dask.delayed(sum)([slow(i) for i in range(40)])
        started = time.perf_counter()
        with pytest.raises(Canceled, match="by test"):
            compute_metered(client, work, should_stop=lambda elapsed: "by test" if elapsed > 0.3 else None)
        assert time.perf_counter() - started < 2.0
        time.sleep(0.5)
        left = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        assert not [k for k in left if "slow" in k]
        ran = [r for r in client.get_task_stream(start=time.time() - 10) if "slow" in str(r["key"])]
        assert len(ran) < 20  # 40 tasks of 0.2 s on 2 threads would need 4 s
    finally:
        client.close()


def test_metering_counts_the_job_tasks(dask_scheduler: str) -> None:
    import numpy as np
    from distributed import Client

    client = Client(dask_scheduler, set_as_default=False)
    try:
        array = dask.array.random.random((800, 800), chunks=(200, 200))
        result, usage = compute_metered(client, (array @ array.T).sum())
        assert np.isfinite(result)
        assert usage.tasks > 16
        assert usage.cpu_seconds > 0
        assert usage.memory_byte_seconds > 0
        assert usage.wall_seconds > 0
    finally:
        client.close()


def test_opencost_rule_bills_the_larger_of_requested_and_used() -> None:
    prices = PriceTable(core_hour=3.6, gb_hour=0.36, gb_read=1.0, gb_month_stored=2.0, storage_months=1.0)
    idle = Usage(cpu_seconds=10, wall_seconds=100, memory_byte_seconds=0, bytes_read=1024**3, output_bytes=1024**3)
    costs = prices.costs(idle, {"cores": 2, "memory_gb": 4})
    assert costs["breakdown"]["cpu"] == pytest.approx(2 * 100 / 3600 * 3.6)  # requested 2 cores x 100 s
    assert costs["breakdown"]["memory"] == pytest.approx(4 * 100 / 3600 * 0.36)
    assert costs["breakdown"]["read"] == pytest.approx(1.0)
    assert costs["breakdown"]["storage"] == pytest.approx(2.0)
    busy = Usage(cpu_seconds=1000, wall_seconds=100, memory_byte_seconds=10 * 100 * 1024**3)
    costs = prices.costs(busy, {"cores": 2, "memory_gb": 4})
    assert costs["breakdown"]["cpu"] == pytest.approx(1000 / 3600 * 3.6)  # used 1000 core-seconds
    assert costs["breakdown"]["memory"] == pytest.approx(1000 / 3600 * 0.36)
    with pytest.raises(ValueError, match=r"job_options.cores"):
        prices.costs(busy, {"cores": 1000})


def test_price_table_file_and_cost_aggregation(tmp_path: Path, scene_catalog: Catalog) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text("currency: USD\ncore_hour: 0.1\n")
    assert PriceTable.from_file(table).currency == "USD"
    table.write_text("core_hour: -1\n")
    with pytest.raises(ValueError, match=r"price_table.core_hour"):
        PriceTable.from_file(table)
    store = JobStore(scene_catalog)
    for user, total in (("alice", 1.5), ("alice", 0.5), ("bob", 2.0)):
        store.record_usage(
            user, Usage(cpu_seconds=1).as_dict(), {"total": total, "currency": "EUR"}, job_id=None, kind="sync"
        )
    rows = aggregate_costs(store.ledger())
    assert [(r["user"], r["runs"], r["cost"]) for r in rows] == [("alice", 2, 2.0), ("bob", 1, 2.0)]
    assert store.spent("alice", rows[0]["month"]) == pytest.approx(2.0)
