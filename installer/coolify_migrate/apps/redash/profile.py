"""Redash: its two secrets, its two encrypted fields, its Compose project, its releases.

Facts from shared/reference/redash.md. ``REDASH_COOKIE_SECRET`` signs sessions, CSRF tokens and
invite/reset links; the web server refuses to start without it (an empty value counts as missing
here). ``REDASH_SECRET_KEY`` encrypts ``data_sources.encrypted_options`` and
``notification_destinations.encrypted_options`` (``bytea`` holding a Fernet token; Fernet key =
urlsafe-base64(SHA-256(secret))); when the variable is unset the cookie secret is used instead,
while a line ``REDASH_SECRET_KEY=`` means the empty string as the key.
"""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path
from typing import Any

from packaging.version import Version

from coolify_migrate.apps.redash import (
    COMPOSE_FILES,
    DEFAULT_DIR,
    ENV_FILE,
    IMAGE_REPO,
    installed_in,
)
from coolify_migrate.core.app import ComposeSpec, EncryptedColumn, Profile, SecretSpec
from coolify_migrate.core.codec import Codec
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, MigrateError, Refused
from coolify_migrate.core.store import Store

COOKIE = "REDASH_COOKIE_SECRET"
DATA = "REDASH_SECRET_KEY"
# What the setup script's `pwgen -1s 32` draws from: letters and digits, read the same by
# --env-file, Compose and sh.
ALNUM = string.ascii_letters + string.digits

# The published tags (the image's), by version: a tag such as 10.1.0.b50633 is not the PEP 440
# form of its version (10.1.0b50633), so the tag is looked up, not printed from the version.
TAGS = (
    "6.0.0.b8537",
    "7.0.0.b18042",
    "8.0.0.b32245",
    "10.0.0.b50363",
    "10.1.0.b50633",
    "25.1.0",
    "25.8.0",
)
# The alembic head each release's `manage db upgrade` leaves (shared/reference/redash.md).
HEADS = {
    "6.0.0.b8537": "71477dadd6ef",
    "7.0.0.b18042": "e5c7a4e2df4d",
    "8.0.0.b32245": "e5c7a4e2df4d",
    "10.0.0.b50363": "89bc7873a3e0",
    "10.1.0.b50633": "89bc7873a3e0",
    "25.1.0": "9e8c841d1a30",
    "25.8.0": "db0aca1ebd32",
}
# Crossing these majors runs a migration that encrypts with the data key: every row must already
# decrypt under the key the migration will use (7: data sources; 10: alert destinations).
ENCRYPTING = ("7.0.0.b18042", "10.0.0.b50363")
_BY_VERSION = {Version(t): t for t in TAGS}
_PUBLISHED_DEFAULT = "c292a0a3aa32397cdb050e233733900f"  # CVE-2021-41192


def tag_of(version: Version) -> str:
    return _BY_VERSION.get(version, str(version))


@functools.cache
def _codec() -> Codec:
    """One Fernet codec for every profile object (it keeps a cipher per key), made when a value
    is first read: the ``cryptography`` import is not a cost of every start."""
    from coolify_migrate.crypto.codecs import FernetCodec

    return FernetCodec()


