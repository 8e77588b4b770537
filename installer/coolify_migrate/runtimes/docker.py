"""The Docker runtime: the app's containers, through the Docker SDK (imported nowhere else).

What it guarantees, and why:

- The target image is present *before* anything is stopped (v3 users lost their app when the
  pull failed after the old container was gone). A local image is accepted; otherwise each
  reference the manifest lists is pulled in order.
- A container is always (re)created with the environment read from the **host** ``.env``. v3's
  3.12.33 kept the rolled key only inside the container, and the next restart destroyed the
  data; here the host file is the only source of the app's variables.
- The previous container is kept, renamed ``<name>-previous-<ms>``, until the new one passed its
  health check; a new container that never becomes healthy is removed and the previous one is
  put back. ``finish()`` drops the kept container once the whole upgrade succeeded.
- Every method is idempotent, so ``resume`` after a crash can call it again.

Timeouts come from the constructor, else from ``COOLIFY_MIGRATE_HEALTH_TIMEOUT`` (default 120 s),
``COOLIFY_MIGRATE_STOP_TIMEOUT`` (30 s) and ``COOLIFY_MIGRATE_SETTLE_SECONDS`` (10 s, for images
without a HEALTHCHECK); the network of a fresh container from ``COOLIFY_MIGRATE_DOCKER_NETWORK``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import ImageNotFound, NotFound

from coolify_migrate import instance
from coolify_migrate.core.errors import ChangeFailed, MigrateError, RuntimeProblem
from coolify_migrate.core.release import Release
from coolify_migrate.core.versions import parse_version
from coolify_migrate.runtimes import (
    docker_create,
    docker_env,
    docker_files,
    docker_health,
    docker_images,
)
from coolify_migrate.runtimes.docker_images import image_tag
from coolify_migrate.runtimes.docker_images import translate as _translate

if TYPE_CHECKING:
    from coolify_migrate.core.context import Context

MIN_ENGINE = (20, 10)
NETWORK_ENV = "COOLIFY_MIGRATE_DOCKER_NETWORK"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        ctx: Context,
        *,
        client: Any = None,
        health_timeout: float | None = None,
        stop_timeout: float | None = None,
        settle: float | None = None,
        network: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self._client = client
        self.health_timeout = (
            health_timeout
            if health_timeout is not None
            else _env_number("COOLIFY_MIGRATE_HEALTH_TIMEOUT", 120.0)
        )
        self.stop_timeout = (
            stop_timeout
            if stop_timeout is not None
            else _env_number("COOLIFY_MIGRATE_STOP_TIMEOUT", 30.0)
        )
        self.settle = (
            settle if settle is not None else _env_number("COOLIFY_MIGRATE_SETTLE_SECONDS", 10.0)
        )
        self.network = network or os.environ.get(NETWORK_ENV) or None

    # -- the engine ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            with _translate(
                "cannot reach the Docker engine",
                hint="start Docker (systemctl start docker) or set DOCKER_HOST to its socket",
            ):
                self._client = docker.from_env(timeout=max(60, int(self.stop_timeout) + 30))
        return self._client

    def check(self) -> None:
        with _translate(
            "cannot reach the Docker engine",
            hint="start Docker (systemctl start docker) or set DOCKER_HOST to its socket",
        ):
            found = str(self.client.version().get("Version", "0"))
        m = re.match(r"(\d+)\.(\d+)", found)
        if m is None or (int(m.group(1)), int(m.group(2))) < MIN_ENGINE:
            raise RuntimeProblem(
                f"Docker Engine {found} is too old: 20.10 or newer is needed",
                hint="upgrade Docker Engine, then run the command again",
            )

    def event(self, action: str, **fields: Any) -> None:
        # at_ms lets the downtime benchmark measure from the run's own events.
        self.ctx.out.event("runtime", action=action, at_ms=int(time.time() * 1000), **fields)

    # -- finding the app ------------------------------------------------------------------------

    @property
    def main_name(self) -> str:
        return self.profile.main_container

    @property
    def previous_prefix(self) -> str:
        return f"{self.main_name}-previous-"

    def _label(self) -> str:
        return f"coolify-migrate.app={self.profile.name}"

    def main_container(self) -> Any | None:
        """The app's container: by name, else the one container carrying this tool's label."""
        with _translate(f"cannot inspect the container {self.main_name}"):
            try:
                return self.client.containers.get(self.main_name)
            except NotFound:
                pass
            labelled = [
                c
                for c in self.client.containers.list(all=True, filters={"label": self._label()})
                if not c.name.startswith(self.previous_prefix)
            ]
        return labelled[0] if len(labelled) == 1 else None

    def previous_containers(self) -> list[Any]:
        """Containers kept for rollback, newest first."""
        with _translate("cannot list containers"):
            found = self.client.containers.list(all=True, filters={"name": self.previous_prefix})
        kept = [c for c in found if re.fullmatch(re.escape(self.previous_prefix) + r"\d+", c.name)]
        return sorted(kept, key=lambda c: int(c.name.rsplit("-", 1)[1]), reverse=True)

    def app_containers(self) -> list[Any]:
        """Every container of the app: the profile's names, the tool's label, kept previous ones."""
        with _translate("cannot list containers"):
            found = {
                c.id: c
                for c in self.client.containers.list(all=True, filters={"label": self._label()})
            }
            for name in self.profile.containers:
                try:
                    c = self.client.containers.get(name)
                    found[c.id] = c
                except NotFound:
                    pass
        for c in self.previous_containers():
            found[c.id] = c
        return list(found.values())

    def current_image_tag(self) -> str | None:
        c = self.main_container()
        if c is None:
            kept = self.previous_containers()  # an update interrupted between rename and create
            c = kept[0] if kept else None
        return None if c is None else image_tag(str(c.attrs["Config"]["Image"]))

    def database_path(self) -> Path | None:
        if not self.profile.docker_volume:
            return None
        with _translate(f"cannot inspect the volume {self.profile.docker_volume}"):
            try:
                vol = self.client.volumes.get(self.profile.docker_volume)
            except NotFound:
                return None
        return Path(vol.attrs["Mountpoint"]) / Path(self.profile.db_relative).name

    def app_settings(self) -> tuple[dict[str, str], dict[str, str]] | None:
        c = self.main_container()
        if c is None:
            kept = self.previous_containers()
            c = kept[0] if kept else None
        if c is None:
            return None
        return self._settings_of(c)

    def _settings_of(self, c: Any) -> tuple[dict[str, str], dict[str, str]]:
        env = docker_env.as_dict(c.attrs["Config"].get("Env") or [])
        path = self.profile.container_dotenv
        text = docker_files.read_text(c, path) if path else None
        return env, (docker_env.parse_dotenv(text) if text else {})

    # -- images ---------------------------------------------------------------------------------

    def ensure_images(self, release: Release) -> str:
        """A local image first, else pull each reference in order. Nothing is stopped here."""
        return docker_images.ensure(self.client, release, out=self.ctx.out, event=self.event)

    def _image_for(self, version: str) -> str:
        v = parse_version(version)
        return self.ensure_images(
            Release(v, self.profile.image_for(v), self.profile.fallback_images_for(v))
        )

    # -- environment (coolify_migrate.runtimes.docker_env) ------------------------------------------------

    def host_env(self) -> list[tuple[str, str]]:
        return docker_env.host_env(self.ctx)

    def _image_env(self, image_id: str) -> dict[str, str]:
        with _translate("cannot inspect an image"):
            try:
                cfg = self.client.images.get(image_id).attrs.get("Config") or {}
            except ImageNotFound:
                return {}
        return docker_env.as_dict(cfg.get("Env") or [])

    def env_matches_host(self, container: Any) -> bool:
        """Does the container run with exactly the host .env's app variables (and no other)?"""
        return docker_env.matches_host(
            container.attrs["Config"].get("Env") or [],
            self._image_env(container.attrs["Image"]),
            self.host_env(),
            self.profile.app_env_pattern,
        )

    def merged_env(self, old_env: list[str], old_image_env: dict[str, str]) -> list[str]:
        return docker_env.merged(
            old_env, old_image_env, self.host_env(), self.profile.app_env_pattern
        )

    # -- stop / start ---------------------------------------------------------------------------

    def stop(self) -> None:
        c = self.main_container()
        if c is None:
            return
        with _translate(f"cannot stop the container {c.name}"):
            c.reload()
            if c.status in ("running", "restarting", "paused"):
                self.event("stopping", container=c.name)
                c.stop(timeout=int(self.stop_timeout))
                self.event("stopped", container=c.name)

    def start(self) -> None:
        """Start the app as it is configured now; create it on a fresh install. Waits for health."""
        c = self.main_container()
        if c is None:
            kept = self.previous_containers()
            if kept:  # an update was interrupted between rename and create: put the old one back
                c = kept[0]
                with _translate("cannot rename a container"):
                    c.rename(self.main_name)
            else:
                tag = instance.load_env(self.ctx).get(self.profile.version_env_key)
                if not tag:
                    raise RuntimeProblem(
                        f"no {self.profile.version_env_key} in {self.ctx.env_path}: "
                        "cannot tell which image to start",
                        hint=f"set {self.profile.version_env_key}=<version> in .env",
                    )
                c = docker_create.fresh(self, self._image_for(tag))
        elif not self.env_matches_host(c):
            # The host .env is the only truth for the app's variables: never start a container
            # that carries others (that is how v3 lost data on restart).
            c = self._replace(c, str(c.attrs["Config"]["Image"]), put_back_on_failure=True)
            return
        self._start_and_wait(c)

    def restart(self) -> None:
        c = self.main_container()
        if c is None or not self.env_matches_host(c):
            self.start()
            return
        self._check_hazard(c)
        with _translate(f"cannot restart the container {c.name}"):
            self.event("stopping", container=c.name)
            c.restart(timeout=int(self.stop_timeout))
        self.event("started", container=c.name)
        docker_health.wait(self, c, timeout=self.health_timeout)
        self.event("healthy", container=c.name)

    def _check_hazard(self, c: Any) -> None:
        """Never start a container whose start would damage the data (Coolify v3's re-roll)."""
        env, dotenv = self._settings_of(c)
        why = self.profile.start_hazard(env, dotenv, image_tag(str(c.attrs["Config"]["Image"])))
        if why is not None:
            raise RuntimeProblem(
                f"refusing to start {c.name}: {why}",
                hint="run 'coolify-migrate restart' (it sets KEY = BETTER = the data key in .env "
                "and recreates the container from it)",
            )

    def _start_and_wait(self, c: Any) -> None:
        with _translate(f"cannot start the container {c.name}"):
            c.reload()
            if c.status != "running":
                self._check_hazard(c)
                c.start()
                self.event("started", container=c.name, image=c.attrs["Config"]["Image"])
        docker_health.wait(self, c, timeout=self.health_timeout)
        self.event("healthy", container=c.name)

    # -- update / rollback ----------------------------------------------------------------------

    def update(self, release: Release, image: str) -> None:
        main = self.main_container()
        kept = self.previous_containers()
        if main is not None and kept:
            # Called again after an interruption: `main` is the new container (or a half-made one).
            if str(main.attrs["Config"]["Image"]) == image and self.env_matches_host(main):
                try:
                    self._start_and_wait(main)
                    return
                except MigrateError as err:
                    self._put_back(kept[0], failed=main, start=False)
                    raise ChangeFailed(
                        f"{image} did not become healthy: {err.message}",
                        hint="the previous container is back in place; see the run log",
                    ) from err
            self._remove(main)
            base = kept[0]
        elif main is not None:
            self.stop()
            base = main
            with _translate(f"cannot rename the container {main.name}"):
                main.rename(f"{self.previous_prefix}{self.ctx.now_ms()}")
                main.reload()
            self.event("kept-previous", container=main.name)
        elif kept:
            base = kept[0]
        else:
            self._start_and_wait(docker_create.fresh(self, image))
            return
        new = docker_create.recreate(self, base, image)
        try:
            self._start_and_wait(new)
        except MigrateError as err:
            # Back in place but not started: the engine first puts the pre-upgrade database back,
            # then starts it (rollback_to), so the old app never runs against migrated data.
            self._put_back(base, failed=new, start=False)
            raise ChangeFailed(
                f"the new container ({image}) did not become healthy: {err.message}",
                hint="the previous container was put back; the run log holds the new one's output",
            ) from err

    def _replace(self, base: Any, image: str, *, put_back_on_failure: bool) -> Any:
        """Recreate the main container from its own configuration (same or another image)."""
        self.stop()
        with _translate(f"cannot rename the container {base.name}"):
            base.rename(f"{self.previous_prefix}{self.ctx.now_ms()}")
        new = docker_create.recreate(self, base, image)
        try:
            self._start_and_wait(new)
        except MigrateError:
            if put_back_on_failure:
                self._put_back(base, failed=new)
            raise
        self._remove(base)
        return new

    def _remove(self, c: Any) -> None:
        with _translate(f"cannot remove the container {c.name}"):
            c.remove(force=True)
        self.event("removed", container=c.name)

    def _put_back(self, previous: Any, *, failed: Any | None, start: bool = True) -> None:
        """Remove the failed container (its last lines go to the run log); restore the old one."""
        if failed is not None:
            docker_health.log_tail(self, failed)
            self._remove(failed)
        with _translate(f"cannot put the container {previous.name} back"):
            previous.rename(self.main_name)
        self.event("put-back", container=self.main_name)
        if not start:
            return
        try:
            self._start_and_wait(previous)
        except MigrateError as err:  # the caller's revert restarts it after restoring the database
            self.ctx.out.warn(
                f"the previous container did not become healthy again yet: {err.message}"
            )

    def rollback_to(self, version: str) -> None:
        main = self.main_container()
        kept = self.previous_containers()
        if kept:
            if main is not None:
                docker_health.log_tail(self, main)
                self._remove(main)
            main = kept[0]
            with _translate(f"cannot rename the container {main.name}"):
                main.rename(self.main_name)
            self.event("put-back", container=self.main_name)
        want = str(parse_version(version)) if version else None
        try:
            if main is None:
                if want is None:
                    raise RuntimeProblem(
                        "no app container and no version to start",
                        hint="run install.sh -f to create it",
                    )
                self._start_and_wait(docker_create.fresh(self, self._image_for(want)))
            elif (
                want is not None and image_tag(str(main.attrs["Config"]["Image"])) != want
            ) or not self.env_matches_host(main):
                image = self._image_for(want) if want else str(main.attrs["Config"]["Image"])
                self._replace(main, image, put_back_on_failure=False)
            else:
                self._start_and_wait(main)
        except MigrateError as err:
            raise ChangeFailed(
                f"the app did not come back at {version or 'its version'}: {err.message}",
                hint="see the run log; 'docker logs coolify' shows the app's output",
            ) from err

    def finish(self) -> None:
        for c in self.previous_containers():
            self._remove(c)

    def config_files(self) -> list[Path]:
        return []  # a container is recreated from the host .env; nothing else changes
