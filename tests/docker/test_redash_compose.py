"""Redash as a real Compose project on the private engine: install, an upgrade across a required
stop whose last migration fails (everything rolled back), the same upgrade once the release is
fixed, then ``rollback --to`` the first pre-upgrade backup.

The project is Redash's own layout (services server, scheduler, worker and adhoc_worker on the
``redash/redash`` image in one anchor, redis, postgres; the env file shared through ``env_file``;
``postgres-data/`` bound into the database service). The ``redash/redash`` images are local
stand-ins (tests/docker/images/redash): they answer ``create_db``, ``manage db upgrade`` (SQL
migrations keyed by the real alembic revisions) and ``server``, which exits when the database is
not at its release's head. PostgreSQL is the real server (the rig's PostgreSQL 15 image). The
containers use the host network bound to 127.0.0.1 (the rig's engine has no bridge), so the
database URL is ``127.0.0.1:<port>`` instead of the service name.

The data sources and alert destinations are written, and read back after every step, with
Redash's own crypto library (``redash_db``, sqlalchemy-utils FernetEngine). A watcher samples
every process's command line during the whole test: no secret may appear on one.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redash_db
from coolify_migrate.config.envfile import EnvFile
from support import SRC, ProcWatch

REPO = Path(__file__).resolve().parent.parent.parent
INSTALL = REPO / "scripts" / "install.sh"
PROJECT = "cm-test-redash"
STANDIN = "coolify-migrate-test/redash"
FIRST, STOP, TARGET = "8.0.0.b32245", "10.1.0.b50633", "25.1.0"
HEADS = {FIRST: "e5c7a4e2df4d", STOP: "89bc7873a3e0", TARGET: "9e8c841d1a30"}

pytestmark = pytest.mark.slow

COMPOSE = """\
name: {project}
x-redash-service: &redash-service
  image: redash/redash:{tag}
  depends_on:
    - postgres
    - redis
  env_file: {dir}/env
  network_mode: host
  restart: "no"
services:
  server:
    <<: *redash-service
    command: server
    environment:
      REDASH_WEB_WORKERS: 4
  scheduler:
    <<: *redash-service
    command: scheduler
  adhoc_worker:
    <<: *redash-service
    command: worker
    environment:
      QUEUES: "queries"
      WORKERS_COUNT: 2
  worker:
    <<: *redash-service
    command: worker
    environment:
      QUEUES: "periodic,emails,default"
      WORKERS_COUNT: 1
  redis:
    image: coolify-migrate-test/svc:1.0.0
    command: ["redis"]
    network_mode: none
  postgres:
    image: coolify-migrate-test/postgres:15
    env_file: {dir}/env
    command: ["-c", "listen_addresses=127.0.0.1", "-c", "port={port}"]
    network_mode: host
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -q -h 127.0.0.1 -p {port} -U postgres"]
      interval: 1s
      timeout: 5s
      retries: 60
    volumes:
      - {dir}/postgres-data:/var/lib/postgresql/data
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Project:
    def __init__(self, directory: Path, docker_host: str, docker: Any, guard: Any) -> None:
        self.dir, self.host, self.docker, self.guard = directory, docker_host, docker, guard
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        guard.register(self.password)

    @property
    def env(self) -> EnvFile:
        return EnvFile.load(self.dir / "env")

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user=postgres password={self.password} "
            "dbname=postgres"
        )

    def data_key(self) -> str:
        key = self.env.get("REDASH_SECRET_KEY")
        assert key, "the env file has no data key"
        self.guard.register(key)
        return key

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        from coolify_migrate.runtimes.compose_binary import find_compose

        proc = subprocess.run(
            [*find_compose(), "-f", str(self.dir / "compose.yaml"), *args],
            env={**os.environ, "DOCKER_HOST": self.host},
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.guard.record(f"compose {args[:1]}", proc.stdout + proc.stderr)
        if check:
            assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    def images(self) -> dict[str, str]:
        """Service -> the image its running container was made from."""
        out = self.compose("ps", "--format", "json").stdout
        rows: list[dict[str, Any]] = []
        for line in out.strip().splitlines():
            got = json.loads(line)
            rows.extend(got if isinstance(got, list) else [got])
        return {str(r["Service"]): str(r["Image"]) for r in rows if r.get("State") == "running"}

    def head(self) -> str:
        import psycopg2

        conn = psycopg2.connect(self.conninfo)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                return str(cur.fetchone()[0])
        finally:
            conn.close()

    def column_type(self, table: str, column: str) -> str | None:
        import psycopg2

        conn = psycopg2.connect(self.conninfo)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = %s AND column_name = %s",
                    (table, column),
                )
                row = cur.fetchone()
                return str(row[0]) if row else None
        finally:
            conn.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "coolify_migrate", *args, "--app", "redash",
             "--data-dir", str(self.dir), "--runtime", "docker"],
            env={**os.environ, "PYTHONPATH": str(SRC), "DOCKER_HOST": self.host,
                 "COOLIFY_MIGRATE_HEALTH_TIMEOUT": "90"},
            capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.guard.record(f"coolify-migrate {' '.join(args[:2])} stdout", proc.stdout)
        self.guard.record(f"coolify-migrate {' '.join(args[:2])} stderr", proc.stderr)
        return proc

    def tag(self, release: str, source: str) -> None:
        self.docker("tag", f"{STANDIN}:{source}", f"redash/redash:{release}")


