"""A key roll's one transaction made in the backup this process has just sealed, which then
trades names with the database: the exchange is the commit.

SQLite's rollback journal keeps the original of every page a transaction changes, so a roll
(which changes most pages) writes the database twice and syncs the journal whenever its page
cache spills. The pre-upgrade backup is already a second copy of those very bytes. So when this
process has just sealed that copy and the database is provably unchanged since, the roll runs
*in the copy*, with no journal and no sync; the copy is synced once, and the two files trade
names in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``): the database's name then holds
the rolled file, the backup's name the untouched original.

Until the exchange the database file is never written: an error, a kill or a power cut leave it
as it was (the app can start on it). Only the copy is written, and the copy is then no backup:
a marker beside the database (``.<db>.lent``, written durably before the copy is opened) says
so, and ``settle`` puts the copy back from the database, proving the bytes by the backup's
SHA-256, before anything may use it (``SQLiteStore.restore``, and every connection that may
write). After the exchange, ``settle`` only gives the backup its own mode back.

The database is provably unchanged since the copy when, under the roll's write lock, its inode,
size, modification and change times are the ones seen right after the copy was sealed, its
100-byte header (with SQLite's change counter, which every commit in rollback-journal mode
bumps: SQLite's own test of whether its page cache is still valid) is the copy's, and its last
write is older than the copy's. Otherwise, and whenever the exchange could be less safe than
the change in place (``why_in_place``), the roll runs in place under the journal.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coolify_migrate.core import durable, faults
from coolify_migrate.core.errors import DatabaseError
from coolify_migrate.stores import hashed_copy, sqlite_copy
from coolify_migrate.stores.sqlite import SQLiteConnection, changing
from coolify_migrate.stores.sqlite_file import connect, holders

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_HEADER = 100


@dataclass(frozen=True)
class _Sealed:
    """A backup copy as this process sealed it, and its database as it was then."""

    backup: Path
    sha256: str
    db: tuple[int, ...]
    copy: tuple[int, ...]


_sealed: dict[str, _Sealed] = {}  # real path of a database -> the copy of it sealed last here


def _ident(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(_HEADER)


def sealed(db: Path, backup: Path, sha256: str) -> None:
    """``backup`` was just sealed as an exact copy of ``db`` whose bytes hash to ``sha256``
    (``backups.create``, once its manifest is written): a roll may make its change in it."""
    key = os.path.realpath(db)
    _sealed.pop(key, None)
    with suppress(OSError):
        d, c = os.stat(db), os.stat(backup)
        if d.st_mtime_ns < c.st_mtime_ns and _header(db) == _header(backup):
            _sealed[key] = _Sealed(backup, sha256, _ident(d), _ident(c))


def _marker(db: Path) -> Path:
    return db.with_name(f".{db.name}.lent")


def why_in_place(conn: SQLiteConnection, copy: _Sealed) -> str | None:
    """Why the change must be made in place; None when the copy may be changed and exchanged.
    Called under the database's write lock (``BEGIN IMMEDIATE``)."""
    path = conn.path
    assert path is not None
    try:
        d, c = os.lstat(path), os.lstat(copy.backup)
    except OSError as err:
        return f"cannot look at the files: {err.strerror}"
    if not (stat.S_ISREG(d.st_mode) and stat.S_ISREG(c.st_mode)):
        return "the database or its copy is not a plain file"
    if copy.backup.parent != path.parent or d.st_dev != c.st_dev:
        return "the copy is not beside the database"
    if d.st_nlink != 1 or c.st_nlink != 1:
        return "the database or its copy has another name"
    if _ident(d) != copy.db or _ident(c) != copy.copy or _header(path) != _header(copy.backup):
        return "the database or its copy changed since the copy was sealed"
    mode = str(conn.raw.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode == "wal" or any(path.with_name(path.name + s).exists() for s in ("-wal", "-journal")):
        return "the database has a WAL or a journal"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return "its directory is not writable"
    if os.geteuid() != 0 and (d.st_uid, d.st_gid) != (c.st_uid, c.st_gid):
        return "the copy could not take the database's owner"
    if _opened_here(path) != 1:
        return "this process holds the database through another connection"
    import multiprocessing  # here: only a roll that may borrow pays for the import

    children = {p.pid for p in multiprocessing.active_children()}
    others = [
        h
        for h in (*holders(path.resolve()), *holders(copy.backup.resolve()))
        if int(h.split()[1]) not in children
    ]
    if others:
        return f"other processes have it open ({', '.join(others[:3])})"
    if not _exchange_works(path.parent):
        return "the file system cannot exchange two names"
    return None


def _opened_here(path: Path) -> int:
    """How many of this process's descriptors are open on the database (-1: unknown)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return -1
    target = os.path.realpath(path)
    found = 0
    for fd in fds.iterdir():
        with suppress(OSError):
            found += os.readlink(fd) == target
    return found


def _exchange(a: Path, b: Path) -> None:
    import ctypes  # here: every command that may write settles first, few ever exchange

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _exchange_works(directory: Path) -> bool:
    a, b = (directory / f".exchange-probe-{os.getpid()}-{n}" for n in "ab")
    try:
        a.write_bytes(b"a")
        b.write_bytes(b"b")
        _exchange(a, b)
        return a.read_bytes() == b"b"
    except OSError:
        return False
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)


@contextmanager
def lend(
    conn: SQLiteConnection, in_place: Callable[[str], None] | None = None
) -> Iterator[SQLiteConnection]:
    """A connection to the copy this process sealed last of ``conn``'s database, whose
    ``transaction`` commits by exchanging it with the database; ``conn`` itself (the change in
    place) when there is no such copy or ``why_in_place`` says so (``in_place`` is told why).
    Afterwards ``conn`` reads the database as it is then. Each sealed copy is lent once."""
    path = conn.path
    copy = _sealed.pop(os.path.realpath(path), None) if path is not None else None
    if copy is None or path is None:
        yield conn
        return
    with changing():  # the write lock: the database stays as copied (busy: ``ChangeFailed``)
        conn.raw.execute("BEGIN IMMEDIATE")
    try:
        why = why_in_place(conn, copy)
    except BaseException:
        conn.raw.execute("ROLLBACK")
        raise
    if why is not None:
        conn.raw.execute("ROLLBACK")
        if in_place is not None:
            in_place(why)
        yield conn
        return
    loan: _Loan | None = None
    held: int | None = None  # the marker, locked while the loan lasts (``settle`` waits for it)
    try:
        c = os.stat(copy.backup)
        held = _mark(
            path,
            {
                "backup": copy.backup.name,
                "sha256": copy.sha256,
                "db_ino": copy.db[1],
                "copy_ino": c.st_ino,
                "copy_mode": stat.S_IMODE(c.st_mode),
                "copy_owner": [c.st_uid, c.st_gid],
            },
        )
        raw = sqlite3.connect(copy.backup, isolation_level=None)
        loan = _Loan(raw, copy.backup, path, os.stat(path))
        raw.execute("PRAGMA journal_mode = OFF")  # the database file itself is the undo
        raw.execute("PRAGMA synchronous = OFF")  # one fsync before the exchange instead
        yield loan
    finally:
        if loan is not None:
            loan.raw.close()
        with suppress(sqlite3.Error):
            conn.raw.execute("ROLLBACK")
        if loan is not None and loan.committed:
            conn.raw.close()  # it held the file that is now the backup
            conn.raw = connect(path)
        elif held is not None:
            with suppress(OSError, DatabaseError):  # else ``settle`` does it before any use
                _settle(path)
        if held is not None:
            os.close(held)


def _mark(db: Path, doc: dict[str, Any]) -> int:
    """The marker, written durably and locked before its name appears (no ``settle`` ever sees
    it unlocked while its roll runs); the locked descriptor."""
    marker = _marker(db)
    tmp = marker.with_name(f"{marker.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(doc, sort_keys=True).encode())
        os.fsync(fd)
        faults.checkpoint("roll:lend")
        os.rename(tmp, marker)
        durable.fsync_dir(db.parent)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd


class _Loan(SQLiteConnection):
    """The lent copy: its transaction's commit is the exchange with the database."""

    def __init__(self, raw: sqlite3.Connection, copy: Path, db: Path, db_st: os.stat_result):
        super().__init__(raw, path=copy)
        self.db, self.db_st, self.committed = db, db_st, False

    @contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        assert self.path is not None
        with changing():
            self.raw.execute("BEGIN IMMEDIATE")
            yield  # on an error no ROLLBACK (undefined with no journal): the copy is put back
            if name:
                faults.checkpoint(f"{name}:before-commit")
            self.raw.execute("COMMIT")
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
                os.fchmod(fd, stat.S_IMODE(self.db_st.st_mode))
                if os.geteuid() == 0:
                    os.fchown(fd, self.db_st.st_uid, self.db_st.st_gid)
            finally:
                os.close(fd)
            if name:
                faults.checkpoint(f"{name}:copy-synced")
            _exchange(self.path, self.db)
            self.committed = True
            if name:
                faults.checkpoint(f"{name}:exchanged")
            with suppress(OSError):  # ``settle`` finishes what fails here
                durable.fsync_dir(self.db.parent)
                _settle(self.db)
        if name:
            faults.checkpoint(f"{name}:committed")


def settle(db: Path) -> None:
    """Finish what a lent copy left (``lend``): the backup's own mode after an exchange, or,
    without one, the copy put back from the database, which must hash to the backup's
    SHA-256 (else ``DatabaseError``: the database changed since, and the backup is lost).
    Nothing while the roll that lent it still runs (it holds the marker locked)."""
    marker = _marker(db)
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    try:
        _settle(db)
    finally:
        os.close(fd)


def _settle(db: Path) -> None:
    marker = _marker(db)
    if not os.path.lexists(marker):
        return
    doc: dict[str, Any] = durable.read_json(marker)
    backup = db.with_name(str(doc["backup"]))
    backup_ino = _ino(backup)
    if backup_ino == doc["db_ino"]:  # exchanged: the backup's name holds the original
        os.chmod(backup, int(doc["copy_mode"]))
        if os.geteuid() == 0:
            os.chown(backup, *doc["copy_owner"])
    elif (backup_ino == doc["copy_ino"] and _ino(db) == doc["db_ino"]) or not _whole(backup, doc):
        _put_back(db, backup, doc)  # (the files were copied elsewhere: their bytes decide)
    marker.unlink()
    durable.fsync_dir(db.parent)


def on_loan(backup: Path) -> bool:
    """Whether ``backup`` is the copy a stopped key roll left lent (``settle`` puts it back)."""
    marker = _marker(backup.with_name(backup.name.rsplit("_", 1)[0]))
    try:
        doc = durable.read_json(marker)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("backup") == backup.name


def _ino(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _whole(backup: Path, doc: dict[str, Any]) -> bool:
    """Whether ``backup`` holds the bytes the backup was sealed with."""
    try:
        return bool(sqlite_copy.sha256_file(backup) == doc["sha256"])
    except FileNotFoundError:
        return False


def _put_back(db: Path, backup: Path, doc: dict[str, Any]) -> None:
    tmp = backup.with_name(f".{backup.name}.putback")
    tmp.unlink(missing_ok=True)
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        src = os.open(db, os.O_RDONLY | os.O_CLOEXEC)
        try:
            digest = hashed_copy.copy_hashed(src, out, os.fstat(src).st_size)
        finally:
            os.close(src)
        if digest != doc["sha256"]:
            raise DatabaseError(
                f"{backup.name} was lent to a key roll that did not finish, and {db.name} "
                "changed since: that backup cannot be made again",
                hint="the database is as the app left it; take a new backup "
                "('coolify-migrate backup create')",
            )
        os.fchmod(out, int(doc["copy_mode"]))
        if os.geteuid() == 0:
            os.fchown(out, *doc["copy_owner"])
        os.fsync(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(out)
    os.replace(tmp, backup)
