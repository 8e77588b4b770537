"""Which backups ``backup prune`` may delete, and deleting them.

Keep the ``keep`` newest; of the rest, never delete (unless ``force``):

- a pinned backup (the key roll pins its pre-roll backup);
- the newest ``pre-upgrade`` backup: the way back from the last upgrade;
- the only backup left under a key that is not the active one: it is the only way back to data
  encrypted under that key;
- a backup whose key could not be identified (it may be the only copy under a lost key).

Nothing is pruned while a run is interrupted (its backup is its way back), ``--force`` or not.

Backups Coolify made itself and the docs' manual copies are treated like manual backups: the same
rules apply, so they are pruned oldest first like any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coolify_migrate.backups import (
    BackupInfo,
    backup_dir,
    check_writable,
    db_name,
    list_backups,
    load_env_quietly,
)
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.core import durable, faults
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import Refused, UsageError
from coolify_migrate.state import journal, made
from coolify_migrate.stores import names


def protected(ctx: Context, backups: list[BackupInfo], doomed: list[BackupInfo]) -> dict[str, str]:
    """name -> why it must stay: pinned, newest pre-upgrade, last way back to a key, key unknown."""
    env = load_env_quietly(ctx)
    active = ctx.profile.active_key(env) if env is not None else None
    active_fp = active.key.fingerprint if active is not None else None
    keep_names = {b.name for b in backups} - {b.name for b in doomed}
    why: dict[str, str] = {}
    pre_upgrade = [b for b in backups if b.reason == "pre-upgrade"]
    for b in doomed:
        if b.pinned:
            why[b.name] = "pinned"
        elif pre_upgrade and b.name == pre_upgrade[0].name:
            why[b.name] = "the newest pre-upgrade backup"
        elif b.key_fingerprint is None and b.key_known is False:
            why[b.name] = "its key is not identified"
    for b in doomed:  # newest first: the first one met for a key is the one kept
        fp = b.key_fingerprint
        if b.name in why or fp is None or fp == active_fp:
            continue
        if not any(
            o.key_fingerprint == fp for o in backups if o.name in keep_names or o.name in why
        ):
            why[b.name] = f"the only backup under key {fp} (not the active key)"
    return why


def prune(
    ctx: Context, *, keep: int, force: bool, confirm: Callable[[list[BackupInfo]], bool]
) -> dict[str, Any]:
    """Delete all but the ``keep`` newest backups, minus the protected ones (unless ``force``)."""
    if keep < 0:
        raise UsageError("--keep must be 0 or more")
    running = journal.current(ctx)
    if running is not None:  # its backup is its way back: even --force must not take it
        raise Refused(
            f"an interrupted {running.get('kind', 'unknown')} run ({running.get('run_id', '?')}) "
            f"stopped at '{running.get('phase', '?')}': nothing is pruned until it is resolved",
            hint="run 'coolify-migrate resume' to finish it, or 'rollback --last' to revert it",
        )
    directory = backup_dir(ctx)
    backups = list_backups(ctx)
    doomed = backups[keep:]
    why = protected(ctx, backups, doomed)
    if not force:
        doomed = [b for b in doomed if b.name not in why]
    result: dict[str, Any] = {
        "kept": [b.name for b in backups if b.name not in {d.name for d in doomed}],
        "would_delete": [b.name for b in doomed],
        "protected": [{"name": n, "reason": r} for n, r in why.items()],
        "force": force,
        "deleted": [],
        "confirmed": None,
    }
    if doomed:
        check_writable(directory, "delete backups")
    if not doomed or not confirm(doomed):
        result["confirmed"] = False if doomed else None
        return result
    result["confirmed"] = True
    # the file first: a crash leaves an orphan manifest, never a copy without its manifest
    for b in doomed:
        b.path.unlink(missing_ok=True)
        b.path.with_name(names.manifest_name(b.name)).unlink(missing_ok=True)
        durable.fsync_dir(directory)
        faults.checkpoint("prune:deleted")
        result["deleted"].append(b.name)
    made.forget(ctx, result["deleted"])
    result["cleaned"] = clean_leftovers(directory, db_name(ctx))
    return result


def clean_leftovers(directory: Path, base: str) -> list[str]:
    """Partial copies left by crashed runs, and manifests whose backup is gone (under the lock)."""
    removed = backup_copy.remove_partials(directory, base)
    for path in directory.iterdir():
        n = path.name
        orphan = (
            n.endswith(names.MANIFEST_SUFFIX)
            and names.parse(base, n[: -len(names.MANIFEST_SUFFIX)]) is not None
            and not os.path.lexists(directory / n[: -len(names.MANIFEST_SUFFIX)])
        )
        if orphan and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(n)
    if removed:
        durable.fsync_dir(directory)
    return removed
