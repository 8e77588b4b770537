"""Where a PostgreSQL database is, and how its own tools are run.

``Server`` is the address (host or socket directory, port, user, password, database), read from
a libpq conninfo or a ``postgresql://`` URL; its password reaches tools only through
``PGPASSWORD``. A ``Runner`` runs ``pg_dump``/``pg_restore``/``psql`` where the server runs:
``LocalRunner`` on this host (the server's major version), ``runtimes.compose.ServiceRunner`` in
the database's Compose service.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

from coolify_migrate.core.errors import DatabaseError


@dataclass(frozen=True)
class Server:
    """Where the database is: host (or socket directory), port, user, password, database."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str = "postgres"

    @classmethod
    def parse(cls, conninfo: str) -> Server:
        """A libpq connection string, URI or ``key=value`` form (psycopg's own parser)."""
        try:
            parsed = driver().conninfo.conninfo_to_dict(conninfo)
        except driver().Error as err:
            raise DatabaseError(f"not a PostgreSQL connection string: {err}") from None
        return cls(
            host=parsed.get("host") or None,
            port=int(parsed["port"]) if parsed.get("port") else None,
            user=parsed.get("user") or None,
            password=parsed.get("password") or None,
            database=parsed.get("dbname") or "postgres",
        )

    @classmethod
    def from_url(cls, url: str) -> Server:
        """``postgresql://user:pass@host:port/db?host=/socket/dir&user=...``."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise DatabaseError(f"not a PostgreSQL URL: {parts.scheme or 'no scheme'}")
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        return cls(
            host=unquote(query.get("host", "")) or parts.hostname,
            port=int(query.get("port", 0)) or parts.port,
            user=unquote(query.get("user", "")) or (unquote(parts.username or "") or None),
            password=unquote(parts.password) if parts.password else query.get("password"),
            database=unquote(parts.path.lstrip("/")) or "postgres",
        )

    def with_database(self, name: str) -> Server:
        return Server(self.host, self.port, self.user, self.password, name)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dbname": self.database}
        for key in ("host", "port", "user", "password"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def tool_env(self) -> dict[str, str]:
        """libpq's variables for the command-line tools: no secret on any command line."""
        out = {"PGDATABASE": self.database}
        if self.host:
            out["PGHOST"] = self.host
        if self.port:
            out["PGPORT"] = str(self.port)
        if self.user:
            out["PGUSER"] = self.user
        if self.password:
            out["PGPASSWORD"] = self.password
        return out

    @property
    def where(self) -> str:
        at = self.host or "the default socket"
        return f"database {self.database} on {at}" + (f":{self.port}" if self.port else "")


class Runner(Protocol):
    """Runs one of the server's tools (``pg_dump``, ``pg_restore``) where the server runs,
    with libpq's variables; stdin/stdout are files or None."""

    def run(
        self,
        tool: str,
        args: list[str],
        env: dict[str, str],
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]: ...


class LocalRunner:
    """The tools of the server's own major version on this host (Debian:
    ``/usr/lib/postgresql/<major>/bin``), else the ones on ``PATH``."""

    def __init__(self, major: int | None = None) -> None:
        self.major = major

    def _tool(self, tool: str) -> str:
        if self.major is not None:
            path = Path(f"/usr/lib/postgresql/{self.major}/bin/{tool}")
            if path.exists():
                return str(path)
        return tool

    def run(
        self,
        tool: str,
        args: list[str],
        env: dict[str, str],
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [self._tool(tool), *args],
                env={**os.environ, **env},
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        except FileNotFoundError as err:
            raise DatabaseError(
                f"{tool} is not installed here",
                hint="install the PostgreSQL client tools of the server's major version",
            ) from err


def driver() -> Any:
    """The psycopg module, or a clear error when the optional driver is missing."""
    try:
        import psycopg
    except ImportError as err:  # an optional dependency: only PostgreSQL apps need it
        raise DatabaseError(
            "the PostgreSQL driver is not installed",
            hint="pip install 'coolify-migrate[postgres]' (psycopg)",
        ) from err
    return psycopg
