"""Parts of the Docker runtime that read containers: health waits, log tails, recreate configs.

Kept apart from ``coolify_migrate.runtimes.docker`` to keep each module readable; it talks to the engine
only through the runtime it is given (so the SDK is still imported in one module only).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docker.errors import DockerException, ImageNotFound

from coolify_migrate.core.errors import ChangeFailed

if TYPE_CHECKING:
    from coolify_migrate.runtimes.docker import DockerRuntime

POLL_SECONDS = 0.25
LOG_TAIL_LINES = 20
# Config keys an image supplies; a container that kept the old image's value gets the new one's.
_IMAGE_DEFAULTS = (
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "StopSignal",
    "Healthcheck",
    "Volumes",
    "OnBuild",
    "Shell",
)
_BUILTIN_MODES = ("none", "host", "bridge", "default")


class NotHealthy(ChangeFailed):
    default_hint = "see the container's output in the run log (or 'docker logs <container>')"


def has_healthcheck(container: Any) -> bool:
    test = ((container.attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def wait(rt: DockerRuntime, container: Any, *, timeout: float) -> None:
    """Healthy means: the image's HEALTHCHECK passed, or (without one) running with an unchanged
    restart count for ``rt.settle`` seconds. A container that exited and will not be restarted
    fails at once; otherwise the wait ends at ``timeout``."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    restarts: int | None = None
    health = "none"
    while True:
        try:
            container.reload()
        except DockerException as err:
            raise NotHealthy(f"{container.name} disappeared while starting: {err}") from err
        state = container.attrs.get("State") or {}
        running = bool(state.get("Running")) and not state.get("Restarting")
        if has_healthcheck(container):
            health = str((state.get("Health") or {}).get("Status", "starting"))
            if running and health == "healthy":
                return
        elif running:
            count = int(container.attrs.get("RestartCount") or 0)
            if count != restarts or stable_since is None:
                restarts, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since >= rt.settle:
                return
        else:
            stable_since = None
        policy = ((container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get(
            "Name"
        ) or "no"
        if state.get("Status") in ("exited", "dead") and policy == "no":
            raise NotHealthy(f"{container.name} exited with code {state.get('ExitCode')}")
        if time.monotonic() >= deadline:
            raise NotHealthy(
                f"{container.name} was not healthy within {timeout:g} s "
                f"(state {state.get('Status')}, health {health}, "
                f"restarts {container.attrs.get('RestartCount')})"
            )
        time.sleep(POLL_SECONDS)


def log_tail(rt: DockerRuntime, container: Any) -> None:
    """The last lines a failed container printed, into the run log (redacted), for diagnosis."""
    try:
        raw = container.logs(tail=LOG_TAIL_LINES)
    except DockerException:
        return
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    for line in text.splitlines():
        rt.ctx.out.info(f"  [{container.name}] {rt.ctx.redactor.redact(line)}")


@dataclass
class RecreateSpec:
    config: dict[str, Any]  # the body of POST /containers/create
    extra_networks: dict[str, dict[str, Any]] = field(default_factory=dict)


def _image_config(rt: DockerRuntime, image_id: str) -> dict[str, Any] | None:
    try:
        cfg: dict[str, Any] = rt.client.images.get(image_id).attrs.get("Config") or {}
        return cfg
    except ImageNotFound:
        return None


def recreate_config(rt: DockerRuntime, base: Any, image: str) -> RecreateSpec:
    """``base``'s own configuration (mounts, ports, restart policy, labels, networks, health
    overrides) with ``image`` and the host .env. What ``base`` only inherited from its image is
    dropped, so the new image's defaults apply."""
    attrs = base.attrs
    short_id = str(attrs["Id"])[:12]
    cfg: dict[str, Any] = copy.deepcopy(attrs["Config"])
    old_image = _image_config(rt, attrs["Image"])
    image_env = dict(e.split("=", 1) for e in ((old_image or {}).get("Env") or []) if "=" in e)
    cfg["Image"] = image
    cfg["Env"] = rt.merged_env(cfg.get("Env") or [], image_env)
    if old_image is not None:
        for key in _IMAGE_DEFAULTS:
            if key in cfg and cfg.get(key) == old_image.get(key):
                cfg.pop(key)
        image_labels = old_image.get("Labels") or {}
        cfg["Labels"] = {
            k: v for k, v in (cfg.get("Labels") or {}).items() if image_labels.get(k) != v
        }
    if cfg.get("Hostname") == short_id:
        cfg.pop("Hostname")  # Docker's default, derived from the old container's id
    host_config = copy.deepcopy(attrs["HostConfig"])
    cfg["HostConfig"] = host_config
    mode = str(host_config.get("NetworkMode") or "default")
    primary = "bridge" if mode == "default" else mode
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}

    def endpoint(name: str) -> dict[str, Any]:
        aliases = [a for a in (networks[name].get("Aliases") or []) if a != short_id]
        return {"Aliases": aliases} if aliases else {}

    if primary in networks and mode not in _BUILTIN_MODES:
        cfg["NetworkingConfig"] = {"EndpointsConfig": {primary: endpoint(primary)}}
    extra = {n: endpoint(n) for n in networks if n != primary and n not in ("none", "host")}
    return RecreateSpec(cfg, extra)
