"""What ``upgrade`` checks before it stops the app or writes anything (issue 14): each check
refuses with exit 3 and a one-line reason, so a run that cannot finish never starts.

- the database looks like the app's (SQLite header, the app's tables) and no other process holds
  it locked (``Store.check_ready`` where the store has one);
- the database file and its directory can be written (not immutable, not on a read-only mount):
  SQLite creates its rollback journal beside the file;
- the data key can be written back to ``.env`` in a form every reader of the file agrees on (a
  roll keeps it as ``..._OLD_<ms>``, and the new app's key lines are rewritten);
- there is room for the pre-upgrade backup **and** for SQLite's rollback journal of a roll, which
  may hold every page of the database while the roll commits.
"""

from __future__ import annotations

import fcntl
import os
import struct
from contextlib import suppress
from pathlib import Path

from coolify_migrate import backups
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import DiskFull, StorageProblem
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Store
from coolify_migrate.secrets import verdicts

_FS_IOC_GETFLAGS = 0x80086601
_FS_IMMUTABLE_FL = 0x10
_APPEND_FL = 0x20


def check_database(ctx: Context, store: Store) -> None:
    """The database is the app's, free, and writable: before its key is even looked for."""
    ready = getattr(store, "check_ready", None)  # SQLite's; a server checks its own
    if ready is not None:
        ready(ctx.profile.encrypted_columns)
    path = getattr(store, "path", None)
    if isinstance(path, Path):
        check_writable(path)


def check_change(ctx: Context, store: Store, live_key: Secret | None, source: str | None) -> None:
    """With the data key known: it can be written back, and there is room for the change."""
    if live_key is not None:
        verdicts.check_key_writable(live_key, source or "the data key")
    check_room(ctx, store, journal=isinstance(getattr(store, "path", None), Path))


def _attr_flags(path: Path) -> int:
    flags = 0
    with suppress(OSError), open(path, "rb") as fh:
        buf = fcntl.ioctl(fh.fileno(), _FS_IOC_GETFLAGS, struct.pack("l", 0))
        flags = struct.unpack("l", buf)[0]
    return flags


def check_writable(db: Path) -> None:
    """The database file and its folder can be written (root passes permission bits, so the
    attribute and the mount are asked too)."""
    for target in (db, db.parent):
        if os.access(target, os.W_OK):
            continue
        try:
            read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        flags = _attr_flags(target)
        if read_only:
            why, hint = "on a read-only file system", "remount it read-write"
        elif flags & (_FS_IMMUTABLE_FL | _APPEND_FL):
            why, hint = "immutable (chattr +i or +a)", "clear the attribute with 'chattr -i -a'"
        else:
            why, hint = "not writable by this user", "run as the user that owns the database"
        raise StorageProblem(f"{target} is {why}; nothing was changed", hint=hint)


def check_room(ctx: Context, store: Store, *, journal: bool) -> None:
    """Room for the pre-upgrade backup, plus (SQLite) the rollback journal a roll writes beside
    the database: up to the database's size again while the roll commits."""
    where = backups.backup_dir(ctx)
    backup = backups.space_needed(store)
    rollback_journal = store.size() if journal else 0
    free = backups.free_bytes(where)
    if free < backup + rollback_journal:
        raise DiskFull(
            f"{free >> 20} MiB free next to the database, the pre-upgrade backup needs "
            f"{backup >> 20} MiB"
            + (
                f" and SQLite's rollback journal up to {rollback_journal >> 20} MiB"
                if journal
                else ""
            )
        )
    backups.check_writable(where, "write the pre-upgrade backup")
