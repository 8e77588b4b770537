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
from coolify_migrate.core.app import Profile
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
    base = ctx.env_path.name
    path = ctx.data_dir / f"{base}-{stamp}"
    n = 1
    while path.exists():
        path = ctx.data_dir / f"{base}-{stamp}-{n}"
        n += 1
    return path


def _has_data(ctx: Context) -> Path | None:
    marker = ctx.profile.data_marker(ctx.data_dir)
    if marker is not None:
        return marker
    if type(ctx.profile).data_marker is not Profile.data_marker:
        return None  # the app keeps its data elsewhere than a database file of its own
    db_path = instance.database_path(ctx)
    return db_path if db_path.exists() else None


def _protected(ctx: Context, env: EnvFile, generated: dict[str, str], has_data: bool) -> set[str]:
    """Keys a fill-in must leave alone when there are data: the data key where the app finds
    it (through its fallback too: Redash's cookie secret when ``REDASH_SECRET_KEY`` is unset),
    and the database's own credentials (a new password would not open the existing cluster)."""
    if not has_data:
        return set()
    profile = ctx.profile
    spec = profile.data_secret
    keep = set(spec.env_keys)
    if spec.fallback is not None and profile.falls_back(env, spec):
        keep |= set(profile.secret_spec(spec.fallback).env_keys)
    keep |= {k for k in generated if profile.secret_env_pattern.fullmatch(k)}
    return keep


def _write_settings_files(ctx: Context, version: str) -> list[str]:
    written = []
    for name, text in ctx.profile.settings_files(ctx, parse_version(version)).items():
        durable.write_atomic(ctx.data_dir / name, text.encode("utf-8"), checkpoint="install:file")
        written.append(name)
    return written


def prepare_env(ctx: Context, *, version: str) -> dict[str, Any]:
    """Create the settings file with strong secrets, or fill in only missing or empty values;
    write the app's other settings files (Redash: its Compose file) when there are none."""
    version = str(parse_version(version))
    profile = ctx.profile
    tag_key = profile.version_env_key
    existing = _has_data(ctx)
    if not ctx.env_path.exists():
        if existing is not None:
            raise KeyProblem(
                f"found the app's data at {existing} but no {ctx.env_path}: new secrets would "
                "not decrypt them (nor open the database)",
                hint=f"put back the {ctx.env_path.name} that belongs to these data (it holds the "
                "data key), then run again",
            )
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
        generated = profile.generated_env()
        for value in generated.values():
            ctx.redactor.add(value)
        files = _write_settings_files(ctx, version)
        env = EnvFile(ctx.env_path, "")
        if tag_key:
            env.set(tag_key, version)
        for key, value in generated.items():
            env.set(key, value)
        env.save(checkpoint="install:env")
        return {
            "env": str(ctx.env_path),
            "created": True,
            "added": [k for k in (tag_key, *generated) if k],
            "files": files,
            "backup": None,
        }

    env = instance.load_env(ctx)
    has_key = profile.active_key(env) is not None
    if not has_key and existing is not None:
        raise KeyProblem(
            f"{ctx.env_path} names no data key but the app's data exist ({existing})",
            hint="put the key that encrypts these data back into the settings file, then run again",
        )
    generated = profile.generated_env(env)
    for value in generated.values():
        ctx.redactor.add(value)
    protected = _protected(ctx, env, generated, existing is not None)
    added = []
    for key, value in generated.items():
        if key in protected:
            continue  # only a key roll (or the operator) may change these
        if env.set_default(key, value):
            added.append(key)
    if tag_key and not env.get(tag_key) and existing is None:
        env.set(tag_key, version)  # no data yet: this is a fresh install of `version`
        added.append(tag_key)
    files = _write_settings_files(ctx, version) if existing is None else []
    backup = None
    if added:
        backup_path = _backup_name(ctx)
        durable.write_atomic(
            backup_path, ctx.env_path.read_bytes(), mode=0o600, checkpoint="install:env-backup"
        )
        env.save(checkpoint="install:env")
        backup = str(backup_path)
    return {
        "env": str(ctx.env_path),
        "created": False,
        "added": added,
        "files": files,
        "backup": backup,
    }
