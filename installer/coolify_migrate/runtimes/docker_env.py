"""Which variables a container gets: the host ``.env``'s, never ones that live only in a container.

Pure functions over lists of ``KEY=value`` strings, so the Docker runtime and its tests share one
definition. "App variables" are the host file's keys plus any name the profile claims
(``Profile.app_env_pattern``); those come from the host file only. Anything else an old container
carried that its image did not set (a user's ``-e FOO=bar``) is kept when it is recreated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from coolify_migrate import instance
from coolify_migrate.core.context import Context


def host_env(ctx: Context) -> list[tuple[str, str]]:
    """The app's variables, in file order, as ``docker run --env-file`` would pass them."""
    env = instance.load_env(ctx)
    out = []
    for key in env.keys():  # noqa: SIM118  (EnvFile, not a dict)
        value = env.get(key)
        if value is not None:
            out.append((key, value))
    return out


def as_dict(entries: Iterable[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in entries if "=" in e)


def matches_host(
    container_env: list[str],
    image_env: dict[str, str],
    host: list[tuple[str, str]],
    app: re.Pattern[str],
) -> bool:
    """True when the container has exactly the host's app variables: no other value, none
    missing, and no app-looking variable of its own beyond what its image sets."""
    wanted = dict(host)
    seen = {}
    for entry in container_env:
        key, _, value = entry.partition("=")
        if key in wanted or (app.fullmatch(key) and image_env.get(key) != value):
            seen[key] = value
    return seen == wanted


def merged(
    old_env: list[str],
    old_image_env: dict[str, str],
    host: list[tuple[str, str]],
    app: re.Pattern[str],
) -> list[str]:
    """The environment of a recreated container: the host .env, then the old container's own
    variables that are neither the app's nor inherited from its old image."""
    host_keys = {k for k, _ in host}
    carried = []
    for entry in old_env:
        key, _, value = entry.partition("=")
        if key in host_keys or app.fullmatch(key) or old_image_env.get(key) == value:
            continue
        carried.append(entry)
    return [f"{k}={v}" for k, v in host] + carried


def parse_dotenv(text: str) -> dict[str, str]:
    """A settings file as the app's dotenv loader reads it (unquoted ``KEY=value`` lines, as
    ``env | grep`` wrote them in Coolify v3's container); the last definition wins."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out
