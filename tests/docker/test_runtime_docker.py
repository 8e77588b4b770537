"""The Docker runtime against the test rig's engine: finding, recreating, health, put-back.

The runtime is called in-process (``DockerRuntime``), the containers are real. Every container
runs with ``--network none``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps import get_profile
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.config.manifest import Release
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, RuntimeProblem
from coolify_migrate.core.output import Recording
from coolify_migrate.runtimes.docker import DockerRuntime, image_tag
from coolify_migrate.runtimes.docker_health import NotHealthy
from packaging.version import Version

APP = "ghcr.io/coollabsio/coolify"

pytestmark = pytest.mark.slow  # real containers: about a minute for the module


def release(version: str, image: str | None = None, *fallbacks: str) -> Release:
    return Release(Version(version), image or f"{APP}:{version}", tuple(fallbacks))


def make_env(data_dir: Path, guard: Any, tag: str) -> EnvFile:
    data_dir.mkdir(parents=True)
    env = EnvFile(data_dir / ".env", "")
    env.set("TAG", tag)
    for key, value in get_profile().generated_env().items():
        env.set(key, value)
        if "SECRET" in key:
            guard.register(value)
    env.save()
    return env


def runtime(data_dir: Path, **kw: Any) -> tuple[DockerRuntime, Recording]:
    out = Recording()
    ctx = Context(profile=CoolifyV3(), data_dir=data_dir, out=out, runtime_name="docker")
    kw.setdefault("health_timeout", 30)
    rt = DockerRuntime(ctx, network="none", **kw)
    ctx.runtime_factory = lambda c: rt
    return rt, out


def inspect(docker: Any, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(docker("inspect", name, record=False).stdout)[0]
    return doc


def env_of(doc: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in doc["Config"]["Env"])


def names(docker: Any) -> list[str]:
    return sorted(docker("ps", "-a", "--format", "{{.Names}}").stdout.split())


def actions(out: Recording) -> list[str]:
    return [e["action"] for e in out.events if e["event"] == "runtime"]


def test_image_tag_ignores_a_registry_port() -> None:
    assert image_tag("ghcr.io/coollabsio/coolify:3.12.32") == "3.12.32"
    assert image_tag("127.0.0.1:5999/coolify") is None
    assert image_tag("127.0.0.1:5999/coolify:3.12.38") == "3.12.38"


def test_update_recreates_from_the_old_containers_config_with_the_host_env(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.35")
    extra = tmp_path / "extra"
    extra.mkdir()
    docker(
        "run",
        "-d",
        "--name",
        "coolify",
        "--env-file",
        str(data_dir / ".env"),
        "-e",
        "EXTRA_SETTING=kept",
        "-e",
        "COOLIFY_STALE=only-in-the-container",
        "-v",
        "coolify-db:/app/db",
        "-v",
        f"{extra}:/extra:ro",
        "--network",
        "none",
        "--restart",
        "always",
        "--label",
        "custom=yes",
        "--hostname",
        "coolify-host",
        "--health-interval",
        "2s",
        f"{APP}:3.12.35",
    )
    env = EnvFile.load(data_dir / ".env")
    env.set("COOLIFY_WHITE_LABELED", "true")  # a change on the host only
    env.save()

    rt, out = runtime(data_dir)
    rt._start_and_wait(rt.main_container())  # as an upgrade finds it: up and healthy
    out.events.clear()
    assert rt.current_image_tag() == "3.12.35"
    image = rt.ensure_images(release("3.12.36"))
    rt.stop()
    rt.update(release("3.12.36"), image)

    doc = inspect(docker, "coolify")
    got = env_of(doc)
    assert (
        doc["Config"]["Image"] == f"{APP}:3.12.36" and doc["State"]["Health"]["Status"] == "healthy"
    )
    assert got["COOLIFY_WHITE_LABELED"] == "true"  # the host .env, not the old container
    assert got["EXTRA_SETTING"] == "kept"  # not the app's, not the image's: carried over
    assert "COOLIFY_STALE" not in got  # the app's variables come from the host file only
    assert got["COOLIFY_TEST_APP_VERSION"] == "3.12.36"  # the new image's own, not the old one's
    assert doc["Config"]["Labels"]["custom"] == "yes"
    assert doc["Config"]["Hostname"] == "coolify-host"
    assert doc["Config"]["Healthcheck"]["Interval"] == 2_000_000_000
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert doc["HostConfig"]["NetworkMode"] == "none"
    assert f"{extra}:/extra:ro" in doc["HostConfig"]["Binds"]
    assert "coolify-db:/app/db" in doc["HostConfig"]["Binds"]
    kept = [n for n in names(docker) if n.startswith("coolify-previous-")]
    assert len(kept) == 1 and inspect(docker, kept[0])["State"]["Running"] is False
    rt.finish()
    assert names(docker) == ["coolify"]
    assert actions(out) == [
        "image-present",
        "stopping",
        "stopped",
        "kept-previous",
        "created",
        "started",
        "healthy",
        "removed",
    ]


def test_a_new_container_that_never_becomes_healthy_is_replaced_by_the_previous_one(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.36")
    rt, out = runtime(data_dir, health_timeout=4)
    rt.start()
    old_id = inspect(docker, "coolify")["Id"]
    started = time.monotonic()
    with pytest.raises(ChangeFailed, match="did not become healthy"):
        rt.update(release("3.12.37"), f"{APP}:3.12.37")
    assert time.monotonic() - started < 30
    doc = inspect(docker, "coolify")
    # back in place but stopped: the engine restores the data first, then starts it
    assert doc["Id"] == old_id and doc["State"]["Running"] is False
    assert names(docker) == ["coolify"]
    assert any("[coolify] started" in line for line in out.lines)  # the failed one's output
    assert "put-back" in actions(out)
    rt.rollback_to("3.12.36")
    doc = inspect(docker, "coolify")
    assert doc["Id"] == old_id and doc["State"]["Health"]["Status"] == "healthy"


def test_images_local_first_then_pulled_and_a_clear_refusal_when_none_can_be_had(
    tmp_path: Path, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.36")
    rt, _ = runtime(data_dir)
    # the primary cannot be pulled, the fallback is present locally: accepted without a pull
    assert (
        rt.ensure_images(release("3.12.36", "127.0.0.1:5999/coolify:3.12.36", f"{APP}:3.12.36"))
        == f"{APP}:3.12.36"
    )
    started = time.monotonic()
    with pytest.raises(RuntimeProblem) as caught:
        rt.ensure_images(
            release("3.12.38", "127.0.0.1:5999/coolify:3.12.38", "127.0.0.1:5998/coolify:3.12.38")
        )
    msg = caught.value.message
    assert "127.0.0.1:5999/coolify:3.12.38" in msg and "127.0.0.1:5998/coolify:3.12.38" in msg
    assert "nothing was stopped" in msg and caught.value.exit_code == 3
    assert time.monotonic() - started < 30


def test_fresh_start_then_restart_keeps_or_recreates_by_the_host_env(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.36")
    rt, _ = runtime(data_dir)
    assert rt.current_image_tag() is None and rt.database_path() is None
    rt.start()
    doc = inspect(docker, "coolify")
    assert doc["Config"]["Labels"]["coolify-migrate.app"] == "coolify-v3"
    assert rt.current_image_tag() == "3.12.36"
    db = rt.database_path()
    assert db is not None and db.name == "prod.db" and db.exists()  # made by the app on first start
    assert rt.env_matches_host(rt.main_container())

    rt.start()  # already running: nothing happens
    rt.restart()
    assert inspect(docker, "coolify")["Id"] == doc["Id"]

    env = EnvFile.load(data_dir / ".env")
    env.set("COOLIFY_AUTO_UPDATE", "true")
    env.save()
    rt.restart()  # the container no longer matches the host file: recreated from it
    now = inspect(docker, "coolify")
    assert now["Id"] != doc["Id"] and env_of(now)["COOLIFY_AUTO_UPDATE"] == "true"
    assert names(docker) == ["coolify"]


def test_rollback_to_an_older_version_after_the_previous_container_is_gone(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.35")
    rt, _ = runtime(data_dir)
    rt.start()
    rt.stop()
    rt.update(release("3.12.36"), f"{APP}:3.12.36")
    rt.finish()
    rt.rollback_to("v3.12.35")
    doc = inspect(docker, "coolify")
    assert (
        doc["Config"]["Image"] == f"{APP}:3.12.35" and doc["State"]["Health"]["Status"] == "healthy"
    )
    assert names(docker) == ["coolify"]


def test_without_a_healthcheck_running_through_the_settle_period_counts_and_an_exit_fails(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, leak_guard: Any
) -> None:
    data_dir = tmp_path / "coolify"
    make_env(data_dir, leak_guard, "3.12.36")
    docker(
        "create",
        "--name",
        "coolify",
        "--env-file",
        str(data_dir / ".env"),
        "--network",
        "none",
        "--no-healthcheck",
        f"{APP}:3.12.36",
    )
    rt, _ = runtime(data_dir, settle=1.5)
    started = time.monotonic()
    rt.start()
    assert 1.5 <= time.monotonic() - started < 20
    docker("rm", "-f", "coolify")
    docker(
        "create",
        "--name",
        "coolify",
        "--env-file",
        str(data_dir / ".env"),
        "--network",
        "none",
        "--no-healthcheck",
        "--entrypoint",
        "/bin/false",
        f"{APP}:3.12.36",
    )
    started = time.monotonic()
    with pytest.raises(NotHealthy, match="exited with code 1"):
        rt.start()
    assert time.monotonic() - started < 10  # no waiting out the timeout for a dead container


def test_an_unreachable_engine_is_a_clear_refusal(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    rt, _ = runtime(tmp_path)
    with pytest.raises(RuntimeProblem, match="cannot reach the Docker engine") as caught:
        rt.check()
    assert "DOCKER_HOST" in caught.value.hint
