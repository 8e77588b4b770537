"""SQLite access: explicit transactions, read-only opens, and the tool's own record table.

Connections run in autocommit mode (``isolation_level=None``) and every change happens inside an
explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, so DDL and data roll back together (Python's default
mode lets DDL escape the transaction).

The tool keeps its record in the app's database, table ``_coolify_migrate`` (key/value): the
installed ``version`` and the ``key_check`` value of the key that encrypts the data. Living in the
database, both commit atomically with the step that changes them and travel inside every backup.
The app's ORM ignores tables it does not know.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from coolify_migrate.core import faults
from coolify_migrate.core.errors import DatabaseError

META_TABLE = "_coolify_migrate"


def connect(path: Path, *, readonly: bool = False, timeout: float = 30.0) -> sqlite3.Connection:
    if not path.is_file():
        raise DatabaseError(f"no database at {path}")
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        raise DatabaseError(f"cannot open {path} as SQLite: {err}") from err
    return conn


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
