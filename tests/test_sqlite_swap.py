"""A key roll made in the backup just taken, then exchanged with the database
(``coolify_migrate.stores.sqlite_swap``): the database is never written before the exchange,
and the backup always ends up as the untouched original, whatever stops the roll."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checks import active_key, assert_all_decrypt
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.backups import making
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import DatabaseError, KeyProblem
from coolify_migrate.core.output import Recording
from coolify_migrate.engine import keyops
from coolify_migrate.secrets import keys, reencrypt
from coolify_migrate.stores import sqlite_swap
from support import SRC, CliRunner, LeakGuard, make_demo


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _age(db: Path) -> None:
    """The database last written a minute ago, as a stopped app leaves it (a copy made in the
    same clock tick as the last write is never lent: its order cannot be told)."""
    then = time.time() - 60
    os.utime(db, (then, then))


def _backups(db: Path) -> list[Path]:
    return sorted(p for p in db.parent.glob(f"{db.name}_*") if not p.name.endswith(".json"))


def _manifest_sha(backup: Path) -> str:
    doc = json.loads(backup.with_name(backup.name + ".json").read_text())
    return str(doc["sha256"])


def _marker(db: Path) -> Path:
    return db.with_name(f".{db.name}.lent")


def test_a_roll_after_its_backup_is_made_in_the_copy_and_exchanged(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    db = demo.db_path
    os.chmod(db, 0o640)
    _age(db)
    before, st = _sha(db), os.stat(db)
    ctx.out = out = Recording()
    keyops.roll_key(ctx)
    leak_guard.register(active_key(demo.data_dir))
    (backup,) = _backups(db)
    # the backup's name now holds the very file the database was, untouched, private again
    assert os.stat(backup).st_ino == st.st_ino
    assert _sha(backup) == before == _manifest_sha(backup)
    assert os.stat(backup).st_mode & 0o777 == 0o600
    # the database's name holds the rolled copy, with the database's own mode
    assert os.stat(db).st_ino != st.st_ino and os.stat(db).st_mode & 0o777 == 0o640
    assert_all_decrypt(demo, active_key(demo.data_dir), db)
    assert not _marker(db).exists()
    assert not list(db.parent.glob(".exchange-probe-*"))
    assert not [line for line in out.lines if "in place" in line]


def test_a_database_written_after_its_backup_is_rolled_in_place(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    db = demo.db_path
    _age(db)
    making.create(ctx, reason="manual")
    (backup,) = _backups(db)
    conn = sqlite3.connect(db)
    with conn:  # any commit: SQLite's change counter moves, and so does the file's time
        conn.execute('UPDATE "DockerRegistry" SET "username" = "username" || \'x\'')
    conn.close()
    ino = os.stat(db).st_ino
    new = new_key()
    leak_guard.register(new)
    ctx.out = out = Recording()
    store = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, store, [KeyCandidate("demo", demo.key)], full=True)
        reencrypt.reencrypt(ctx, store, analysis, new)
    finally:
        store.close()
    assert os.stat(db).st_ino == ino  # changed in place, under the journal, and said why
    assert out.lines == [
        "re-encrypting in place, under the journal: "
        "the database or its copy changed since the copy was sealed"
    ]
    assert _sha(backup) == _manifest_sha(backup)
    assert_all_decrypt(demo, new, db)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_roll_that_fails_in_the_copy_leaves_the_database_and_puts_the_backup_back(
    ctx: Context,
    demo: DemoInstance,
    leak_guard: LeakGuard,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(reencrypt, "POOL_FROM_ROWS", 0)
    db = demo.db_path
    conn = sqlite3.connect(db)
    with conn:  # the last table's row holds a value under a key nobody knows: the roll stops
        conn.execute(
            'UPDATE "Certificate" SET "key" = ? WHERE rowid = 2',
            (ctx.profile.codec.encrypt(new_key(), "-----BEGIN EC PRIVATE KEY----- lost"),),
        )
    conn.close()
    _age(db)
    making.create(ctx, reason="manual")
    (backup,) = _backups(db)
    before, ino = _sha(db), os.stat(db).st_ino
    store = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, store, [KeyCandidate("demo", demo.key)], full=True)
        with pytest.raises(KeyProblem, match="under no proven key"):
            reencrypt.reencrypt(ctx, store, analysis, new_key(), batch=1, workers=workers)
    finally:
        store.close()
    assert _sha(db) == before and os.stat(db).st_ino == ino
    assert _sha(backup) == _manifest_sha(backup) == before
    assert os.stat(backup).st_mode & 0o777 == 0o600
    assert not _marker(db).exists()


@pytest.mark.parametrize("point", ["roll:copy-synced", "roll:exchanged"])
def test_a_roll_killed_around_the_exchange_is_finished_by_resume(
    tmp_path: Path, leak_guard: LeakGuard, cli: CliRunner, point: str
) -> None:
    """Killed (as by a power cut) with the copy rolled but not yet exchanged, the database is
    as it was and the backup is not: ``resume`` puts the backup back from the database. Killed
    right after the exchange, the roll is committed and the backup is the original. Either way
    ``resume`` finishes the roll (its new key was recorded before the copy was opened)."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=2)
    db = demo.db_path
    _age(db)
    before, ino = _sha(db), os.stat(db).st_ino
    killed = cli(
        "secrets", "roll", "--yes", "--data-dir", str(demo.data_dir), "--runtime", "none",
        env={"COOLIFY_MIGRATE_CRASH_AT": point},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (backup,) = _backups(db)
    assert _marker(db).exists()
    if point == "roll:copy-synced":
        assert os.stat(db).st_ino == ino and _sha(db) == before  # the app could start on it
        assert _sha(backup) != before  # the copy holds the rolled values: no backup now
        checked = cli("backup", "verify", "--data-dir", str(demo.data_dir), "--runtime", "none")
        assert checked.returncode != 0 and "had it on loan" in checked.stdout + checked.stderr
    else:
        assert os.stat(backup).st_ino == ino and _sha(backup) == before
    resumed = cli("resume", "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert resumed.returncode == 0, resumed.stderr
    assert _sha(backup) == _manifest_sha(backup) == before
    assert os.stat(backup).st_mode & 0o777 == 0o600
    assert not _marker(db).exists()
    key = active_key(demo.data_dir)
    leak_guard.register(key)
    assert key != demo.key  # the roll's new key was recorded before: resume finished it
    assert_all_decrypt(demo, key, db)


def test_a_backup_whose_database_changed_since_the_killed_roll_is_not_made_up(
    tmp_path: Path, leak_guard: LeakGuard, cli: CliRunner
) -> None:
    """The copy cannot be put back from a database that changed after the kill (the app was
    started by hand and wrote): that is said, and the database is left as the app left it."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    db = demo.db_path
    _age(db)
    killed = cli(
        "secrets", "roll", "--yes", "--data-dir", str(demo.data_dir), "--runtime", "none",
        env={"COOLIFY_MIGRATE_CRASH_AT": "roll:copy-synced"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    conn = sqlite3.connect(db)
    with conn:
        conn.execute('UPDATE "DockerRegistry" SET "username" = \'changed by the app\'')
    conn.close()
    after = _sha(db)
    with pytest.raises(DatabaseError, match="changed since: that backup cannot be made again"):
        sqlite_swap.settle(db)
    assert _sha(db) == after and _marker(db).exists()


def test_a_copy_on_loan_is_left_alone_while_its_roll_runs(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    """``settle`` from another process (a second command without the tool's lock) never puts
    back a copy its roll is still writing: the roll holds the marker locked. Stopped by SIGINT
    there, the roll puts the backup back itself."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=2)
    db = demo.db_path
    _age(db)
    before = _sha(db)
    paused = tmp_path / "paused.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coolify_migrate", "secrets", "roll", "--yes",
         "--data-dir", str(demo.data_dir), "--runtime", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "COOLIFY_MIGRATE_PAUSE_AT": "roll:copy-synced",
             "COOLIFY_MIGRATE_PAUSE_FILE": str(paused)},
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (paused.exists() and paused.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.02)
    (backup,) = _backups(db)
    rolled = _sha(backup)
    assert rolled != before
    sqlite_swap.settle(db)  # the roll still runs: nothing happens
    assert _marker(db).exists() and _sha(backup) == rolled
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    leak_guard.record("roll stdout", out)
    leak_guard.record("roll stderr", err)
    assert proc.returncode != 0
    assert _sha(db) == before and _sha(backup) == _manifest_sha(backup) == before
    assert not _marker(db).exists()