@pytest.fixture
def project(
    tmp_path: Path, docker_host: str, docker: Any, test_images: Any, leak_guard: Any
) -> Iterator[Project]:
    directory = tmp_path / "redash"
    directory.mkdir()
    made = Project(directory, docker_host, docker, leak_guard)
    for release in (FIRST, STOP):
        made.tag(release, release)
    made.tag(TARGET, f"{TARGET}-broken")  # the release as first published: its migration fails
    (directory / "compose.yaml").write_text(
        COMPOSE.format(project=PROJECT, tag=FIRST, dir=directory, port=made.port)
    )
    made.compose("down", "-v", "-t", "1", check=False)
    try:
        yield made
    finally:
        made.compose("down", "-v", "-t", "1", check=False)


def _install(project: Project, venv: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(INSTALL), "--app", "redash", "-f", "-x", FIRST, "--dir", str(project.dir),
         "--venv", str(venv)],
        env={**os.environ, "DOCKER_HOST": project.host, "COOLIFY_MIGRATE_MIN_FREE_MB": "64",
             "COOLIFY_MIGRATE_HEALTH_TIMEOUT": "90"},
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    project.guard.record("install.sh stdout", proc.stdout)
    project.guard.record("install.sh stderr", proc.stderr)
    return proc


def _assert_app_runs(project: Project, release: str) -> None:
    running = project.images()
    app = {running.get(s) for s in ("server", "scheduler", "worker", "adhoc_worker")}
    assert app == {f"redash/redash:{release}"}, running


def _read_all(project: Project) -> None:
    key = project.data_key()
    for table, want in redash_db.expected().items():
        got = redash_db.read_options(project.conninfo, table, key)
        assert got == want, f"{table} as Redash's library reads it: {got}"


def test_install_failed_upgrade_rolled_back_clean_upgrade_then_rollback(
    project: Project, tmp_path: Path, leak_guard: Any
) -> None:
    with ProcWatch() as watch:
        _scenario(project, tmp_path)
    env = project.env
    known = {env.get(k) or "" for k in env.keys() if k.startswith(("REDASH_", "POSTGRES_"))}  # noqa: SIM118
    known |= {project.password}
    known = {k for k in known if len(k) >= 8 and not k.startswith(("redis://", "INFO", "true"))}
    assert known, "no secrets to look for"
    leaks = watch.leaks(known)
    assert not leaks, "\n".join(leaks[:5])
    assert len(watch.seen) > 20, "the watcher saw almost no processes"


