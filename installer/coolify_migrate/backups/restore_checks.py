"""What a restore checks before it changes anything (``Restoration.prepare``): where the backup
comes from, what an interrupted restore left behind, the ``.env`` the backup belongs with, and
the key its data need. Each refuses with nothing changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coolify_migrate.backups import BackupInfo, key_for
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import BackupRefused, KeyProblem, Refused
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Store
from coolify_migrate.secrets import keys, verdicts
from coolify_migrate.stores import names

COMPANIONS = ("-wal", "-shm", "-journal")  # files SQLite keeps beside a database


def origin(ctx: Context, store: Store, info: BackupInfo, *, file: bool, force: bool) -> None:
    """A backup of another instance only with ``force``; a manifest this installation did
    not seal must at least agree with the record inside the file."""
    if info.foreign is not None and not force:
        raise BackupRefused(
            f"backup {info.name} belongs to another instance ({info.foreign})",
            hint="check that it is the backup you mean, then run again with --force",
        )
    if info.has_manifest and not info.sealed and file:
        conn = store.snapshot(info.path)
        try:
            recorded = conn.read_meta().get("version")
        finally:
            conn.close()
        if recorded and info.version and recorded != info.version:
            raise BackupRefused(
                f"the manifest of backup {info.name} says version {info.version}, "
                f"the backup's own record says {recorded}",
                hint="the manifest was changed or belongs to another file; do not restore it",
            )
    if info.note is not None:
        ctx.out.warn(f"backup {info.name}: {info.note}")


def leftovers(directory: Path, db_path: Path, journal_doc: dict[str, Any] | None) -> list[Path]:
    """What an interrupted restore set aside beside the database; refused unless the restore
    resumed here got past its safety backup (then what it set aside is superseded)."""
    stale = []
    for suffix in ("", *COMPANIONS):
        path = directory / names.undo_name(db_path.name + suffix)
        if os.path.lexists(path):
            stale.append(path)
    if stale and "safety" not in (journal_doc or {}).get("data", {}):
        raise Refused(
            f"an interrupted restore left {stale[0].name} in {directory}",
            hint="run 'coolify-migrate rollback --last' to finish that restore first",
        )
    return stale


def env_snapshot(
    ctx: Context, info: BackupInfo, journal_doc: dict[str, Any] | None
) -> bytes | None:
    """The .env a journaled run saved right after taking this backup, if it is this backup;
    else the backup's own copy of it."""
    data = (journal_doc or {}).get("data", {})
    snap = (data.get("snapshot") or {}).get("env")
    if data.get("backup") == info.name and snap and Path(snap).is_file():
        return Path(snap).read_bytes()
    return kept_file(info, ctx.env_path.name)


def kept_file(info: BackupInfo, name: str) -> bytes | None:
    """The backup's own copy of the app's settings file ``name``, if it keeps one."""
    copy = (info.files or {}).get(name)
    path = info.path.with_name(copy) if copy else None
    return path.read_bytes() if path is not None and path.is_file() else None


def needed_key(ctx: Context, info: BackupInfo, env: EnvFile, *, file: bool) -> Secret:
    """The key the backup's data are under: the one its manifest names, else (a file) the one
    its values prove, else (no encrypted values, or a dump checked when loaded) the active key."""
    cands = keys.candidates(ctx, env)  # a .env that cannot be read is refused here
    if info.key_check or info.key_fingerprint:
        found = key_for(cands, info.key_check, info.key_fingerprint)
        if found is None:
            fp = info.key_fingerprint or (info.key_check or "")[:16]
            raise KeyProblem(
                f"backup {info.name} needs key {fp}, which this instance no longer knows",
                hint="put that key back in .env as COOLIFY_SECRET_KEY_OLD_<ms>=<key>, "
                "then run again",
                needed=fp,
            )
        return found
    if not file:  # a dump is read by loading it: its values are checked then
        active = ctx.profile.active_key(env)
        if active is None:
            raise KeyProblem(
                f"{ctx.env_path} names no active key", hint="restore the settings first"
            )
        return active.key
    conn = ctx.store().snapshot(info.path)
    try:
        verdict = verdicts.identify(ctx, conn, cands)
    except KeyProblem as err:
        raise KeyProblem(f"backup {info.name}: {err.message}", hint=err.hint) from err
    finally:
        conn.close()
    if verdict.key is not None and verdict.method != "no-data":
        return verdict.key
    active = ctx.profile.active_key(env)  # no encrypted values: any key will do
    if active is None:
        raise KeyProblem(f"{ctx.env_path} names no active key", hint="restore the .env first")
    return active.key
