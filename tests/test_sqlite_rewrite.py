"""A roll on SQLite runs in a private copy of the database that replaces the file as its commit
(``stores/sqlite_rewrite``): no rollback journal, the file untouched until the rename, and the
change in place, under the journal, whenever replacing the file would not be as safe."""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from checks import assert_all_decrypt
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem
from coolify_migrate.secrets import keys, reencrypt
from coolify_migrate.stores import sqlite as db
from coolify_migrate.stores import sqlite_rewrite
from support import LeakGuard


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _journals(demo: DemoInstance, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(the file written, whether the database had a rollback journal) at every batch written."""
    seen: list[tuple[str, bool]] = []
    real = db.SQLiteConnection.replace

    def watched(self: db.SQLiteConnection, table: str, columns: list[str], rows: Any) -> int:
        journal = demo.db_path.with_name(demo.db_path.name + "-journal")
        seen.append((self.path.name if self.path else "?", journal.exists()))
        return real(self, table, columns, rows)

    monkeypatch.setattr(db.SQLiteConnection, "replace", watched)
    return seen


def _roll(ctx: Context, demo: DemoInstance, guard: LeakGuard, **kw: Any) -> Any:
    new = new_key()
    guard.register(new)
    conn = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
        reencrypt.reencrypt(ctx, conn, analysis, new, **kw)
        assert conn.read_meta()["key_check"] == new.check_value  # conn reads the new file
    finally:
        conn.close()
    return new


@pytest.mark.parametrize("workers", [1, 2])
def test_a_roll_replaces_the_file_and_writes_no_journal(
    ctx: Context,
    demo: DemoInstance,
    leak_guard: LeakGuard,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(reencrypt, "POOL_FROM_ROWS", 0)
    os.chmod(demo.db_path, 0o640)
    before = os.stat(demo.db_path)
    seen = _journals(demo, monkeypatch)
    new = _roll(ctx, demo, leak_guard, workers=workers)
    after = os.stat(demo.db_path)
    assert seen and all(name == ".prod.db.rewriting" and not j for name, j in seen), seen
    assert after.st_ino != before.st_ino  # the copy became the database
    assert (after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
    )
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == ["prod.db"]
    assert assert_all_decrypt(demo, new) == demo.value_count
    assert db.connect(demo.db_path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.connect(demo.db_path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_failed_roll_leaves_the_very_same_file(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute(
            'UPDATE "Certificate" SET "key" = ? WHERE rowid = (SELECT min(rowid) FROM "Certificate")',
            (
                reencrypt.keys.FieldCodecs(ctx.profile)
                .of("Certificate.key")
                .encrypt(new_key(), "-----BEGIN EC PRIVATE KEY----- lost"),
            ),
        )
    conn.close()
    before, digest = os.stat(demo.db_path), file_sha256(demo.db_path)
    with pytest.raises(KeyProblem):
        _roll(ctx, demo, leak_guard, workers=1)
    assert os.stat(demo.db_path).st_ino == before.st_ino
    assert file_sha256(demo.db_path) == digest
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == ["prod.db"]


def test_a_full_disk_while_copying_changes_nothing(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sqlite_rewrite.os, "copy_file_range", full)
    digest = file_sha256(demo.db_path)
    with pytest.raises(ChangeFailed, match="the disk is full") as caught:
        _roll(ctx, demo, leak_guard, workers=1)
    assert caught.value.hint and "disk space" in caught.value.hint
    assert file_sha256(demo.db_path) == digest
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == ["prod.db"]


def test_a_copy_a_kill_left_is_replaced_and_a_link_there_never_written_through(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    demo.db_path.with_name(".prod.db.rewriting").symlink_to(victim)
    new = _roll(ctx, demo, leak_guard, workers=1)
    assert victim.read_text() == "untouched"
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == ["prod.db"]
    assert assert_all_decrypt(demo, new) == demo.value_count


def _in_place(
    ctx: Context, demo: DemoInstance, guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roll ran in the database file itself, under its journal, and did its work."""
    before = os.stat(demo.db_path).st_ino
    seen = _journals(demo, monkeypatch)
    new = _roll(ctx, demo, guard, workers=1)
    assert os.stat(demo.db_path).st_ino == before
    assert all(name == "prod.db" for name, _ in seen) and any(j for _, j in seen), seen
    assert assert_all_decrypt(demo, new) == demo.value_count


def test_another_process_holding_the_file_keeps_the_change_in_place(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "import sys; f = open(sys.argv[1], 'rb'); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(demo.db_path)],
        stdin=subprocess.PIPE,
    )
    try:
        for _ in range(500):  # until it has the file open
            if db.holders(demo.db_path) or holder.poll() is not None:
                break
            time.sleep(0.01)
        conn = ctx.store().connect()
        try:
            assert "other processes have it open" in (sqlite_rewrite.why_in_place(conn) or "")
        finally:
            conn.close()
        _in_place(ctx, demo, leak_guard, monkeypatch)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_hard_link_keeps_the_change_in_place(
    ctx: Context,
    demo: DemoInstance,
    leak_guard: LeakGuard,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    os.link(demo.db_path, tmp_path / "elsewhere.db")
    _in_place(ctx, demo, leak_guard, monkeypatch)
    assert os.stat(tmp_path / "elsewhere.db").st_ino == os.stat(demo.db_path).st_ino


def test_wal_mode_keeps_the_change_in_place(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    conn = sqlite3.connect(demo.db_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    mine = ctx.store().connect()
    try:
        assert sqlite_rewrite.why_in_place(mine) == "the database is in WAL mode"
    finally:
        mine.close()
    before = os.stat(demo.db_path).st_ino
    new = _roll(ctx, demo, leak_guard, workers=1)
    assert os.stat(demo.db_path).st_ino == before
    assert assert_all_decrypt(demo, new) == demo.value_count


def test_another_connection_of_this_process_keeps_the_change_in_place(
    ctx: Context, demo: DemoInstance
) -> None:
    other = ctx.store().connect(readonly=True)
    mine = ctx.store().connect()
    try:
        assert "another connection" in (sqlite_rewrite.why_in_place(mine) or "")
    finally:
        mine.close()
        other.close()
    mine = ctx.store().connect()
    try:
        assert sqlite_rewrite.why_in_place(mine) is None
    finally:
        mine.close()
