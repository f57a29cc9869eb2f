"""schemathesis over the whole OpenAPI document (/api): whatever a client sends, the answer is never a 5xx.

Hypothesis drives each operation's strategy directly (schemathesis' pytest plugin does not load under the
installed pytest); examples per operation are few and derandomised so the run is quick and repeatable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from snapearth.api.app import create_app
from tests.api.conftest import Archive, copy_archive, settings_for

EXAMPLES = 4  # per operation: the whole run stays around a minute on two idle cores


@pytest.mark.slow
# schemathesis raises the recursion limit while generating deep schemas; hypothesis warns it cannot restore it
@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset:hypothesis.errors.HypothesisWarning")
# geojson-pydantic warns (and then accepts) on a GeoJSON bbox crossing the antimeridian in fuzzed bodies
@pytest.mark.filterwarnings("ignore:BBOX crossing the Antimeridian:UserWarning")
def test_no_operation_answers_5xx(api_archive: Archive, tmp_path: Path) -> None:
    archive = copy_archive(api_archive, tmp_path / "archive")
    app = create_app(settings_for(api_archive, catalog=archive.catalog_url))
    schema = schemathesis.openapi.from_asgi("/api", app)
    failures: list[str] = []
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), [r for r in results if not isinstance(r, Ok)]
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=60)  # first calls of some routers load models (seconds)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.text[:300]}")

        check()
    assert not failures, "\n".join(failures[:20])
