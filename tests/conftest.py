"""Shared fixtures. Each lives in tests/fixtures/<name>.py and is re-exported here (one import line each)."""

from __future__ import annotations

from tests.fixtures.enriched import enriched_archive  # noqa: F401
from tests.fixtures.pg import fresh_pg_url, pg_server, pg_url  # noqa: F401
from tests.fixtures.sample import sample_archive  # noqa: F401