def _scenario(project: Project, tmp_path: Path) -> None:
    # -- install: the operator's env names the database; install.sh fills in the rest -----------
    (project.dir / "env").write_text(
        f"POSTGRES_PASSWORD={project.password}\n"
        f"REDASH_DATABASE_URL={project.url}\n"
        "REDASH_COOKIE_SECRET=\n"
    )
    installed = _install(project, tmp_path / "venv")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    env = project.env
    cookie = env.get("REDASH_COOKIE_SECRET")
    assert cookie and len(cookie) == 32 and cookie.isalnum()
    project.guard.register(cookie)
    assert env.get("REDASH_DATABASE_URL") == project.url  # kept, not replaced
    assert project.head() == HEADS[FIRST]  # create_db ran in a one-off server container
    running = project.images()
    assert running["server"] == f"redash/redash:{FIRST}", running
    assert {"scheduler", "worker", "adhoc_worker", "postgres", "redis"} <= set(running)
    redash_db.fill(project.conninfo, secret=project.data_key())
    _read_all(project)
    status = project.cli("status", "--json")
    assert status.returncode == 0, status.stderr

    # -- an upgrade across the required stop 10.1 whose last migration fails ------------------
    env_before = (project.dir / "env").read_bytes()
    compose_before = (project.dir / "compose.yaml").read_bytes()
    rows_before = redash_db.raw(project.conninfo)
    plan = project.cli("plan", "--to", TARGET)
    assert plan.returncode == 0, plan.stderr
    assert STOP in plan.stdout, plan.stdout
    failed = project.cli("upgrade", "--to", TARGET, "--yes")
    assert failed.returncode != 0, failed.stdout
    assert "rolled back" in failed.stderr, failed.stderr
    assert project.head() == HEADS[FIRST], "the database is back at 8.0.0's head"
    assert project.column_type("users", "details") == "json", "the half-applied change is gone"
    assert project.column_type("dashboards", "options") is None, "10.1's migration is undone"
    assert redash_db.raw(project.conninfo) == rows_before
    assert (project.dir / "env").read_bytes() == env_before
    assert (project.dir / "compose.yaml").read_bytes() == compose_before
    _assert_app_runs(project, FIRST)
    _read_all(project)

    # -- the release is fixed: the same upgrade goes through ------------------------------------
    project.tag(TARGET, TARGET)
    upgraded = project.cli("upgrade", "--to", TARGET, "--yes")
    assert upgraded.returncode == 0, upgraded.stdout[-2000:] + upgraded.stderr[-2000:]
    assert project.head() == HEADS[TARGET]
    assert project.column_type("users", "details") == "jsonb"
    assert f"redash/redash:{TARGET}" in (project.dir / "compose.yaml").read_text()
    _assert_app_runs(project, TARGET)
    _read_all(project)

    # -- rollback --to the first pre-upgrade backup ---------------------------------------------
    listed = json.loads(project.cli("backup", "list", "--json").stdout)
    backups = listed["backups"] if isinstance(listed, dict) else listed
    pre = sorted(
        (b for b in backups if b.get("reason") == "pre-upgrade"), key=lambda b: b["time_ms"]
    )
    assert len(pre) == 2, backups
    first = pre[0]
    assert first["image_tag"] == FIRST and set(first["files"]) == {"env", "compose.yaml"}
    rolled = project.cli("rollback", "--to", first["name"], "--yes")
    assert rolled.returncode == 0, rolled.stdout[-2000:] + rolled.stderr[-2000:]
    assert project.head() == HEADS[FIRST]
    assert project.column_type("users", "details") == "json"
    assert (project.dir / "env").read_bytes() == env_before
    assert (project.dir / "compose.yaml").read_bytes() == compose_before
    _assert_app_runs(project, FIRST)
    _read_all(project)

    # -- both secrets rolled on the running project: every service gets them ------------------
    server_id = project.compose("ps", "-q", "server").stdout.strip()
    cookie_roll = project.cli("secrets", "roll", "--yes", "--secret", "cookie-secret", "--yes")
    assert cookie_roll.returncode == 0, cookie_roll.stderr
    assert "logged out" in cookie_roll.stdout
    new_cookie = project.env.get("REDASH_COOKIE_SECRET")
    assert new_cookie and new_cookie != cookie
    project.guard.register(new_cookie)
    assert project.compose("ps", "-q", "server").stdout.strip() != server_id, "recreated"
    reached = _service_env(project, "worker")["REDASH_COOKIE_SECRET"] == new_cookie
    assert reached, "the worker runs with the old cookie secret"  # (values never printed)
    old_key = project.data_key()
    data_roll = project.cli("secrets", "roll", "--yes", "--force", "--yes")
    assert data_roll.returncode == 0, data_roll.stderr
    new_key = project.data_key()
    assert new_key != old_key
    for service in ("server", "scheduler", "worker", "adhoc_worker"):
        reached = _service_env(project, service)["REDASH_SECRET_KEY"] == new_key
        assert reached, f"{service} runs with the old data key"
    _read_all(project)
    assert all(v is None for v in redash_db.read_options(
        project.conninfo, "data_sources", old_key).values())  # fmt: skip


def _service_env(project: Project, service: str) -> dict[str, str]:
    """The environment of the service's running container (read without recording it)."""
    cid = project.compose("ps", "-q", service).stdout.strip()
    doc = json.loads(project.docker("inspect", cid, record=False).stdout)[0]
    return dict(item.split("=", 1) for item in doc["Config"]["Env"])
