"""The one-pass backup: the database file's bytes copied, hashed and checked together, only when
the file holds the snapshot on its own; the backup API otherwise.

What must hold on either path: the copy is one consistent snapshot holding every row committed
before it started, its SHA-256 is of its bytes, its check ran on those same bytes, and no writer
gets into the file while a rollback-journal database is copied.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coolify_migrate import backups
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import DatabaseError
from coolify_migrate.stores import hashed_copy, sqlite_copy
from coolify_migrate.stores import sqlite as db
from coolify_migrate.stores.sqlite import SQLiteStore
from support import REPO, add_table_of_rows

WRITER = REPO / "tests" / "wal_writer.py"

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


def _mode(path: Path, mode: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {mode}")
    conn.close()


def _fill(path: Path, mib: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, blob BLOB)")
    conn.execute("BEGIN")
    for _ in range(mib * 4):
        conn.execute("INSERT INTO filler(blob) VALUES (?)", (os.urandom(256 << 10),))
    conn.execute("COMMIT")
    conn.close()


def _sealed(source: Path, dest: Path) -> tuple[str, str] | None:
    dest.unlink(missing_ok=True)
    dest.touch()
    return sqlite_copy.copy_sealed(source, dest)


def test_a_rollback_journal_database_is_copied_in_one_pass_byte_for_byte(
    demo: DemoInstance, tmp_path: Path
) -> None:
    _mode(demo.db_path, "delete")
    _fill(demo.db_path, 3)
    seen: list[int] = []
    dest = tmp_path / "copy"
    dest.touch()
    sealed = sqlite_copy.copy_sealed(demo.db_path, dest, seen.append)
    assert sealed is not None, "the file holds the snapshot: one pass"
    assert dest.read_bytes() == demo.db_path.read_bytes()
    assert sealed == ("ok", hashlib.sha256(dest.read_bytes()).hexdigest())
    assert sum(seen) == dest.stat().st_size and len(seen) > 1


def test_backups_create_takes_the_one_pass_path_and_its_manifest_holds_the_checksum(
    demo: DemoInstance, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mode(demo.db_path, "delete")
    taken: list[bool] = []
    real = sqlite_copy.copy_sealed

    def counted(*a: object, **kw: object) -> tuple[str, str] | None:
        sealed = real(*a, **kw)  # type: ignore[arg-type]
        taken.append(sealed is not None)
        return sealed

    monkeypatch.setattr(sqlite_copy, "copy_sealed", counted)
    info = backups.create(ctx)
    assert taken == [True]
    assert info.path.read_bytes() == demo.db_path.read_bytes()
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    (result,) = backups.verify(ctx, info.name)
    assert result["ok"] and result["checksum"] == "match", result


def test_no_writer_gets_in_while_the_file_is_copied_in_one_pass(
    demo: DemoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-pass twin of test_snapshot_lock: at the moment the bytes are copied, another
    process asking for EXCLUSIVE must be refused (the snapshot's SHARED lock is still held)."""
    _mode(demo.db_path, "delete")
    seen: list[str] = []
    real = hashed_copy.copy_hashed

    def probing(*a: object, **kw: object) -> str:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, str(demo.db_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        seen.append(probe.stdout.strip())
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(hashed_copy, "copy_hashed", probing)
    assert _sealed(demo.db_path, tmp_path / "copy") is not None
    assert len(seen) == 1 and seen[0].startswith("refused"), seen


def test_a_wal_frame_the_file_cannot_take_yet_leaves_the_copy_to_the_backup_api(
    demo: DemoInstance, ctx: Context, tmp_path: Path
) -> None:
    """A reader holding an older snapshot keeps the checkpoint from writing newer frames into the
    file: the file is not the newest snapshot, so no one-pass copy; the backup still holds the
    last committed row."""
    _mode(demo.db_path, "wal")
    _fill(demo.db_path, 1)
    old = sqlite3.connect(demo.db_path, isolation_level=None)
    writer = sqlite3.connect(demo.db_path, isolation_level=None)
    try:
        old.execute("BEGIN")
        old.execute("SELECT count(*) FROM filler").fetchone()
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO filler(blob) VALUES (x'01')")
        last = writer.execute("SELECT max(id) FROM filler").fetchone()[0]
        assert _sealed(demo.db_path, tmp_path / "copy") is None
        assert (tmp_path / "copy").stat().st_size == 0, "nothing written before falling back"
        info = backups.create(ctx)
    finally:
        old.close()
        writer.close()
    snap = backup_copy.open_snapshot(info.path)
    try:
        assert snap.execute("SELECT max(id) FROM filler").fetchone()[0] == last
    finally:
        snap.close()
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()


def test_a_wal_database_with_every_frame_checkpointed_is_copied_in_one_pass(
    demo: DemoInstance, tmp_path: Path
) -> None:
    _mode(demo.db_path, "wal")
    conn = sqlite3.connect(demo.db_path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE late (v TEXT)")
    conn.execute("INSERT INTO late VALUES ('in the WAL only')")
    try:
        sealed = _sealed(demo.db_path, tmp_path / "copy")
    finally:
        conn.close()
    assert sealed is not None and sealed[0] == "ok"
    snap = backup_copy.open_snapshot(tmp_path / "copy")
    try:
        assert snap.execute("SELECT v FROM late").fetchall() == [("in the WAL only",)]
    finally:
        snap.close()


def test_one_pass_copies_taken_while_a_writer_commits_and_checkpoints_are_each_one_snapshot(
    demo: DemoInstance, tmp_path: Path
) -> None:
    _mode(demo.db_path, "wal")
    _fill(demo.db_path, 8)
    conn = sqlite3.connect(demo.db_path, isolation_level=None)
    conn.execute("CREATE TABLE writer_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("CREATE TABLE writer_total (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO writer_total VALUES (0)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(demo.db_path), "--checkpoint", "--rate", "100"]
    )
    copies: list[tuple[Path, int]] = []
    try:
        deadline = time.monotonic() + 20
        while _committed(demo.db_path) < 20:
            assert writer.poll() is None and time.monotonic() < deadline, "no writer"
            time.sleep(0.05)
        for i in range(12):
            before = _committed(demo.db_path)
            dest = tmp_path / f"copy-{i}.db"
            sealed = _sealed(demo.db_path, dest)
            if sealed is not None:
                assert sealed == ("ok", hashlib.sha256(dest.read_bytes()).hexdigest())
                copies.append((dest, before))
    finally:
        writer.kill()
        writer.wait()
    assert copies, "no copy took the one-pass path while the writer ran"
    for dest, before in copies:
        snap = backup_copy.open_snapshot(dest)
        try:
            count, top = snap.execute("SELECT count(*), max(id) FROM writer_rows").fetchone()
            total = snap.execute("SELECT n FROM writer_total").fetchone()[0]
        finally:
            snap.close()
        assert top >= before, "a copy misses rows committed before it started"
        assert count == top == total, "a copy is not one consistent snapshot"
        assert sqlite_copy.integrity(dest, full=True) == "ok"


def test_a_damaged_page_fails_the_one_pass_check_and_no_backup_is_kept(
    demo: DemoInstance, ctx: Context
) -> None:
    _mode(demo.db_path, "delete")
    root, page_size = add_table_of_rows(demo.db_path)
    with open(demo.db_path, "r+b") as fh:  # the table's root (an interior page): garbage cells
        fh.seek((root - 1) * page_size + 12)
        fh.write(b"\xff" * 64)
    dest = demo.db_path.with_name("copy")
    sealed = _sealed(demo.db_path, dest)
    assert sealed is not None and sealed[0] != "ok", sealed
    before = sorted(p.name for p in demo.db_path.parent.iterdir())
    with pytest.raises(DatabaseError, match="integrity check"):
        backups.create(ctx)
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == before


def test_hashed_copy_hashes_exactly_what_it_writes_and_refuses_a_short_source(
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * hashed_copy.CHUNK + 12345)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert hashed_copy.copy_hashed(src, out, len(data)) == hashlib.sha256(data).hexdigest()
        with pytest.raises(EOFError):
            hashed_copy.copy_hashed(src, out, len(data) + 1)
    finally:
        os.close(src)
        os.close(out)
    assert (tmp_path / "out").read_bytes()[: len(data)] == data


def test_the_store_falls_back_to_the_backup_api_and_still_seals(
    demo: DemoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_copy, "copy_sealed", lambda *a, **kw: None)
    dest = tmp_path / "copy"
    dest.touch()
    dumped = SQLiteStore(demo.db_path).backup(dest)
    assert dumped.integrity == "ok"
    assert dumped.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()


def _committed(db_path: Path) -> int:
    conn = db.connect(db_path)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM writer_rows").fetchone()[0])
    finally:
        conn.close()