class Redash(Profile):
    name = "redash"
    title = "Redash"

    @property
    def codec(self) -> Codec:
        return _codec()

    encrypted_columns = (
        EncryptedColumn("data_sources", "encrypted_options"),
        EncryptedColumn("notification_destinations", "encrypted_options"),
    )
    id_column = "id"
    env_file = ENV_FILE
    default_dir = DEFAULT_DIR
    runtime_kind = "compose"
    majors_are_apps = False  # 8 -> 10.1 -> 25.1: one major at a time, through required stops
    # The oldest release a fresh install may get: older ones are only upgraded from (their
    # Compose files differ from the layout written here).
    first_installable = Version("10.1.0.b50633")

    def recognises(self, directory: Path) -> bool:
        return installed_in(directory)

    image_repo = IMAGE_REPO
    required_stops = tuple(
        Version(t) for t in ("7.0.0.b18042", "8.0.0.b32245", "10.1.0.b50633", "25.1.0")
    )
    version_env_key = ""  # the version is the image tag in the Compose file
    min_version = Version("6.0.0")
    compromised_keys = (_PUBLISHED_DEFAULT,)
    secret_env_pattern = re.compile(r"POSTGRES_PASSWORD|REDASH_DATABASE_URL")
    app_env_pattern = re.compile(r"REDASH_[A-Z0-9_]*|POSTGRES_[A-Z0-9_]*")
    secrets = (
        SecretSpec(
            "cookie-secret",
            "signs sessions, CSRF tokens and invite and password-reset links",
            env_keys=(COOKIE,),
            keep_as="REDASH_COOKIE_SECRET_OLD_{ms}",
            alphabet=ALNUM,
            new_length=32,
            rolling_ends="every user is logged out, and pending invite and reset links stop working",
        ),
        SecretSpec(
            "data-key",
            "encrypts the options of data sources and alert destinations",
            env_keys=(DATA,),
            keep_as="REDASH_SECRET_KEY_OLD_{ms}",
            fallback="cookie-secret",
            empty_is_set=True,  # `REDASH_SECRET_KEY=` is the empty key, not "unset"
            encrypts=True,
            alphabet=ALNUM,
            new_length=32,
            rolling_ends="nothing for users; every service is recreated with the new key",
        ),
    )

    def tag_for(self, version: Version) -> str:
        return tag_of(version)

    def data_version(self, conn: Any) -> tuple[tuple[str, ...], str] | None:
        head = alembic_head(conn)
        if head is None:
            return None
        fits = tuple(tag for tag, h in HEADS.items() if h == head)
        if not fits:
            raise Refused(
                f"the database's alembic head {head} is not one this tool knows a Redash release by",
                hint="upgrade Redash by hand to a release this tool lists, or update coolify-migrate",
            )
        return fits, f"alembic head {head}"

    def default_manifest(self) -> Path:
        return Path(__file__).with_name("versions.json")

    def compose_spec(self) -> ComposeSpec:
        return ComposeSpec(
            app_image=self.image_repo,
            compose_files=COMPOSE_FILES,
            env_file=self.env_file,
            data_services=("postgres", "redis"),
            db_service="postgres",
            health_services=("server",),
        )

    def open_store(self, ctx: Context) -> Store:
        """The database ``REDASH_DATABASE_URL`` names. In a Compose project, the dumps and
        restores run with the postgres service's own tools (``docker compose exec``: the
        server's version, nothing to install on the host), and a host name that is a service
        (``postgres`` in the setup's URL) is reached at that service's address."""
        from coolify_migrate import instance
        from coolify_migrate.stores.pg_server import Server
        from coolify_migrate.stores.postgres import PostgresStore

        env = instance.load_env(ctx)
        url = env.get("REDASH_DATABASE_URL") or env.get("DATABASE_URL") or ""
        if not url:
            raise Refused(
                f"{ctx.env_path} names no REDASH_DATABASE_URL",
                hint="restore the env file from your backup; it holds the database's address",
            )
        server = Server.from_url(url)
        runtime = ctx.runtime()
        runner = None
        services = _services(runtime)
        db_service = self.compose_spec().db_service
        if services and db_service in services:
            # the database's services run (never the app's): a backup or a migration needs them
            runtime.ensure_data_up()  # type: ignore[attr-defined]
            if server.host in services:
                where = runtime.service_host(server.host)  # type: ignore[attr-defined]
                server = Server(where, server.port, server.user, server.password,
                                server.database)  # fmt: skip
            runner = runtime.tool_runner(db_service)  # type: ignore[attr-defined]
        return PostgresStore(server, runner=runner, backup_dir=ctx.data_dir / "backups")

    def backup_files(self, ctx: Context) -> list[Path]:
        found = [ctx.env_path]
        for name in self.compose_spec().compose_files:
            if (ctx.data_dir / name).is_file():
                found.append(ctx.data_dir / name)
                break
        return found

    def data_in_runtime(self, ctx: Context) -> str | None:
        if not any((ctx.data_dir / n).is_file() for n in self.compose_spec().compose_files):
            return None
        try:
            from coolify_migrate.config.envfile import EnvFile
            from coolify_migrate.stores.pg_server import Server

            env = EnvFile.load(ctx.env_path)
            url = env.get("REDASH_DATABASE_URL") or env.get("DATABASE_URL") or ""
            host = Server.from_url(url).host if url else ""
        except (MigrateError, ValueError):
            return None
        services = self.compose_spec().data_services
        if host in services:
            return f"its database runs in the Compose service {host!r}"
        return None

    def data_marker(self, directory: Path) -> Path | None:
        found = directory / "postgres-data"
        return found if found.is_dir() and any(found.iterdir()) else None

    def settings_files(self, ctx: Context, version: Version) -> dict[str, str]:
        from coolify_migrate.apps.redash import compose

        if any((ctx.data_dir / n).exists() for n in self.compose_spec().compose_files):
            return {}
        if version < self.first_installable:
            raise Refused(
                f"a fresh install of Redash {self.tag_for(version)} is not offered: its Compose "
                "layout predates the one this tool writes",
                hint=f"install {self.tag_for(self.first_installable)} or newer, or write your "
                "own compose.yaml first (it is kept)",
            )
        return {"compose.yaml": compose.render(self.tag_for(version), ctx.data_dir, self.env_file)}

    def initialise(self, ctx: Context) -> str | None:
        """``create_db`` in a one-off server container when the database has no Redash tables
        (the setup script's first step), then the head that release should leave is checked."""
        from coolify_migrate.apps.redash.steps import head

        runtime = ctx.runtime()
        if not hasattr(runtime, "run_once") or head(ctx) is not None:
            return None
        conn = ctx.store().connect(readonly=True)
        try:
            tables = conn.columns("data_sources")
        finally:
            conn.close()
        if tables:
            raise Refused(
                "the database has Redash's tables but no alembic_version row",
                hint="stamp it with 'docker compose run --rm server manage db stamp <head>'",
            )
        code, tail = runtime.run_once("server", "create_db")  # type: ignore[attr-defined]
        tag = runtime.current_image_tag()
        if code != 0:
            raise ChangeFailed(
                f"Redash's create_db failed (exit {code}): "
                f"{tail.splitlines()[-1] if tail else 'no output'}",
                hint="see 'docker compose logs' in the install directory",
            )
        got = head(ctx)
        if tag in HEADS and got != HEADS[tag]:
            raise ChangeFailed(f"after create_db the alembic head is {got}, not {HEADS[tag]}")
        return f"created Redash's tables (alembic head {got})"

    def backup_facts(self, ctx: Context) -> dict[str, Any]:
        """Every service's image as the Compose file names it, the alembic head, and the
        fingerprint of each secret (the cookie secret's too: a rollback puts its env file back)."""
        from coolify_migrate import instance
        from coolify_migrate.apps.redash.steps import head

        facts: dict[str, Any] = {"alembic_head": head(ctx)}
        services = getattr(ctx.runtime(), "services", None)
        if callable(services):
            facts["images"] = {
                name: str(svc.get("image", "")) for name, svc in sorted(services().items())
            }
        env = instance.load_env(ctx)
        facts["secrets"] = {
            spec.name: found.key.fingerprint
            for spec in self.secrets
            if (found := self.resolve(env, spec)) is not None
        }
        return facts

    def generated_env(self, env: Any = None) -> dict[str, str]:
        """A fresh env file's values, as the setup script writes them (32 letters and digits).
        A database URL made here uses the env file's PostgreSQL password when it has one."""
        password = (env.get("POSTGRES_PASSWORD") if env is not None else None) or (
            self.new_key().reveal()
        )
        return {
            "PYTHONUNBUFFERED": "0",
            "REDASH_LOG_LEVEL": "INFO",
            "REDASH_REDIS_URL": "redis://redis:6379/0",
            COOKIE: self.new_key(self.secret_spec("cookie-secret")).reveal(),
            DATA: self.new_key().reveal(),
            "POSTGRES_PASSWORD": password,
            "REDASH_DATABASE_URL": f"postgresql://postgres:{password}@postgres/postgres",
            "REDASH_ENFORCE_CSRF": "true",
            "REDASH_GUNICORN_TIMEOUT": "60",
        }

    def steps(self) -> list[Any]:
        from coolify_migrate.apps.redash.steps import steps

        return list(steps())


def alembic_head(conn: Any) -> str | None:
    """The migration head Redash's ``alembic_version`` holds, or None (no such table or row)."""
    if "version_num" not in conn.columns("alembic_version"):
        return None
    found = conn.scalar("SELECT version_num FROM alembic_version")
    return str(found) if found is not None else None


def _services(runtime: Any) -> set[str]:
    """The Compose project's services; empty for a runtime that is not Compose (or a project
    whose file cannot be read yet)."""
    from coolify_migrate.core.errors import MigrateError

    services = getattr(runtime, "services", None)
    if not callable(services):
        return set()
    try:
        return set(services())
    except MigrateError:
        return set()
