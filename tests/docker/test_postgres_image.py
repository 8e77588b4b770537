"""The local PostgreSQL image (coolify-migrate-test/postgres:15) keeps the contract of its entrypoint.

Built by scripts/docker-rig.sh from the host's PostgreSQL 15, no registry. Every container here
runs with ``--network none``; containers and volumes are named ``cm-test-pg*`` and removed
before and after each test.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

IMAGE = "coolify-migrate-test/postgres:15"
PREFIX = "cm-test-pg"


def _remove_ours(docker: Any) -> None:
    names = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    doomed = [n for n in names if n.startswith(PREFIX)]
    if doomed:
        docker("rm", "-f", "-v", *doomed)
    volumes = [v for v in docker("volume", "ls", "-q").stdout.split() if v.startswith(PREFIX)]
    if volumes:
        docker("volume", "rm", "-f", *volumes)


@pytest.fixture
def clean_pg(docker: Any, test_images: Any) -> Iterator[None]:
    _remove_ours(docker)
    yield
    _remove_ours(docker)


@pytest.fixture
def password(leak_guard: Any) -> str:
    value = secrets.token_urlsafe(18)
    leak_guard.register(value)
    return value


def run_pg(docker: Any, name: str, *args: str, env: dict[str, str] | None = None) -> None:
    env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    docker("run", "-d", "--name", name, "--network", "none", *env_args, *args, IMAGE)


def wait_healthy(docker: Any, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = docker(
            "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", name
        ).stdout.strip()
        if state == "running healthy":
            return
        if not state.startswith("running"):
            break
        time.sleep(0.25)
    logs = docker("logs", name, check=False)
    pytest.fail(f"{name} is not healthy ({state}); its log:\n{logs.stdout}{logs.stderr}")


def psql(docker: Any, name: str, sql: str, user: str = "postgres", db: str = "postgres") -> str:
    """Run SQL with psql inside the container, over its trusted Unix socket."""
    flags = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db]
    return str(docker("exec", name, "psql", *flags, "-c", sql).stdout.strip())


def tcp_psql(docker: Any, name: str, password: str, sql: str) -> Any:
    """Run SQL over TCP to 127.0.0.1 inside the container, logging in with a password."""
    flags = ["-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
    env = ["-e", f"PGPASSWORD={password}"]
    return docker("exec", *env, name, "psql", *flags, "-c", sql, check=False)


def test_psql_pg_dump_and_pg_restore_run_inside_it(
    docker: Any, clean_pg: None, password: str
) -> None:
    name = f"{PREFIX}-dump"
    run_pg(docker, name, env={"POSTGRES_PASSWORD": password})
    wait_healthy(docker, name)

    for tool in ("psql", "pg_dump", "pg_restore"):
        assert "(PostgreSQL) 15." in docker("exec", name, tool, "--version").stdout
    assert psql(docker, name, "SELECT version()").startswith("PostgreSQL 15.")
    assert psql(docker, name, "SHOW listen_addresses") == "0.0.0.0"
    # The server runs as postgres (uid 999), not root.
    owner = docker(
        "exec", name, "sh", "-c", 'stat -c %u "/proc/$(head -n 1 "$PGDATA/postmaster.pid")"'
    ).stdout.strip()
    assert owner == "999"

    psql(docker, name, "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
    psql(docker, name, "INSERT INTO notes VALUES (1, 'survives a dump')")
    docker("exec", name, "pg_dump", "-U", "postgres", "-Fc", "-f", "/tmp/notes.dump", "postgres")
    psql(docker, name, "CREATE DATABASE restored")
    docker("exec", name, "pg_restore", "-U", "postgres", "-d", "restored", "/tmp/notes.dump")
    assert psql(docker, name, "SELECT id, body FROM notes", db="restored") == "1|survives a dump"

    # TCP (inside the container) asks for the password: the right one works, a wrong one not.
    ok = tcp_psql(docker, name, password, "SELECT 1")
    assert ok.returncode == 0 and ok.stdout.strip() == "1", ok.stderr
    bad = tcp_psql(docker, name, "not-the-password", "SELECT 1")
    assert bad.returncode != 0
    assert "password authentication failed" in bad.stderr


def test_postgres_user_and_db_are_created_on_first_start(
    docker: Any, clean_pg: None, password: str
) -> None:
    name = f"{PREFIX}-custom"
    env = {"POSTGRES_PASSWORD": password, "POSTGRES_USER": "redash", "POSTGRES_DB": "redash"}
    run_pg(docker, name, env=env)
    wait_healthy(docker, name)
    who = psql(docker, name, "SELECT current_user, current_database()", "redash", "redash")
    assert who == "redash|redash"
    is_super = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    assert psql(docker, name, is_super, "redash", "redash") == "t"


def test_it_runs_as_user_postgres_on_a_new_volume(docker: Any, clean_pg: None) -> None:
    """``--user postgres``: no root at all; a new volume starts out as postgres's."""
    name = f"{PREFIX}-user"
    run_pg(docker, name, "--user", "postgres", "-v", f"{PREFIX}-user:/var/lib/postgresql/data")
    wait_healthy(docker, name)
    uids = docker("exec", name, "sh", "-c", "stat -c %u /proc/1 /var/lib/postgresql/data")
    assert uids.stdout.split() == ["999", "999"]
    assert psql(docker, name, "SELECT current_user") == "postgres"


