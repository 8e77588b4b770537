"""One contract for every runtime (``coolify_migrate.core.runtime``), on the private engine: the
single container (Coolify v3's, with the local test images) and a Compose project of three
services (the app, a worker on the app's image, and a real PostgreSQL) driven through the real
``docker compose`` v2. Every container runs with no network."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.app import ComposeSpec, Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, RuntimeProblem
from coolify_migrate.core.output import Recording
from coolify_migrate.core.release import Release
from coolify_migrate.core.runtime import Runtime
from coolify_migrate.runtimes.compose import ComposeRuntime
from coolify_migrate.runtimes.docker import DockerRuntime
from packaging.version import Version

pytestmark = pytest.mark.slow

SVC = "coolify-migrate-test/svc"
PG = "coolify-migrate-test/postgres:15"
PROJECT = "cm-test-contract"


class StandIn(Profile):
    """A test-only app that runs as a Compose project (the runtime is what is under test)."""

    name = "stand-in"
    title = "Stand-in"
    version_env_key = "TAG"

    def compose_spec(self) -> ComposeSpec:
        return ComposeSpec(
            app_image=SVC,
            env_file="env",
            data_services=("postgres",),
            db_service="postgres",
            health_services=("app",),
        )


COMPOSE = """\
name: {project}
services:
  app:
    image: {svc}:{tag}
    env_file: ./env
    network_mode: none
  worker:
    image: {svc}:{tag}
    command: ["worker"]
    env_file: ./env
    network_mode: none
  postgres:
    image: {pg}
    environment:
      POSTGRES_PASSWORD: not-a-secret-of-any-app
    network_mode: none
    volumes:
      - pgdata:/var/lib/postgresql/data
volumes:
  pgdata: {{}}
