"""Put an instance back exactly as it was before an upgrade began.

Before its first change, the upgrade snapshots the ``.env`` bytes into the run's state folder and
takes the pre-upgrade backup. Reverting puts the database file back from that backup (byte for
byte: see ``coolify_migrate.backups``), writes the ``.env`` snapshot back, marks the key that was live
before as active in the keyring (keys are never dropped: a key the failed run created stays there,
retired), checks that every value decrypts, and puts the previous app version back in the runtime.
Every part is idempotent, so a revert interrupted by a crash is simply run again by ``resume``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coolify_migrate import instance
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable, faults, interrupts, private
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem
from coolify_migrate.engine import hooks
from coolify_migrate.secrets import host_key, verdicts
from coolify_migrate.secrets.keys import candidates
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import Keyring


def _run_dir(ctx: Context, doc: dict[str, Any]) -> Path:
    runs = private.ensure_dir(ctx.state_dir / "runs", ctx.out)
    path: Path = private.ensure_dir(runs / str(doc["run_id"]), ctx.out)
    return path


def snapshot(ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
    """Save the settings file's bytes, and the runtime's own files (a Compose file: the image
    tags live there), before any change; returns where they are."""
    saved = _run_dir(ctx, doc) / "env.before"
    durable.write_atomic(
        saved, ctx.env_path.read_bytes(), mode=0o600, checkpoint="upgrade:env-snapshot"
    )
    files: dict[str, str] = {}
    for i, path in enumerate(ctx.runtime().config_files()):
        copy = _run_dir(ctx, doc) / f"file-{i}.before"
        durable.write_atomic(copy, path.read_bytes(), mode=0o600)
        files[str(path)] = str(copy)
    return {"env": str(saved), "files": files}


def _put_files_back(snap: dict[str, Any]) -> None:
    for original, copy in (snap.get("files") or {}).items():
        if Path(copy).exists():
            durable.write_atomic(Path(original), Path(copy).read_bytes(), checkpoint="revert:file")


PLEASE_WAIT = "reverting: the instance is being put back as it was"


def revert(ctx: Context, doc: dict[str, Any], *, reason: str) -> dict[str, Any]:
    """SIGINT and SIGTERM wait for it (``core.interrupts.deferred``): a revert stopped half-way
    would only leave more for ``resume`` to do."""
    with interrupts.deferred(PLEASE_WAIT):
        return _revert(ctx, doc, reason=reason)


def _revert(ctx: Context, doc: dict[str, Any], *, reason: str) -> dict[str, Any]:
    ctx.proofs.forget()  # the data are put back: nothing this run proved of them holds now
    data = doc["data"]
    if doc["phase"] != "rolling-back":
        journal.advance(ctx, doc, "rolling-back", error=reason)
    runtime = ctx.runtime()
    runtime.stop()
    store = ctx.store()
    if data.get("backup_path"):
        store.restore(Path(data["backup_path"]))
        faults.checkpoint("revert:db")
    elif store.path is not None and store.exists() and "backup" in data.get("done", []):
        db_path = store.path
        failed = db_path.with_name(f"{db_path.name}.failed-{ctx.now_ms()}")
        os.replace(db_path, failed)  # a fresh install's database: kept aside, never deleted
        durable.fsync_dir(db_path.parent)
    snap = (data.get("snapshot") or {}).get("env")
    if snap and Path(snap).exists():
        durable.write_atomic(ctx.env_path, Path(snap).read_bytes(), checkpoint="revert:env")
    _put_files_back(data.get("snapshot") or {})
    env = instance.load_env(ctx)
    ring = Keyring(ctx)
    active = ctx.profile.active_key(env)
    if active is not None and ring.entries:
        ring.set_active(active.key, checkpoint="revert:keyring")
    if store.exists() and active is not None:
        _check_key(ctx, env, data.get("live_key"))
    if runtime.name != "none":  # the old app starts again: it must not re-roll anything
        for note in host_key.settle(ctx):
            ctx.out.info(note)
    runtime.rollback_to(data["from_version"])
    hooks.run(
        ctx,
        "on-failure",
        from_version=data["from_version"],
        to_version=data["to_version"],
        backup=data.get("backup_path"),
    )
    journal.finish(ctx, doc, f"rolled back: {reason}")
    ctx.out.info(f"rolled back to {data['from_version']} (backup {data.get('backup')})")
    return {
        "outcome": "rolled-back",
        "version": data["from_version"],
        "backup": data.get("backup"),
        "reason": reason,
    }


def _check_key(ctx: Context, env: EnvFile, before: str | None) -> None:
    """After the backup and the .env snapshot are back: the data's key, proven on a sample as
    before the upgrade, is the one the run recorded then. The database is the backup byte for
    byte, so no full read is needed (and values no key read before the upgrade, which a roll
    decided on a sample meets only in its pass, are not the revert's failure)."""
    conn = ctx.store().connect(readonly=True)
    try:
        found = verdicts.identify(ctx, conn, candidates(ctx, env))
    except KeyProblem as err:
        raise ChangeFailed(
            f"after putting the backup back, {err.message}",
            hint="the journal is kept: inspect with 'status', then 'rollback --to <backup>'",
        ) from err
    finally:
        conn.close()
    if before and found.key is not None and found.key.fingerprint != before:
        raise ChangeFailed(
            f"after putting the backup back, the data are under key {found.key.fingerprint}, "
            f"not {before} as before the upgrade",
            hint="the journal is kept: inspect with 'status', then 'rollback --to <backup>'",
        )