def test_data_survive_a_restart_and_a_new_container_on_the_volume(
    docker: Any, clean_pg: None, password: str
) -> None:
    name, volume = f"{PREFIX}-keep", f"{PREFIX}-data"
    mount = ("-v", f"{volume}:/var/lib/postgresql/data")
    docker("volume", "create", volume)
    run_pg(docker, name, *mount, env={"POSTGRES_PASSWORD": password})
    wait_healthy(docker, name)
    psql(docker, name, "CREATE TABLE kept (body text)")
    psql(docker, name, "INSERT INTO kept VALUES ('still here')")

    docker("restart", name)
    wait_healthy(docker, name)
    assert psql(docker, name, "SELECT body FROM kept") == "still here"

    # A new container (a re-created Compose service) finds the cluster and does not initialise.
    docker("rm", "-f", name)
    run_pg(docker, name, *mount, env={"POSTGRES_PASSWORD": "ignored-on-a-later-start"})
    wait_healthy(docker, name)
    assert psql(docker, name, "SELECT body FROM kept") == "still here"
    assert "initialising" not in docker("logs", name).stderr
    # The password is still the first start's.
    ok = tcp_psql(docker, name, password, "SELECT 1")
    assert ok.returncode == 0 and ok.stdout.strip() == "1", ok.stderr


def test_docker_stop_is_a_fast_shutdown(docker: Any, clean_pg: None) -> None:
    name = f"{PREFIX}-stop"
    run_pg(docker, name)
    wait_healthy(docker, name)
    # A session in the middle of a query: a "smart" shutdown (the postmaster's own SIGTERM) would
    # wait for it until docker stop's timeout and the SIGKILL after it.
    docker("exec", "-d", name, "psql", "-U", "postgres", "-c", "SELECT pg_sleep(600)")
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE query = 'SELECT pg_sleep(600)' AND state = 'active'"
    )
    deadline = time.monotonic() + 20
    while psql(docker, name, sleeping) != "1":
        if time.monotonic() > deadline:
            pytest.fail("the sleeping session never showed up")
        time.sleep(0.2)

    started = time.monotonic()
    docker("stop", "-t", "30", name)
    took = time.monotonic() - started
    assert took < 5, f"docker stop took {took:.1f} s"
    state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
    assert state == ["exited", "0"]
    logs = docker("logs", name).stderr
    assert "received fast shutdown request" in logs
    assert "database system is shut down" in logs
