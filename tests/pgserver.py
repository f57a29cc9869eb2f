"""A throwaway PostgreSQL 15 + PostGIS 3 + pgstac server for tests and benchmarks.

One copy of the logic: ``tests/fixtures/pg.py`` (the ``pg_url`` fixtures) and ``benchmarks/catalog.py`` both
use it. The server runs as a non-root user (PostgreSQL refuses root), listens on a free loopback port with its
socket in a private temporary directory, and everything is removed on ``stop()``. pgstac is migrated once into a
template database; every fresh database is ``CREATE DATABASE x TEMPLATE tmpl`` (the pgstac test recipe), which
takes a fraction of a second instead of a full migration.

``SNAPEARTH_TEST_PG_URL=postgresql://user@host:port/db`` uses an existing server instead (the role needs
CREATEDB); the databases created on it are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

PG_BIN = Path(os.environ.get("SNAPEARTH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PACKAGES = ("postgresql-15", "postgresql-15-postgis-3")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SERVER_USER = "pgtest"
ENV_URL = "SNAPEARTH_TEST_PG_URL"
TEMPLATE_DB = "snapearth_pgstac_template"


class PgServerError(RuntimeError):
    """The throwaway server could not be set up."""


def ensure_packages() -> None:
    """Install PostgreSQL 15 + PostGIS 3 from Debian when missing (what ``make system-deps`` does)."""
    if (PG_BIN / "pg_ctl").exists() and POSTGIS_CONTROL.exists():
        return
    if os.geteuid() != 0:
        raise PgServerError(
            f"PostgreSQL 15 + PostGIS 3 are missing: install {' '.join(PG_PACKAGES)} (make system-deps)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *PG_PACKAGES], check=True, env=env, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> str | None:
    """The account the server runs as: ``pgtest`` (created when missing) under root, else the current user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", SERVER_USER], check=True)
    return SERVER_USER


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


class PgServer:
    """A PostgreSQL server with a pgstac template database; use as a context manager or start()/stop()."""

    def __init__(
        self, *, url: str | None = None, durable: bool = False, settings: dict[str, str] | None = None
    ) -> None:
        # url: an existing server to use (default: $SNAPEARTH_TEST_PG_URL, else a throwaway one).
        # durable=False trades crash safety for speed (fsync off): right for throwaway test data.
        self.given_url = url
        self.durable = durable
        self.settings = settings or {}
        self.url = ""
        self.port = 0
        self.root: Path | None = None
        self.external = False
        self._created: list[str] = []
        self._user: str | None = None

    # lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> PgServer:
        existing = self.given_url or os.environ.get(ENV_URL)
        if existing:
            self.external = True
            self.url = existing
        else:
            ensure_packages()
            self._start_local()
        try:
            self._make_template()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_as_server_user(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        command = ["runuser", "-u", self._user, "--", *args] if self._user else args
        return subprocess.run(command, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]

    def _start_local(self) -> None:
        self._user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="snapearth-pg-"))
        data, sockets = self.root / "data", self.root / "sock"
        sockets.mkdir()
        if self._user:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run_as_server_user(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(sockets),
            "max_connections": "100",
            "shared_buffers": "128MB",
            **({} if self.durable else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        last_error = ""
        for _attempt in range(5):
            self.port = free_port()
            opts = " ".join([f"-p {self.port}"] + [f"-c {key}={value}" for key, value in options.items()])
            try:
                self._run_as_server_user(
                    [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"]
                )
                break
            except subprocess.CalledProcessError as exc:  # port taken between free_port() and start: try another
                last_error = (exc.stderr or b"").decode() + (self.root / "log").read_text(errors="replace")[-2000:]
        else:
            raise PgServerError(f"PostgreSQL did not start: {last_error}")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.external:
            for name in reversed(self._created):
                with contextlib.suppress(psycopg.Error):
                    self.drop_database(name)
            self._created.clear()
        elif self.root is not None:
            data = self.root / "data"
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._run_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # databases -------------------------------------------------------------------------------------------------

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def _make_template(self) -> None:
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        self.template = TEMPLATE_DB if not self.external else f"{TEMPLATE_DB}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.template)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        self._created.append(self.template)
        db = PgstacDB(dsn=with_database(self.url, self.template))
        try:
            Migrate(db).run_migration()
        finally:
            db.close()
        # pgstac keeps a per-connection search_path; make sure nothing stays connected before cloning.
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.template,),
            )

    def new_database(self, name: str | None = None) -> str:
        """A fresh pgstac database cloned from the template; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 10
        with self._admin() as conn:
            # PostgreSQL 15+: copying the files is three times faster than WAL-logging a small template.
            strategy = sql.SQL(" STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else "")
            while True:
                try:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                            sql.Identifier(name), sql.Identifier(self.template), strategy
                        )
                    )
                    break
                except psycopg.errors.ObjectInUse:  # the template is briefly busy (another clone): named, transient
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self._created.append(name)
        return with_database(self.url, name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        with contextlib.suppress(ValueError):
            self._created.remove(name)

    def server_pid(self) -> int | None:
        """The postmaster's pid (local servers only): the benchmark sums server-side RSS from it."""
        if self.root is None:
            return None
        first = (self.root / "data" / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
