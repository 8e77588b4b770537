"""PostgreSQL for the tests: a real PostgreSQL 15 server and a fresh database per test.

A plain module, registered for every test by ``pytest_plugins = ["pg"]`` in tests/conftest.py.

The server is the one ``COOLIFY_MIGRATE_TEST_PG`` names: a libpq connection string (URI or
``key=value``) for a superuser. ``scripts/test.sh`` starts a private cluster with
``scripts/pg-rig.sh`` and exports it as ``postgresql:///postgres?host=/tmp/cm-pg.XXXXXX&user=postgres``
(a Unix socket only; nothing listens on TCP).

Fixtures:

- ``pg_server`` (session): that connection string, checked with a real connection: the server
  must say it is PostgreSQL 15 and the role must be a superuser;
- ``pg_database``: a fresh, uniquely named database (``cm_test_<hex>``) for one test, dropped
  after it even if sessions are still open; yields its connection string (``key=value`` form).

Helpers: ``fresh_database(server)`` is the context manager behind ``pg_database`` (tests use it
directly to look at the server after it ends); ``connect``, ``databases``, ``with_dbname``;
``pg_tool(name)`` finds a PostgreSQL client program of the server's major version.

Without a server, the fixtures skip, or fail when ``CI=true`` or ``COOLIFY_MIGRATE_REQUIRE_PG=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

ENV_VAR = "COOLIFY_MIGRATE_TEST_PG"
MAJOR = 15
DB_PREFIX = "cm_test"


def pg_required() -> bool:
    return os.environ.get("COOLIFY_MIGRATE_REQUIRE_PG") == "1" or os.environ.get("CI") == "true"


def _unavailable(reason: str) -> NoReturn:
    if pg_required():
        pytest.fail(f"PostgreSQL is required here but {reason}", pytrace=False)
    pytest.skip(reason)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    return psycopg


def connect(conninfo: str, **kwargs: Any) -> Any:
    """A psycopg connection (autocommit unless told otherwise) that gives up after 10 s."""
    psycopg = _psycopg()
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", 10)
    return psycopg.connect(conninfo, **kwargs)


def with_dbname(conninfo: str, dbname: str) -> str:
    """The same server and role, another database (``key=value`` form)."""
    return str(_psycopg().conninfo.make_conninfo(conninfo, dbname=dbname))


def databases(server: str) -> set[str]:
    """The databases the server's catalog lists now, read over a new connection."""
    with connect(server) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@contextmanager
def fresh_database(server: str, prefix: str = DB_PREFIX) -> Iterator[str]:
    """Create a uniquely named database; drop it on the way out, whatever happened inside."""
    sql = _psycopg().sql
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with connect(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_dbname(server, name)
    finally:
        # FORCE: a session the test left open must not keep the database alive.
        with connect(server) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _major_of(version_output: str) -> int | None:
    found = re.search(r"\(PostgreSQL\) (\d+)", version_output)
    return int(found.group(1)) if found else None


def pg_tool(name: str, major: int = MAJOR) -> Path | None:
    """The client program ``name`` (pg_dump, psql, ...) of PostgreSQL ``major``, or None.

    Debian keeps each major version's programs in /usr/lib/postgresql/<major>/bin; the one on
    PATH may be pg_wrapper or another version, so its ``--version`` is checked.
    """
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin") / name]
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir:
            candidates.append(Path(bindir) / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        if _major_of(out) == major:
            return path
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    conninfo = os.environ.get(ENV_VAR, "")
    if not conninfo:
        _unavailable(f"{ENV_VAR} is not set (scripts/pg-rig.sh start gives a private server)")
    psycopg = _psycopg()
    try:
        with connect(conninfo) as conn:
            version = conn.execute("SELECT version()").fetchone()[0]
            superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            is_super = bool(superuser.fetchone()[0])
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["no message"])[0]
        _unavailable(f"the server {ENV_VAR} names does not answer: {first}")
    if not version.startswith(f"PostgreSQL {MAJOR}."):
        pytest.fail(f"{ENV_VAR} must name a PostgreSQL {MAJOR} server; it says {version!r}")
    if not is_super:
        pytest.fail(f"{ENV_VAR} must name a superuser (the tests create and drop databases)")
    return conninfo


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    with fresh_database(pg_server) as conninfo:
        yield conninfo
