"""Which runtime a command uses, and why: ``--runtime auto`` made explicit.

``auto`` looks for a Docker engine the way the Docker CLI does: ``DOCKER_HOST``, then the
context named by ``DOCKER_CONTEXT`` or the CLI's ``currentContext``, then the rootful and the
rootless default sockets. An engine found is asked ``/_ping`` (a Unix socket or plain TCP,
two seconds at most). The outcome keeps its reason, so ``status`` can say why, and a command that
changes something can refuse instead of silently managing files only (``needs_engine``).

Nothing here imports the Docker SDK: the choice is made before any runtime is built.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

NAMES = ("auto", "docker", "compose", "none")
DEFAULT_SOCKET = "/var/run/docker.sock"
PING_SECONDS = 2.0


class Choice(NamedTuple):
    """The runtime chosen, and why (``status`` shows it)."""

    name: str  # docker | compose | none (compose is chosen by the app's profile from docker)
    why: str
    host: str | None = None  # the engine address used, when one was found
    answered: bool | None = None  # None: not asked (explicit choice, or TLS)
    automatic: bool = False

    @property
    def engine_silent(self) -> bool:
        """``auto`` found no engine, or one that does not answer."""
        return self.automatic and self.name == "none"


def _context_host(environ: Mapping[str, str], home: Path) -> tuple[str, str] | None:
    """(context name, its Docker endpoint) for the context the Docker CLI would use."""
    config_dir = Path(environ.get("DOCKER_CONFIG") or home / ".docker")
    name = environ.get("DOCKER_CONTEXT", "")
    if not name:
        try:
            config = json.loads((config_dir / "config.json").read_text()[:1_000_000])
        except (OSError, ValueError):
            return None
        name = str(config.get("currentContext") or "") if isinstance(config, dict) else ""
    if not name or name == "default":
        return None
    import hashlib  # OpenSSL loads with it: only a named Docker context needs it

    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (name, host) if isinstance(host, str) and host else None


def ping(host: str, timeout: float = PING_SECONDS) -> bool | None:
    """True when the engine at ``host`` answers ``/_ping``; None when it cannot be asked
    without the SDK (TLS, ssh://)."""
    import socket  # only a probe needs it, not ``--runtime none``

    try:
        if host.startswith("unix://"):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(timeout)
            conn.connect(host[len("unix://") :])
        elif host.startswith("tcp://") and not os.environ.get("DOCKER_TLS_VERIFY"):
            address = host[len("tcp://") :].rstrip("/")
            name, _, port = address.rpartition(":")
            conn = socket.create_connection((name or address, int(port or 2375)), timeout=timeout)
        else:
            return None
        with conn:
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = conn.recv(256)
    except (OSError, ValueError):
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply[:16]


def _candidates(environ: Mapping[str, str], home: Path) -> list[tuple[str, str]]:
    """(address, where it came from), in the Docker CLI's order; the first one found wins."""
    if environ.get("DOCKER_HOST"):
        return [(environ["DOCKER_HOST"], "DOCKER_HOST")]
    context = _context_host(environ, home)
    if context is not None:
        return [(context[1], f"the Docker context {context[0]!r}")]
    found = []
    if Path(DEFAULT_SOCKET).exists():
        found.append((f"unix://{DEFAULT_SOCKET}", "the default socket"))
    runtime_dir = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    rootless = Path(runtime_dir) / "docker.sock"
    if rootless.exists():
        found.append((f"unix://{rootless}", "the rootless socket"))
    return found


def choose(
    requested: str, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Choice:
    """The runtime for ``requested`` (one of ``NAMES``), with its reason."""
    if requested != "auto":
        return Choice(requested, f"--runtime {requested}")
    env = os.environ if environ is None else environ
    candidates = _candidates(env, home or Path.home())
    if not candidates:
        return Choice(
            "none",
            "auto: no Docker engine configured (no DOCKER_HOST, no Docker context, "
            f"no socket at {DEFAULT_SOCKET})",
            automatic=True,
        )
    silent = []
    for host, origin in candidates:
        answered = ping(host)
        if answered is not False:
            state = "answers" if answered else "not asked"
            return Choice(
                "docker", f"auto: {origin} ({host}) {state}", host, answered, automatic=True
            )
        silent.append(f"{origin} ({host})")
    return Choice(
        "none",
        f"auto: no Docker engine answers at {' or '.join(silent)}",
        candidates[0][0],
        False,
        automatic=True,
    )
