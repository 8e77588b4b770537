"""SQLite files at the lowest level: connections, locks, transactions and the tool's own record.

Connections run in autocommit mode (``isolation_level=None``) and every change happens inside an
explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, so DDL and data roll back together (Python's default
mode lets DDL escape the transaction).

The tool keeps its record in the app's database, table ``_coolify_migrate`` (key/value): the
installed ``version`` and the ``key_check`` value of the key that encrypts the data. Living in the
database, both commit atomically with the step that changes them and travel inside every backup.
The app's ORM ignores tables it does not know. ``coolify_migrate.stores.sqlite`` builds the
Store interface on these functions (and re-exports them).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from coolify_migrate.core import faults
from coolify_migrate.core.errors import DatabaseBusy, DatabaseError
from coolify_migrate.core.store import META_TABLE


def connect(
    path: Path, *, readonly: bool = False, timeout: float | None = None, shared: bool = False
) -> sqlite3.Connection:
    """Open the database; another process's lock is waited for at most ``timeout`` seconds
    (``lock_wait()``), then refused naming the holder (``DatabaseBusy``). A ``shared``
    connection may be handed to another thread (one thread at a time)."""
    if not path.is_file():
        raise DatabaseError(f"no database at {path}")
    wait = lock_wait() if timeout is None else timeout
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}?mode=rw"
    try:
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, timeout=wait, check_same_thread=not shared
        )
        conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        if _is_busy(err):
            raise busy(path, wait) from err
        raise DatabaseError(f"cannot open {path} as SQLite: {err}") from err
    return conn


def _is_busy(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(err)


def busy(path: Path, wait: float) -> DatabaseBusy:
    who = holders(path)
    return DatabaseBusy(
        f"{path} is locked by another process"
        + (f" ({', '.join(who[:3])})" if who else "")
        + f"; waited {wait:g} s for it"
    )


LOCK_WAIT = 10.0  # seconds to wait for another process's lock before refusing
_LOCK_WAIT_ENV = "COOLIFY_MIGRATE_DB_LOCK_WAIT"  # tests shorten the wait
HEADER = b"SQLite format 3\x00"


def lock_wait() -> float:
    try:
        wait = float(os.environ.get(_LOCK_WAIT_ENV, LOCK_WAIT))
    except ValueError:
        return LOCK_WAIT
    return wait if 0 <= wait <= 600 else LOCK_WAIT


def holders(path: Path) -> list[str]:
    """``pid N (name)`` of every other process with the database (or its journal or WAL) open,
    as far as /proc shows them (another user's processes only to root)."""
    names = {str(path), *(f"{path}{s}" for s in ("-journal", "-wal", "-shm"))}
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            if any(os.readlink(fd) in names for fd in (entry / "fd").iterdir()):
                comm = (entry / "comm").read_text().strip()
                found.append(f"pid {entry.name} ({comm})")
    return found


def check_unlocked(path: Path, *, wait: float | None = None) -> None:
    """Refuse (``DatabaseBusy``) when another process holds a lock on the database that outlasts
    a bounded wait: a change or a file replaced under it would be lost or torn. Opening a file
    that is not SQLite is left to the checks that say so."""
    if not path.is_file():
        return
    wait = lock_wait() if wait is None else wait
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=wait)
    except sqlite3.Error:
        return
    try:
        conn.isolation_level = None
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as err:
        if _is_busy(err):
            raise busy(path, wait) from err
    except sqlite3.Error:
        return
    finally:
        conn.close()


def check_looks_like_sqlite(path: Path) -> None:
    """A database file the app wrote starts with SQLite's header; an empty or foreign file is
    refused before anything treats it as the instance."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(HEADER))
    except OSError as err:
        raise DatabaseError(f"cannot read {path}: {err.strerror}") from err
    if not head:
        raise DatabaseError(f"{path} is empty (0 bytes), not the app's database")
    if head != HEADER:
        raise DatabaseError(f"{path} is not an SQLite database")


@contextmanager
def transaction(
    conn: sqlite3.Connection, *, name: str | None = None
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (or a kill)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        if name:
            faults.checkpoint(f"{name}:before-commit")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if name:
        faults.checkpoint(f"{name}:committed")


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()
    return row is not None


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    if not table_exists(conn, META_TABLE):
        return {}
    return {k: v for k, v in conn.execute(f'SELECT key, value FROM "{META_TABLE}"')}


def write_meta(conn: sqlite3.Connection, **values: str) -> None:
    """Must be called inside a transaction: the record commits with the change it describes."""
    if not conn.in_transaction:
        raise RuntimeError("write_meta needs an open transaction")
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{META_TABLE}" (key TEXT PRIMARY KEY, value TEXT NOT NULL)'
    )
    for key, value in values.items():
        conn.execute(
            f'INSERT INTO "{META_TABLE}"(key, value) VALUES(?, ?) '
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def read_meta_file(path: Path) -> dict[str, str]:
    conn = connect(path, readonly=True)
    try:
        return read_meta(conn)
    finally:
        conn.close()


def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection to a file nobody writes (a backup, or a stopped app's database)."""
    uri = f"file:{quote(str(path))}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn
