"""A change that rewrites most of the database, made in a private copy that replaces the file as
its commit (a key roll: ``Connection.rewriting``).

SQLite's rollback journal keeps the original of every page a transaction changes, so a change
that touches most of the file writes it twice (once into the journal, once in place) and syncs
the journal each time its page cache spills. A private copy is its own undo instead: it is made
while this process holds the database's write lock (nobody can change the file meanwhile),
changed with no journal and no sync, synced once, and renamed over the database: the rename is
the commit. Until it, the database file is untouched whatever happens (an error, a kill, a power
cut); after it, the file is whole and synced. The copy, ``.<db>.rewriting`` beside the database,
is removed on any failure, and by the next rewrite when a kill left it.

Replacing the file is as safe as changing it in place only when nothing else holds the old one,
so the copy is used when all of these hold, and the change runs in place under the journal
otherwise (``why_in_place`` says which did not):

- no other process has the database open, and this one only through the changing connection
  (a holder would go on reading, or writing, the old file);
- the database is not in WAL mode (its ``-wal`` holds committed pages a copy of the file misses);
- the file is a plain file with one name (not a symbolic link, no hard link elsewhere);
- the directory is writable, and the copy can keep the file's owner and mode (root, or the
  owner itself with a file no one else may open).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from coolify_migrate.core import durable, faults
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.stores.sqlite import SQLiteConnection, changing
from coolify_migrate.stores.sqlite_file import connect, holders


def why_in_place(conn: SQLiteConnection) -> str | None:
    """Why this connection's database must be changed in place; None when a copy may replace it."""
    path = conn.path
    if path is None:
        return "the connection does not know its file"
    try:
        st = os.lstat(path)
    except OSError as err:
        return f"cannot stat the database: {err.strerror}"
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return "the database is a link, or has another name"
    mode = str(conn.raw.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode == "wal" or path.with_name(path.name + "-wal").exists():
        return "the database is in WAL mode"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return "its directory is not writable"
    root = os.geteuid() == 0
    if not root and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
        return "the copy could not keep the file's owner, or others may hold the file unseen"
    if _opened_here(path) != 1:
        return "this process holds the database through another connection"
    children = {p.pid for p in multiprocessing.active_children()}
    others = [h for h in holders(path) if int(h.split()[1]) not in children]
    if others:
        return f"other processes have it open ({', '.join(others[:3])})"
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


@contextmanager
def rewriting(conn: SQLiteConnection) -> Iterator[SQLiteConnection]:
    """A connection to a private copy of the database whose ``transaction`` commits by replacing
    the file; ``conn`` itself (a change in place) when ``why_in_place`` says so. Afterwards
    ``conn`` reads the file as it is then (reopened when the copy replaced it)."""
    if why_in_place(conn) is not None:
        yield conn
        return
    path = conn.path
    assert path is not None
    copy: _Copy | None = None
    tmp = path.with_name(f".{path.name}.rewriting")
    conn.raw.execute("BEGIN IMMEDIATE")  # the write lock: the file stays as copied until the end
    try:
        _copy_file(path, tmp)
        copy = _Copy(sqlite3.connect(tmp, isolation_level=None), path, tmp)
        copy.raw.execute("PRAGMA journal_mode = OFF")  # the database file itself is the undo
        copy.raw.execute("PRAGMA synchronous = OFF")  # one fsync before the rename instead
        yield copy
    finally:
        if copy is not None:
            copy.raw.close()
        tmp.unlink(missing_ok=True)  # gone already when it became the database
        with suppress(sqlite3.Error):
            conn.raw.execute("ROLLBACK")
        if copy is not None and copy.committed:  # conn still reads the old file: reopen it
            conn.raw.close()
            conn.raw = connect(path)


def _copy_file(src: Path, dst: Path) -> None:
    """``src`` byte for byte into a new ``dst`` (a link planted there is removed, never written
    through), with its owner (when root) and mode. A full disk: ``ChangeFailed``."""
    st = os.stat(src)
    dst.unlink(missing_ok=True)
    try:
        fd = os.open(
            dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            with open(src, "rb") as source:
                _copy_range(source.fileno(), fd)
        finally:
            os.close(fd)
    except OSError as err:
        dst.unlink(missing_ok=True)
        full = err.errno == errno.ENOSPC
        raise ChangeFailed(
            f"the database could not be copied to change it: "
            f"{'the disk is full' if full else err.strerror}; nothing was changed",
            hint="free some disk space (the change needs the database's size once more)"
            if full
            else None,
        ) from err


def _copy_range(src: int, dst: int) -> None:
    """In the kernel (``copy_file_range``: no copy through this process; a reflink on file
    systems that share extents); read and write where it is not available."""
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while chunk := os.read(src, 4 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


class _Copy(SQLiteConnection):
    """The private copy: its transaction's commit is the rename over the database."""

    def __init__(self, raw: sqlite3.Connection, target: Path, tmp: Path) -> None:
        super().__init__(raw, path=tmp)
        self.target, self.committed = target, False

    @contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        assert self.path is not None
        with changing():
            self.raw.execute("BEGIN IMMEDIATE")
            yield  # on an error no ROLLBACK (undefined without a journal): the copy is dropped
            if name:
                faults.checkpoint(f"{name}:before-commit")
            self.raw.execute("COMMIT")
            try:
                durable.fsync_file(self.path)
                os.replace(self.path, self.target)
            except OSError as err:
                raise ChangeFailed(
                    f"the changed copy could not replace the database ({err.strerror}); "
                    "nothing was changed"
                ) from err
            self.committed = True
            durable.fsync_dir(self.target.parent)
        if name:
            faults.checkpoint(f"{name}:committed")
