"""The backup's snapshot keeps its lock while the pages are copied.

POSIX drops every lock a process holds on a file when it closes *any* descriptor of that file.
A header read through a short-lived ``open()`` after the snapshot's BEGIN used to drop SQLite's
SHARED lock, and a writer could then change pages during the copy. Here another process asks
for an EXCLUSIVE lock at the moment the copy starts: it must be refused.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.stores import sqlite_copy

PROBE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("ROLLBACK")
    print("got it")
except sqlite3.OperationalError as err:
    print("refused:", err)
"""


class _Probing:
    """A connection whose ``backup`` first asks another process for an EXCLUSIVE lock."""

    def __init__(self, conn: sqlite3.Connection, db: Path, seen: list[str]) -> None:
        self._conn, self._db, self._seen = conn, db, seen

    def backup(self, target: sqlite3.Connection, **kw: Any) -> None:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, str(self._db)], capture_output=True, text=True, check=True
        )
        self._seen.append(probe.stdout.strip())
        self._conn.backup(target, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_no_writer_gets_in_while_the_snapshot_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rollback-journal mode (what Prisma gives Coolify's prod.db): the SHARED lock on the file
    is what keeps writers out. (In WAL mode a writer may commit beside a reader by design; the
    snapshot is kept by the read mark in -shm instead.)"""
    db = tmp_path / "prod.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=delete")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('a')")
    conn.close()
    seen: list[str] = []
    real = sqlite_copy.db.connect
    monkeypatch.setattr(
        sqlite_copy.db, "connect", lambda path, **kw: _Probing(real(path, **kw), db, seen)
    )
    dest = tmp_path / "copy"
    dest.touch()
    sqlite_copy.snapshot_copy(db, dest)
    assert len(seen) == 1 and seen[0].startswith("refused"), seen
    check = sqlite3.connect(dest)
    assert check.execute("SELECT v FROM t").fetchall() == [("a",)]
    check.close()
