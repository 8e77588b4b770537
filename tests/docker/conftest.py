"""Docker tests: the engine they run against, the local test images, and helpers.

Every test under ``tests/docker`` is marked ``docker``. The engine is the one ``DOCKER_HOST``
names (``scripts/test.sh`` starts a private one with ``scripts/docker-rig.sh``). The host's
default socket is never used on its own: these tests remove containers named ``coolify*`` and
the volume ``coolify-db``, which on a real engine would delete a real Coolify. For the same
reason an engine that already holds such things is only used when it says it is disposable
(``COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1``, set by the rig).

Without an engine the tests skip, or fail when ``COOLIFY_MIGRATE_REQUIRE_DOCKER=1`` or
``CI=true``. Containers run with ``--network none``: the tests never reach another address.

Helpers for test modules here (fixtures, so no module needs to import this file):

- ``docker_host``: the ``DOCKER_HOST`` that answers (session);
- ``docker``: ``docker(*args, check=True)`` runs the docker client against it and returns the
  ``CompletedProcess[str]``; ``docker.raw(*args)`` returns bytes; output goes to the leak guard
  unless ``record=False`` (for a test that reads a secret on purpose);
- ``test_images``: builds (or finds up to date) the local images; ``.base``, ``.app(version)``,
  ``.never_healthy``;
- ``clean_coolify``: removes containers named ``coolify*`` and the volume ``coolify-db`` before
  and after the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RIG = REPO / "scripts" / "docker-rig.sh"

BASE_IMAGE = "coolify-migrate-test/base:latest"
APP_REPO = "ghcr.io/coollabsio/coolify"
HEALTHY_VERSIONS = ("3.12.32", "3.12.33", "3.12.35", "3.12.36")
NEVER_HEALTHY_VERSION = "3.12.37"  # its healthcheck never passes
APP_VOLUME = "coolify-db"


def docker_required() -> bool:
    return os.environ.get("COOLIFY_MIGRATE_REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"


def _unavailable(reason: str) -> NoReturn:
    if docker_required():
        pytest.fail(f"Docker is required here but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the mark must be there before `-m` selects on it.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.docker)


def _client(host: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": host},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def docker_host() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        _unavailable("DOCKER_HOST is not set (scripts/docker-rig.sh start gives a private engine)")
    if shutil.which("docker") is None:
        _unavailable("there is no docker client on PATH")
    try:
        info = _client(host, "info", "--format", "{{.ServerVersion}}", timeout=30)
    except subprocess.TimeoutExpired:
        _unavailable(f"the engine at {host} did not answer within 30 s")
    if info.returncode != 0:
        first = (info.stderr.strip().splitlines() or ["no output"])[0]
        _unavailable(f"the engine at {host} does not answer: {first}")
    if os.environ.get("COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE") != "1":
        names = _client(host, "ps", "-a", "--format", "{{.Names}}").stdout.split()
        volumes = _client(host, "volume", "ls", "-q").stdout.split()
        if any(n.startswith("coolify") for n in names) or APP_VOLUME in volumes:
            _unavailable(
                f"the engine at {host} holds coolify containers or the {APP_VOLUME} volume, which "
                "these tests delete; use a disposable engine (scripts/docker-rig.sh start) or set "
                "COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1"
            )
    return host


@pytest.fixture(autouse=True)
def _docker_engine(docker_host: str) -> str:
    """Every test here needs the engine: skip or fail the same way for all of them."""
    return docker_host


class DockerCLI:
    """The docker client against the test engine; output is checked by the leak guard."""

    def __init__(self, host: str, guard: Any) -> None:
        self.host = host
        self._guard = guard

    def _run(
        self,
        args: tuple[str, ...],
        *,
        check: bool,
        input: bytes | None,
        timeout: float,
        record: bool,
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            ["docker", *args],
            env={**os.environ, "DOCKER_HOST": self.host},
            input=input,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if record:
            self._guard.record(f"docker {' '.join(args[:2])} stdout", out)
            self._guard.record(f"docker {' '.join(args[:2])} stderr", err)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {proc.returncode}: {err.strip()[-2000:]}"
            )
        return proc

    def __call__(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
        record: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        proc = self._run(
            args,
            check=check,
            input=None if input is None else input.encode(),
            timeout=timeout,
            record=record,
        )
        return subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )

    def raw(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 120,
        record: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        return self._run(args, check=check, input=input, timeout=timeout, record=record)


@pytest.fixture
def docker(docker_host: str, leak_guard: Any) -> DockerCLI:
    return DockerCLI(docker_host, leak_guard)


@dataclass(frozen=True)
class ImageSet:
    base: str = BASE_IMAGE
    never_healthy: str = f"{APP_REPO}:{NEVER_HEALTHY_VERSION}"

    @staticmethod
    def app(version: str) -> str:
        if version not in HEALTHY_VERSIONS and version != NEVER_HEALTHY_VERSION:
            raise KeyError(f"no test image for {version}; there are {HEALTHY_VERSIONS}")
        return f"{APP_REPO}:{version}"


@pytest.fixture(scope="session")
def test_images(docker_host: str) -> ImageSet:
    """Build the images if missing or stale (a second run takes about a second)."""
    proc = subprocess.run(
        ["bash", str(RIG), "images"],
        env={**os.environ, "DOCKER_HOST": docker_host, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/docker-rig.sh images failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return ImageSet()


def _remove_coolify(host: str) -> None:
    names = _client(host, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    doomed = [n for n in names if n.startswith("coolify")]
    if doomed:
        _client(host, "rm", "-f", "-v", *doomed)
    volumes = _client(host, "volume", "ls", "-q").stdout.split()
    if APP_VOLUME in volumes:
        gone = _client(host, "volume", "rm", "-f", APP_VOLUME)
        assert gone.returncode == 0, gone.stderr


@pytest.fixture
def clean_coolify(docker_host: str) -> Iterator[None]:
    _remove_coolify(docker_host)
    yield
    _remove_coolify(docker_host)