"""


@dataclass
class Case:
    kind: str
    runtime: Runtime
    ctx: Context
    tags: tuple[str, str, str]  # first, second, never healthy
    docker: Any

    def release(self, tag: str) -> Release:
        repo = SVC if self.kind == "compose" else "ghcr.io/coollabsio/coolify"
        return Release(Version(tag), f"{repo}:{tag}")

    def app_running(self) -> bool:
        if self.kind == "compose":
            return _state(self, "app") == "running"
        doc = json.loads(self.docker("inspect", "coolify", record=False).stdout)[0]
        return bool(doc["State"]["Running"])


def _state(case: Case, service: str) -> str:
    assert isinstance(case.runtime, ComposeRuntime)
    out = case.runtime.compose("ps", "--all", "--format", "json", service).stdout.decode()
    rows = [json.loads(line) for line in out.strip().splitlines() if line.strip()]
    flat = [r for row in rows for r in (row if isinstance(row, list) else [row])]
    return str(flat[0]["State"]) if flat else "missing"


def _compose_down(data_dir: Path, docker_host: str) -> None:
    if (data_dir / "compose.yaml").exists():
        subprocess.run(
            ["docker-compose", "-f", str(data_dir / "compose.yaml"), "down", "-v", "-t", "1"],
            env={**os.environ, "DOCKER_HOST": docker_host},
            capture_output=True,
            check=False,
            timeout=120,
        )


@pytest.fixture(params=["container", "compose"])
def case(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    docker: Any,
    docker_host: str,
    test_images: Any,
    clean_coolify: None,
    leak_guard: Any,
) -> Iterator[Case]:
    yield from _case(request.param, tmp_path, docker, docker_host, leak_guard)


@pytest.fixture
def compose_case(
    tmp_path: Path, docker: Any, docker_host: str, test_images: Any, leak_guard: Any
) -> Iterator[Case]:
    yield from _case("compose", tmp_path, docker, docker_host, leak_guard)


def _case(
    kind: str, tmp_path: Path, docker: Any, docker_host: str, leak_guard: Any
) -> Iterator[Case]:
    data_dir = tmp_path / "app"
    data_dir.mkdir()
    if kind == "container":
        env = EnvFile(data_dir / ".env", "")
        env.set("TAG", "3.12.35")
        for key, value in CoolifyV3().generated_env().items():
            env.set(key, value)
            if "SECRET" in key:
                leak_guard.register(value)
        env.save()
        ctx = Context(
            profile=CoolifyV3(), data_dir=data_dir, out=Recording(), runtime_name="docker"
        )
        rt: Runtime = DockerRuntime(ctx, network="none", health_timeout=30, settle=1)
        ctx.runtime_factory = lambda c: rt
        yield Case("container", rt, ctx, ("3.12.35", "3.12.36", "3.12.37"), docker)
        return
    (data_dir / "env").write_text("STAND_IN_SETTING=kept\nSTAND_IN_SECRET=s3cr3t-value-42\n")
    leak_guard.register("s3cr3t-value-42")
    (data_dir / "compose.yaml").write_text(
        COMPOSE.format(project=PROJECT, svc=SVC, tag="1.0.0", pg=PG)
    )
    ctx = Context(profile=StandIn(), data_dir=data_dir, out=Recording(), runtime_name="compose")
    rt = ComposeRuntime(ctx, health_timeout=60, settle=1)
    ctx.runtime_factory = lambda c: rt
    _compose_down(data_dir, docker_host)
    try:
        yield Case("compose", rt, ctx, ("1.0.0", "2.0.0", "3.0.0"), docker)
    finally:
        _compose_down(data_dir, docker_host)


def test_start_stop_and_the_version(case: Case) -> None:
    rt = case.runtime
    rt.check()
    first = case.tags[0]
    if case.kind == "container":
        assert rt.current_image_tag() is None  # nothing created yet
    rt.start()
    assert case.app_running() and rt.current_image_tag() == first
    rt.stop()
    assert not case.app_running()
    if case.kind == "compose":
        assert _state(case, "postgres") == "running", "the data services stay up"
        assert _state(case, "worker") != "running", "every service on the app's image stops"
    rt.start()
    assert case.app_running()


def test_a_missing_image_is_refused_before_anything_stops(case: Case) -> None:
    rt = case.runtime
    rt.start()
    with pytest.raises(RuntimeProblem, match=r"cannot (be pulled|obtain)"):
        rt.ensure_images(case.release("9.9.9"))
    assert case.app_running()


def test_update_is_health_gated_and_puts_the_previous_version_back(case: Case) -> None:
    rt = case.runtime
    first, second, broken = case.tags
    rt.start()
    image = rt.ensure_images(case.release(second))
    rt.stop()
    rt.update(case.release(second), image)
    assert case.app_running() and rt.current_image_tag() == second
    rt.finish()
    image = rt.ensure_images(case.release(broken))
    rt.stop()
    with pytest.raises(ChangeFailed):
        rt.update(case.release(broken), image)
    assert rt.current_image_tag() == second, "the previous version is back in place"
    rt.rollback_to(second)
    assert case.app_running() and rt.current_image_tag() == second
    rt.rollback_to(first)
    assert case.app_running() and rt.current_image_tag() == first


def test_the_apps_settings_come_from_its_files(case: Case) -> None:
    rt = case.runtime
    rt.start()
    settings = rt.app_settings()
    assert settings is not None
    env, _ = settings
    if case.kind == "compose":
        assert env["STAND_IN_SETTING"] == "kept"
    else:
        assert env["TAG"] == "3.12.35" and env["COOLIFY_SECRET_KEY"]


def test_compose_runs_one_off_commands_and_the_database_tools_in_place(
    compose_case: Case,
) -> None:
    rt = compose_case.runtime
    assert isinstance(rt, ComposeRuntime)
    rt.start()
    code, tail = rt.run_once("app", "once", "sh", "-c", 'echo "one-off $STAND_IN_SETTING"; exit 3')
    assert code == 3 and "one-off kept" in tail, (
        f"the project's env file reaches it: {code} {tail!r}"
    )
    runner = rt.tool_runner()
    listed = runner.run("psql", ["-Atc", "SELECT 40 + 2"], {"PGUSER": "postgres"})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().strip() == "42"
