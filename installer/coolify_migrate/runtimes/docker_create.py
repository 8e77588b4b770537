"""Creating the app's main container: fresh from the profile's container spec (first start, or
no container to base it on), or recreated from the previous container's configuration with a new
image and the host ``.env`` (``docker_health.recreate_config``).

Kept apart from ``coolify_migrate.runtimes.docker``; it talks to the engine only through the
runtime it is given (so the SDK is still imported in one module only).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from coolify_migrate.core.errors import RuntimeProblem
from coolify_migrate.runtimes import docker_health
from coolify_migrate.runtimes.docker_images import translate

if TYPE_CHECKING:
    from coolify_migrate.runtimes.docker import DockerRuntime

_BUILTIN_NETWORKS = ("none", "host", "bridge", "default")


def ensure_network(rt: DockerRuntime, name: str) -> None:
    if name in _BUILTIN_NETWORKS or name.startswith("container:"):
        return
    with translate(f"cannot create the network {name}"):
        if not rt.client.networks.list(names=[name]):
            rt.client.networks.create(name, driver="bridge", attachable=True)


def fresh(rt: DockerRuntime, image: str) -> Any:
    spec = rt.profile.container_spec()
    if spec is None:
        raise RuntimeProblem(
            f"the {rt.profile.name} profile does not describe a container",
            hint="use --runtime none and start the app yourself",
        )
    network = rt.network or spec.network
    ensure_network(rt, network)
    binds = [f"{vol}:{path}" for vol, path in spec.volumes.items()]
    binds += [f"{host}:{path}" for host, path in spec.binds.items() if os.path.exists(host)]
    ports = {} if network in ("none", "host") or network.startswith("container:") else spec.ports
    with translate(f"cannot create the container {spec.name}"):
        c = rt.client.containers.create(
            image,
            name=spec.name,
            environment=[f"{k}={v}" for k, v in rt.host_env()],
            labels=spec.labels,
            volumes=binds,
            ports=ports,
            network_mode=network,
            restart_policy={"Name": spec.restart_policy},
            detach=True,
        )
    rt.event("created", container=spec.name, image=image)
    return c


def recreate(rt: DockerRuntime, base: Any, image: str) -> Any:
    """A new main container: ``base``'s configuration, but ``image`` and the host .env."""
    spec = docker_health.recreate_config(rt, base, image)
    with translate(f"cannot create the container {rt.main_name}"):
        created = rt.client.api.create_container_from_config(spec.config, name=rt.main_name)
        new = rt.client.containers.get(created["Id"])
        for net, endpoint in spec.extra_networks.items():
            rt.client.api.connect_container_to_network(new.id, net, aliases=endpoint.get("Aliases"))
    rt.event("created", container=rt.main_name, image=image)
    return new
