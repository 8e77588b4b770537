"""The model of an installed instance: where its files are and which version it runs.

- ``.env`` is ``<data-dir>/.env``; tool state is ``<data-dir>/.coolify-migrate/``.
- The database is ``--db`` if given, else ``<data-dir>/<profile.db_relative>`` when it exists,
  else (Docker runtime) the file in the mountpoint of the profile's volume.
- The installed version is read from every source there is: the tool's own record (inside the
  database), the running container's image tag, and the ``.env`` ``TAG``. When they disagree the
  version is *unknown* and the disagreement is reported; nothing guesses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from packaging.version import Version

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import DatabaseError, MigrateError, Refused, UsageError
from coolify_migrate.core.versions import parse_version


def database_path(ctx: Context) -> Path:
    if ctx.db_override is not None:
        return ctx.db_override
    local = ctx.data_dir / ctx.profile.db_relative
    if local.exists() or ctx.runtime_name == "none":
        return local
    found = ctx.runtime().database_path()
    return found if found is not None else local


def load_env(ctx: Context) -> EnvFile:
    env = EnvFile.load(ctx.env_path)
    env.on_tighten = ctx.out.warn
    for value in ctx.profile.secret_values(env):
        ctx.redactor.add(value)
    return env


class VersionSource(NamedTuple):
    """What one source says the installed version is."""

    name: str  # "record", "container", "env"
    version: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.name, "version": self.version, "detail": self.detail}


class InstalledVersion(NamedTuple):
    """The installed version when the sources agree, and what each of them says."""

    version: Version | None
    sources: tuple[VersionSource, ...]
    # versions the data themselves allow (the app's own migration head can be shared by several)
    allowed: tuple[str, ...] | None = None

    @property
    def conflict(self) -> bool:
        found = {s.version for s in self.sources if s.version}
        if self.allowed is not None and found and not found <= set(self.allowed):
            return True
        return len(found) > 1

    def require(self) -> Version:
        if self.version is not None:
            return self.version
        if self.conflict:
            said = "; ".join(f"{s.name} says {s.version}" for s in self.sources if s.version)
            running = next((s.version for s in self.sources if s.name == "container"), None)
            raise Refused(
                f"the installed version is ambiguous: {said}",
                hint="record the version that really runs with 'coolify-migrate stamp VERSION'"
                + (f" (the running image is {running})" if running else ""),
            )
        raise Refused(
            "cannot tell which version is installed",
            hint="record it with 'coolify-migrate stamp VERSION' (the version of the running image)",
        )


def _clean(version: str | None) -> str | None:
    if not version:
        return None
    try:
        return str(parse_version(version))
    except UsageError:
        return None


def installed_version(ctx: Context, env: EnvFile | None, meta: dict[str, str]) -> InstalledVersion:
    """Every source's version: the tool's record, the running image's tag, the settings file, and
    what the app's own schema says (its migration head, which may fit several versions)."""
    sources: list[VersionSource] = []
    if meta.get("version"):
        sources.append(
            VersionSource("record", _clean(meta["version"]), "tool record in the database")
        )
    if ctx.runtime_name != "none":
        runtime = ctx.runtime()
        tag = runtime.current_image_tag()
        if tag is not None:
            sources.append(VersionSource("container", _clean(tag), f"image tag {tag}"))
        running = getattr(runtime, "running_tags", None)  # a Compose project's containers
        if callable(running):
            for service, tag in sorted(running().items()):
                sources.append(
                    VersionSource("running", _clean(tag), f"{service} runs image tag {tag}")
                )
    key = ctx.profile.version_env_key
    if env is not None and key:
        tag = env.get(key)
        if tag:
            sources.append(VersionSource("env", _clean(tag), f"{key}={tag}"))
    allowed: tuple[str, ...] | None = None
    data = _data_version(ctx)
    if data is not None:
        versions, detail = data
        allowed = tuple(v for v in (_clean(x) for x in versions) if v)
        shown = allowed[0] if len(allowed) == 1 else None
        sources.append(VersionSource("data", shown, detail))
    found = {s.version for s in sources if s.version}
    if allowed is not None and len(found) == 0 and len(allowed) == 1:
        found = set(allowed)
    version = Version(found.pop()) if len(found) == 1 else None
    result = InstalledVersion(version, tuple(sources), allowed)
    if result.conflict:
        return InstalledVersion(None, tuple(sources), allowed)
    return result


def _data_version(ctx: Context) -> tuple[tuple[str, ...], str] | None:
    try:
        store = ctx.store()
        if not store.exists():
            return None
    except MigrateError:
        return None  # no database to read (yet): the other sources speak
    try:
        conn = store.connect(readonly=True)
    except DatabaseError:
        return None
    try:
        return ctx.profile.data_version(conn)
    finally:
        conn.close()


def read_meta(ctx: Context) -> dict[str, str]:
    """The tool's record in the app's database ({} when there is no database, or no record)."""
    try:
        store = ctx.store()
        if not store.exists():
            return {}
    except MigrateError:
        return {}
    try:
        conn = store.connect(readonly=True)
    except DatabaseError:
        return {}
    try:
        return conn.read_meta()
    except DatabaseError:
        return {}
    finally:
        conn.close()
