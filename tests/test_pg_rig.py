"""The PostgreSQL the tests run against (scripts/pg-rig.sh, tests/pg.py) is what they assume.

A real PostgreSQL 15, on a Unix socket only; ``pg_database`` gives a database of one's own that
is really gone afterwards; the ``pg_dump`` of the same major version dumps it and ``psql``
restores the dump. Without a server these skip, or fail under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg import (
    DB_PREFIX,
    ENV_VAR,
    MAJOR,
    connect,
    databases,
    fresh_database,
    pg_tool,
    with_dbname,
)

HERE = Path(__file__).resolve().parent


def _dbname(conninfo: str) -> str:
    with connect(conninfo) as conn:
        return str(conn.execute("SELECT current_database()").fetchone()[0])


def test_the_server_is_postgresql_15(pg_server: str) -> None:
    with connect(pg_server) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        assert version.startswith(f"PostgreSQL {MAJOR}."), version
        assert conn.info.server_version // 10000 == MAJOR
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]


def test_the_server_listens_on_no_tcp_port(pg_server: str) -> None:
    with connect(pg_server) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        # This very session came through the Unix socket, not over TCP.
        assert conn.execute("SELECT inet_server_addr()").fetchone()[0] is None
        assert conn.info.host.startswith("/"), conn.info.host


def test_fresh_database_exists_inside_and_is_dropped_after(pg_server: str) -> None:
    with fresh_database(pg_server) as conninfo:
        name = _dbname(conninfo)
        assert name.startswith(f"{DB_PREFIX}_")
        assert name in databases(pg_server)
        with connect(conninfo) as conn:
            conn.execute("CREATE TABLE notes (body text)")
            conn.execute("INSERT INTO notes VALUES ('kept until the block ends')")
        # A session the test forgets to close must not keep the database alive.
        lingering = connect(conninfo)
        assert lingering.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    try:
        assert name not in databases(pg_server)
        with pytest.raises(_psycopg_error()):
            lingering.execute("SELECT 1")
    finally:
        lingering.close()


def test_fresh_database_is_dropped_when_the_test_fails(pg_server: str) -> None:
    names = []
    with pytest.raises(RuntimeError, match="boom"), fresh_database(pg_server) as conninfo:
        names.append(_dbname(conninfo))
        raise RuntimeError("boom")
    assert names
    assert names[0] not in databases(pg_server)


def test_pg_database_is_a_new_empty_database(pg_server: str, pg_database: str) -> None:
    name = _dbname(pg_database)
    assert name.startswith(f"{DB_PREFIX}_")
    assert name in databases(pg_server)
    with connect(pg_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    assert tables == 0


def test_pg_dump_of_the_servers_major_dumps_it_and_psql_restores_it(
    pg_server: str, pg_database: str
) -> None:
    pg_dump = pg_tool("pg_dump")
    psql = pg_tool("psql")
    assert pg_dump is not None, (
        f"no pg_dump of PostgreSQL {MAJOR} (apt-get install postgresql-client-{MAJOR})"
    )
    assert psql is not None, f"no psql of PostgreSQL {MAJOR}"
    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=True)
    assert f"(PostgreSQL) {MAJOR}." in version.stdout
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes VALUES (1, 'dumped and restored')")

    dump = subprocess.run(
        [pg_dump, "--no-owner", "--dbname", pg_database],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dump.returncode == 0, dump.stderr
    assert "CREATE TABLE public.notes" in dump.stdout
    assert "dumped and restored" in dump.stdout

    with fresh_database(pg_server) as restored:
        load = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", restored],
            input=dump.stdout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert load.returncode == 0, load.stderr
        with connect(restored) as conn:
            rows = conn.execute("SELECT id, body FROM notes").fetchall()
    assert rows == [(1, "dumped and restored")]


# pytest.fail in a fixture reports the test as an error in its setup.
@pytest.mark.parametrize(
    ("ci", "outcome"), [(False, "1 skipped"), (True, "1 error")], ids=["local", "ci"]
)
def test_without_a_server_the_fixtures_skip_or_fail_under_ci(
    tmp_path: Path, ci: bool, outcome: str
) -> None:
    """Run a test that needs ``pg_server`` in a child pytest, pointed at a socket nobody serves."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CI", "COOLIFY_MIGRATE_REQUIRE_PG", "PYTEST_ADDOPTS"}
    }
    env[ENV_VAR] = with_dbname(f"host={tmp_path} user=postgres", "postgres")
    if ci:
        env["CI"] = "true"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{HERE / 'test_pg_rig.py'}::test_the_server_is_postgresql_15",
        ],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    assert outcome in lines[-1], proc.stdout
    assert "does not answer" in proc.stdout, proc.stdout
    assert (proc.returncode == 0) is (not ci), proc.stdout


def _psycopg_error() -> type[BaseException]:
    import psycopg

    return psycopg.Error  # type: ignore[no-any-return]
