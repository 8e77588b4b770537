"""What ``scripts/install.sh`` asks of the library before it runs ``upgrade``.

- ``target_version``: the release to install, read from ``versions.json`` (a file or a URL, any
  format ``coolify_migrate.config.manifest`` reads) and normalised (``v3.12.36`` -> ``3.12.36``).
- ``prepare_env``: create the host ``.env`` with strong secrets, or add only the keys that are
  missing. A populated key is never overwritten. The data key is generated only when there is no
  data yet: a new key beside an existing database would encrypt nothing and decrypt nothing.
  Before an existing ``.env`` is changed, its bytes are kept as ``.env-<YYYYmmdd-HHMMSS>`` (0600).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from coolify_migrate import instance
from coolify_migrate.config import manifest
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, Refused
from coolify_migrate.core.versions import parse_version


def target_version(
    ctx: Context, *, manifest_src: str | None, requested: str | None
) -> dict[str, Any]:
    if manifest_src is None:
        from coolify_migrate.engine.upgrade import default_manifest

        manifest_src = default_manifest(ctx.profile)
    man = manifest.load(manifest_src, ctx.profile)
    version = parse_version(requested, what="-x") if requested else man.latest
    release = man.release(version)
    if release is None:
        known = ", ".join(str(r.version) for r in man.releases if not r.withdrawn)
        raise Refused(f"{version} is not a release in {manifest_src}", hint=f"pick one of: {known}")
    if release.withdrawn:
        raise Refused(f"{version} was withdrawn by its publisher", hint="pick the next release")
    return {"version": str(version), "image": release.image, "manifest": manifest_src}


def _backup_name(ctx: Context) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ctx.clock()))
    path = ctx.data_dir / f".env-{stamp}"
    n = 1
    while path.exists():
        path = ctx.data_dir / f".env-{stamp}-{n}"
        n += 1
    return path


def _has_data(ctx: Context) -> Path | None:
    db_path = instance.database_path(ctx)
    return db_path if db_path.exists() else None


def prepare_env(ctx: Context, *, version: str) -> dict[str, Any]:
    version = str(parse_version(version))
    profile = ctx.profile
    generated = profile.generated_env()
    for value in generated.values():
        ctx.redactor.add(value)
    tag_key = profile.version_env_key
    if not ctx.env_path.exists():
        existing = _has_data(ctx)
        if existing is not None:
            raise KeyProblem(
                f"found a database at {existing} but no {ctx.env_path}: "
                "a new key would not decrypt it",
                hint="put back the .env that belongs to this database (it holds the data key), "
                "then run again",
            )
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
        env = EnvFile(ctx.env_path, "")
        env.set(tag_key, version)
        for key, value in generated.items():
            env.set(key, value)
        env.save(checkpoint="install:env")
        return {
            "env": str(ctx.env_path),
            "created": True,
            "added": [tag_key, *generated],
            "backup": None,
        }

    env = instance.load_env(ctx)
    has_key = profile.active_key(env) is not None
    if not has_key:
        existing = _has_data(ctx)
        if existing is not None:
            raise KeyProblem(
                f"{ctx.env_path} has no data key but the database {existing} exists",
                hint="put the key that encrypts this database back into .env, then run again",
            )
    added = []
    for key, value in generated.items():
        if has_key and profile.secret_names.fullmatch(key):
            continue  # the data key exists: only a key roll (in the upgrade) may change it
        if env.set_default(key, value):
            added.append(key)
    if not env.get(tag_key) and _has_data(ctx) is None:
        env.set(tag_key, version)  # no data yet: this is a fresh install of `version`
        added.append(tag_key)
    backup = None
    if added:
        backup_path = _backup_name(ctx)
        durable.write_atomic(
            backup_path, ctx.env_path.read_bytes(), mode=0o600, checkpoint="install:env-backup"
        )
        env.save(checkpoint="install:env")
        backup = str(backup_path)
    return {"env": str(ctx.env_path), "created": False, "added": added, "backup": backup}
