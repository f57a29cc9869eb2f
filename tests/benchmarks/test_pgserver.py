"""The throwaway server itself: pgstac is migrated, clones are independent, everything is removed."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests.pgserver import ENV_URL, PgServer

pytestmark = pytest.mark.pg


def test_clones_are_migrated_and_independent(pg_server: PgServer, fresh_pg_url: str, pg_url: str) -> None:
    with psycopg.connect(fresh_pg_url) as conn:
        version = conn.execute("SELECT version FROM pgstac.migrations ORDER BY datetime DESC LIMIT 1").fetchone()
        assert version is not None
        assert version[0]
        postgis = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
        assert postgis is not None
        assert postgis[0].startswith("3.")
        conn.execute("CREATE TABLE only_here (x int)")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('public.only_here')").fetchone() == (None,)


@pytest.mark.skipif(bool(os.environ.get(ENV_URL)), reason="an existing server is in use")
def test_server_is_removed_on_stop() -> None:
    server = PgServer().start()
    root = server.root
    assert root is not None
    url = server.new_database()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
