"""What ``scripts/install.sh`` asks of the library before it runs ``upgrade``.

- ``target_version``: the release to install, read from ``versions.json`` (a file or a URL, any
  format ``coolify_migrate.config.manifest`` reads) and normalised (``v3.12.36`` -> ``3.12.36``);
  ``latest`` (or nothing) is the manifest's newest release. Read-only: install.sh asks it before
  it touches anything.
- ``prepare_env``: create the host ``.env`` with strong secrets, or add only the keys that are
  missing. A populated key is never overwritten, and neither is a setting left empty on purpose
  (v3's ``COOLIFY_APP_ID=`` is "do not track"): only an empty secret counts as missing. The data
  key is generated only when there is no data yet: a new key beside an existing database would
  encrypt nothing and decrypt nothing. ``settings`` are the operator's choices (install.sh's
  ``-n -a -w -i``), written over whatever the file says; they may name the app's settings only,
  never a secret nor the version. Before an existing ``.env`` is changed, its bytes are kept as
  ``.env-<YYYYmmdd-HHMMSS>`` (0600).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coolify_migrate import instance
from coolify_migrate.config import manifest
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable
from coolify_migrate.core.app import Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, Refused, UsageError
from coolify_migrate.core.versions import parse_version


def target_version(
    ctx: Context, *, manifest_src: str | None, requested: str | None
) -> dict[str, Any]:
    if manifest_src is None:
        from coolify_migrate.engine.upgrade import default_manifest

        manifest_src = default_manifest(ctx.profile)
    man = manifest.load(manifest_src, ctx.profile)
    wanted = requested.strip() if requested else "latest"
    version = man.latest if wanted == "latest" else parse_version(wanted, what="-x")
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


def _check_settings(profile: Profile, settings: Mapping[str, str]) -> None:
    """A setting names one of the app's own settings, never a secret nor the version: those
    belong to the tool (a key change is a roll, a version change an upgrade)."""
    for key in settings:
        if key == profile.version_env_key or profile.secret_names.fullmatch(key):
            raise UsageError(
                f"{key} cannot be set at install: it is managed by the tool",
                hint="a version is chosen with -x, a key is changed with 'secrets roll'",
            )
        if not profile.app_env_pattern.fullmatch(key):
            raise UsageError(
                f"{key} is not one of {profile.title}'s settings",
                hint=f"name a setting {profile.title} reads from {profile.env_file}",
            )


def _fill_in(profile: Profile, env: EnvFile, key: str, value: str) -> bool:
    """Add ``key`` when it is missing; an empty value is filled only for a secret (an empty
    setting is a choice: v3's empty ``COOLIFY_APP_ID`` turns its telemetry off)."""
    if env.get(key) is not None and not profile.secret_names.fullmatch(key):
        return False
    return env.set_default(key, value)


def prepare_env(
    ctx: Context, *, version: str, settings: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Create the settings file with strong secrets, or fill in only missing values; apply the
    operator's ``settings``; write the app's other settings files (Redash: its Compose file)
    when there are none."""
    version = str(parse_version(version))
    profile = ctx.profile
    settings = dict(settings or {})
    _check_settings(profile, settings)
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
        for key, value in {**generated, **settings}.items():
            env.set(key, value)
        env.save(checkpoint="install:env")
        return {
            "env": str(ctx.env_path),
            "created": True,
            "added": [k for k in dict.fromkeys((tag_key, *generated, *settings)) if k],
            "changed": [],
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
        if key not in settings and _fill_in(profile, env, key, value):
            added.append(key)
    if tag_key and not env.get(tag_key) and existing is None:
        env.set(tag_key, version)  # no data yet: this is a fresh install of `version`
        added.append(tag_key)
    changed: list[str] = []
    for key, value in settings.items():
        had = env.get(key) is not None
        if env.set(key, value):
            (changed if had else added).append(key)
    files = _write_settings_files(ctx, version) if existing is None else []
    backup = None
    if added or changed:
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
        "changed": changed,
        "files": files,
        "backup": backup,
    }
