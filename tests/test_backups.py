"""Backups on real files: consistent under a live WAL writer, exact, checked, named safely.

The full-disk and read-only cases mount a small tmpfs (root only; they are skipped elsewhere,
except under CI, where they must run).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from coolify_migrate import backups, instance
from coolify_migrate.apps.coolify_v3.demo import DemoInstance, create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.backups import BackupInfo, making
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import BackupRefused, DiskFull
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import decrypt_text
from coolify_migrate.state.keyring import Keyring
from coolify_migrate.stores import sqlite as db
from support import REPO, SRC, CliRunner, LeakGuard, tmpfs, tree_hash

WRITER = REPO / "tests" / "wal_writer.py"


def run_cli(cli: CliRunner, demo: DemoInstance, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--data-dir", str(demo.data_dir), "--runtime", "none")


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "(hint: " in lines[0], lines[0]
    return lines[0]


def add_filler(db_path: Path, mib: int) -> None:
    """Make the database big enough that copying it takes a while (and a writer overlaps it)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, blob BLOB)")
    conn.execute("BEGIN")
    for _ in range(mib * 4):
        conn.execute("INSERT INTO filler(blob) VALUES (?)", (os.urandom(256 << 10),))
    conn.execute("COMMIT")
    conn.close()


def big_instance(tmp_path: Path, leak_guard: LeakGuard, filler_mib: int = 0) -> DemoInstance:
    """A demo instance with some MiB of filler, to copy onto a small tmpfs."""
    made = create(tmp_path / "inst", version="3.12.32", installed_at_ms=1689674942980, rows=3)
    leak_guard.register(made.key)
    if filler_mib:
        add_filler(made.db_path, filler_mib)
    return made


# -- create ----------------------------------------------------------------------------------------


def test_create_writes_an_exact_0600_copy_and_its_manifest_last(
    demo: DemoInstance, ctx: Context
) -> None:
    info = backups.create(ctx, reason="manual")
    assert info.path.parent == demo.db_path.parent
    assert info.name == f"prod.db_{info.time_ms}" and len(str(info.time_ms)) == 13
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    assert info.path.read_bytes() == demo.db_path.read_bytes(), (
        "a stopped app's database is copied exactly"
    )
    manifest = json.loads(info.path.with_name(info.name + ".json").read_text())
    assert stat.S_IMODE(info.path.with_name(info.name + ".json").stat().st_mode) == 0o600
    assert manifest["sha256"] == backup_copy.sha256_file(info.path)
    assert manifest["size"] == info.path.stat().st_size
    assert manifest["reason"] == "manual" and manifest["version"] == "3.12.32"
    assert manifest["key_fingerprint"] == demo.key.fingerprint
    assert manifest["key_check"] == demo.key.check_value
    assert demo.key.reveal() not in json.dumps(manifest)
    assert info.key_known is True and info.verified is True
    assert not [p for p in demo.db_path.parent.iterdir() if p.name.startswith(".")], (
        "no temp file left"
    )


def test_create_records_the_callers_version_and_key(demo: DemoInstance, ctx: Context) -> None:
    info = backups.create(ctx, reason="pre-roll", pinned=True, version="3.12.33", key=demo.key)
    assert (info.reason, info.version, info.pinned) == ("pre-roll", "3.12.33", True)
    assert info.key_fingerprint == demo.key.fingerprint
    with pytest.raises(Exception, match="unknown backup reason"):
        backups.create(ctx, reason="because")


def test_two_backups_in_the_same_millisecond_get_different_names(demo: DemoInstance) -> None:
    frozen = Context(profile=CoolifyV3(), data_dir=demo.data_dir, clock=lambda: 1_700_000_000.0)
    made: list[BackupInfo] = []
    errors: list[BaseException] = []

    def take() -> None:
        try:
            made.append(backups.create(frozen))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({b.name for b in made}) == 4
    assert all(r["ok"] for r in backups.verify(frozen))


def _start_writer(db_path: Path) -> subprocess.Popen[bytes]:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE writer_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("CREATE TABLE writer_total (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO writer_total VALUES (0)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the tables are in the main file from now on
    conn.close()
    return subprocess.Popen([sys.executable, str(WRITER), str(db_path)])


def _committed(db_path: Path) -> int:
    conn = db.connect(db_path)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM writer_rows").fetchone()[0])
    finally:
        conn.close()


def test_backup_under_a_live_wal_writer_holds_every_committed_row_and_a_plain_copy_does_not(
    demo: DemoInstance, ctx: Context, tmp_path: Path
) -> None:
    add_filler(demo.db_path, 24)
    writer = _start_writer(demo.db_path)
    try:
        deadline = time.monotonic() + 20
        while _committed(demo.db_path) < 2000:
            assert writer.poll() is None and time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        before = _committed(demo.db_path)  # committed before either copy starts
        plain = tmp_path / "plain-copy.db"
        shutil.copyfile(demo.db_path, plain)
        info = backups.create(ctx)
        after = _committed(demo.db_path)
    finally:
        writer.kill()
        writer.wait()
    assert after > before, "the writer kept committing while the backup ran"
    conn = backup_copy.open_snapshot(info.path)
    try:
        count, top = conn.execute("SELECT count(*), max(id) FROM writer_rows").fetchone()
        total = conn.execute("SELECT n FROM writer_total").fetchone()[0]
    finally:
        conn.close()
    assert top >= before, "the backup misses rows committed before it started"
    assert count == top == total, "the backup is not one consistent snapshot"
    assert backup_copy.integrity(info.path, full=True) == "ok"
    assert backups.verify(ctx, info.name)[0]["ok"]
    copied = backup_copy.open_snapshot(plain)
    try:
        in_copy = copied.execute("SELECT count(*) FROM writer_rows").fetchone()[0]
    finally:
        copied.close()
    assert in_copy < before, "a plain copy of a WAL database misses committed rows"


def test_two_backup_create_commands_at_once_never_leave_half_a_backup(
    demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    add_filler(demo.db_path, 16)
    cmd = [
        sys.executable,
        "-m",
        "coolify_migrate",
        "backup",
        "create",
        "--data-dir",
        str(demo.data_dir),
        "--runtime",
        "none",
    ]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        leak_guard.record("concurrent create", out + err)
        assert p.returncode in (0, 4), err
        if p.returncode == 4:
            assert err.count("\n") == 1 and "holds the lock" in err
    assert 0 in [p.returncode for p in procs]
    ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir)
    found = backups.list_backups(ctx)
    assert len(found) == [p.returncode for p in procs].count(0)
    assert all(b.has_manifest for b in found) and all(r["ok"] for r in backups.verify(ctx))
    assert not [p for p in demo.db_path.parent.iterdir() if p.name.startswith(".")]


# -- list ------------------------------------------------------------------------------------------


def test_list_json_recognises_coolifys_own_backups_with_their_times(
    demo: DemoInstance, cli: CliRunner
) -> None:
    d = demo.db_path.parent
    for name in (
        "prod.db_1689674950000",
        "prod.db_3.12.35_1689675000000",
        "prod.db_20230718101500",
    ):
        shutil.copyfile(demo.db_path, d / name)
    (d / "prod.db_notabackup").write_text("x")
    (d / "prod.db_1689674950000-wal").write_bytes(b"")
    r = run_cli(cli, demo, "backup", "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = {b["name"]: b for b in json.loads(r.stdout)["backups"]}
    assert list(listed) == [
        "prod.db_20230718101500",
        "prod.db_3.12.35_1689675000000",
        "prod.db_1689674950000",
    ], "newest first, nothing else"
    manual_ms = int(time.mktime(time.strptime("20230718101500", "%Y%m%d%H%M%S"))) * 1000
    assert listed["prod.db_20230718101500"]["time_ms"] == manual_ms
    assert listed["prod.db_20230718101500"]["kind"] == "manual-copy"
    assert listed["prod.db_3.12.35_1689675000000"]["time"] == "2023-07-18T10:10:00.000Z"
    assert listed["prod.db_3.12.35_1689675000000"]["version"] == "3.12.35"
    assert listed["prod.db_3.12.35_1689675000000"]["kind"] == "coolify-versioned"
    assert listed["prod.db_1689674950000"]["time"] == "2023-07-18T10:09:10.000Z"
    assert listed["prod.db_1689674950000"]["kind"] == "coolify"
    for b in listed.values():  # found by trying the known keys: no manifest says it
        assert b["key_fingerprint"] == demo.key.fingerprint and b["key_known"] is True
        assert b["has_manifest"] is False and b["verified"] is None


def test_list_says_when_a_backups_key_is_no_longer_known(demo: DemoInstance, ctx: Context) -> None:
    info = backups.create(ctx)
    env_text = demo.data_dir.joinpath(".env").read_text()
    demo.data_dir.joinpath(".env").write_text(
        env_text.replace(demo.key.reveal(), new_key().reveal())
    )
    found = {b.name: b for b in backups.list_backups(ctx)}
    assert found[info.name].key_fingerprint == demo.key.fingerprint
    assert found[info.name].key_known is False


def test_list_and_verify_never_write(demo: DemoInstance, ctx: Context, cli: CliRunner) -> None:
    backups.create(ctx)
    conn = sqlite3.connect(demo.db_path)
    conn.execute(
        "PRAGMA journal_mode = WAL"
    )  # copies carry the WAL flag: opening must not add files
    conn.close()
    shutil.copyfile(demo.db_path, demo.db_path.with_name("prod.db_1689674950000"))
    before = tree_hash(demo.data_dir)
    for args in (
        ["backup", "list"],
        ["backup", "list", "--json"],
        ["backup", "verify"],
        ["backup", "verify", "prod.db_1689674950000", "--full", "--json"],
    ):
        r = run_cli(cli, demo, *args)
        assert r.returncode == 0, r.stderr
        assert tree_hash(demo.data_dir) == before, args


# -- verify, and the bad inputs --------------------------------------------------------------------


def _truncate(info: BackupInfo) -> None:
    with open(info.path, "r+b") as fh:
        fh.truncate(info.size // 2)


def _flip_a_byte(info: BackupInfo) -> None:
    with open(info.path, "r+b") as fh:
        fh.seek(info.size - 1000)
        byte = fh.read(1)
        fh.seek(info.size - 1000)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _wrong_checksum(info: BackupInfo) -> None:
    path = info.path.with_name(info.name + ".json")
    doc = json.loads(path.read_text())
    doc["sha256"] = "0" * 64
    path.write_text(json.dumps(doc))


def _garbled_manifest(info: BackupInfo) -> None:
    info.path.with_name(info.name + ".json").write_text(
        '{"format": "coolify-migrate-backup/1", "na'
    )


def _manifest_less_truncated(info: BackupInfo) -> None:
    info.path.with_name(info.name + ".json").unlink()
    _truncate(info)


DAMAGE = {
    "truncated": _truncate,
    "corrupted": _flip_a_byte,
    "wrong-checksum": _wrong_checksum,
    "garbled-manifest": _garbled_manifest,
    "no-manifest-and-truncated": _manifest_less_truncated,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_backup_fails_verify_and_is_never_restored(
    demo: DemoInstance, ctx: Context, cli: CliRunner, damage: str
) -> None:
    info = backups.create(ctx)
    DAMAGE[damage](info)
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    r = run_cli(cli, demo, "backup", "verify", info.name)
    assert r.returncode == 3
    assert info.name in one_error_line(r)
    r = run_cli(cli, demo, "rollback", "--to", info.name, "--yes")
    assert r.returncode == 3
    one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before


def test_a_backup_whose_manifest_is_lost_is_still_verified_and_listed_as_coolifys(
    demo: DemoInstance, ctx: Context
) -> None:
    info = backups.create(ctx)
    info.path.with_name(info.name + ".json").unlink()
    again = backups.find(ctx, info.name)
    # the tool's record of the backups it made still names it: not taken for Coolify's copy
    assert (again.kind, again.has_manifest, again.key_fingerprint) == (
        "coolify-migrate",
        False,
        demo.key.fingerprint,
    )
    assert again.note is not None and "before the manifest was written" in again.note
    [result] = backups.verify(ctx, info.name)
    assert result["ok"] and result["checksum"] == "no manifest" and result["integrity"] == "ok"


def test_an_orphan_manifest_is_not_a_backup(
    demo: DemoInstance, ctx: Context, cli: CliRunner
) -> None:
    info = backups.create(ctx)
    info.path.unlink()
    assert backups.list_backups(ctx) == []
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    for args in (["backup", "verify", info.name], ["rollback", "--to", info.name, "--yes"]):
        r = run_cli(cli, demo, *args)
        assert r.returncode == 3 and "no backup named" in one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before


BAD_NAMES = [
    "../x",
    "/etc/passwd",
    "prod.db_1/../../x",
    "prod.db_1689674950000/../../../etc/passwd",
    "prod.db",
    ".prod.db_1689674950000.partial",
    "prod.db_1689674950000.json",
    "prod.db_12",
    "prod.db_1689674950000-wal",
    "..",
    "",
    "prod.db_99999999999999",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_are_not_bare_backup_names_are_refused(
    demo: DemoInstance, ctx: Context, cli: CliRunner, name: str
) -> None:
    backups.create(ctx)
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    for args in (["backup", "verify", name], ["rollback", "--to", name, "--yes"]):
        r = run_cli(cli, demo, *args)
        # an empty argument is a usage error, whatever the command (issue 14)
        assert r.returncode == (2 if name == "" else 3), (args, r.stderr)
        one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before


def test_a_symlink_planted_in_the_backup_directory_is_never_followed(
    demo: DemoInstance, ctx: Context, cli: CliRunner, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.db"
    shutil.copyfile(demo.db_path, outside)  # a valid database, so only the link itself is wrong
    link = demo.db_path.with_name("prod.db_1689674950000")
    link.symlink_to(outside)
    demo.db_path.with_name("prod.db_1689674960000").symlink_to("/etc/passwd")
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    outside_before = outside.read_bytes()
    for name in ("prod.db_1689674950000", "prod.db_1689674960000"):
        for args in (["backup", "verify", name], ["rollback", "--to", name, "--yes"]):
            r = run_cli(cli, demo, *args)
            assert r.returncode == 3 and "symlink" in one_error_line(r), r.stderr
    assert backups.list_backups(ctx) == []
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before
    assert outside.read_bytes() == outside_before


# -- disk full, read-only --------------------------------------------------------------------------


def test_too_little_room_is_refused_before_anything_is_written(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    made = big_instance(tmp_path, leak_guard, filler_mib=3)
    with tmpfs(tmp_path / "inst" / "db-mnt", "4m") as mnt:
        shutil.copyfile(made.db_path, mnt / "prod.db")  # 3+ MiB of 4: no room for a copy
        before = tree_hash(mnt)
        env_before = made.data_dir.joinpath(".env").read_bytes()
        r = cli(
            "backup",
            "create",
            "--data-dir",
            str(made.data_dir),
            "--db",
            str(mnt / "prod.db"),
            "--runtime",
            "none",
        )
        assert r.returncode == 3
        assert "not enough room" in one_error_line(r)
        assert tree_hash(mnt) == before
        assert sorted(p.name for p in mnt.iterdir()) == ["prod.db"]
        assert made.data_dir.joinpath(".env").read_bytes() == env_before


def test_a_disk_that_fills_up_during_the_copy_leaves_nothing_behind(
    tmp_path: Path, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = big_instance(tmp_path, leak_guard, filler_mib=3)
    with tmpfs(tmp_path / "inst" / "db-mnt", "5m") as mnt:
        shutil.copyfile(made.db_path, mnt / "prod.db")
        before = tree_hash(mnt)
        # the free-space guard is told there is room, so the real ENOSPC path runs
        monkeypatch.setattr(making, "free_bytes", lambda directory: 1 << 40)
        ctx = Context(profile=CoolifyV3(), data_dir=made.data_dir, db_override=mnt / "prod.db")
        with pytest.raises(DiskFull, match="filled up"):
            backups.create(ctx)
        assert tree_hash(mnt) == before
        assert sorted(p.name for p in mnt.iterdir()) == ["prod.db"]


def test_a_read_only_directory_is_refused_with_one_line(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    made = big_instance(tmp_path, leak_guard)
    with tmpfs(tmp_path / "inst" / "db-mnt", "4m") as mnt:
        shutil.copyfile(made.db_path, mnt / "prod.db")
        ctx = Context(profile=CoolifyV3(), data_dir=made.data_dir, db_override=mnt / "prod.db")
        info = backups.create(ctx)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        before = tree_hash(mnt)
        env_before = made.data_dir.joinpath(".env").read_bytes()
        base = ["--data-dir", str(made.data_dir), "--db", str(mnt / "prod.db"), "--runtime", "none"]
        for args in (
            ["backup", "create"],
            ["rollback", "--to", info.name, "--yes"],
            ["backup", "prune", "--keep", "0", "--yes", "--force"],
        ):
            r = cli(*args, *base)
            assert r.returncode == 3, (args, r.stderr)
            assert "read-only file system" in one_error_line(r)
        for args in (["backup", "list"], ["backup", "verify"]):  # reading still works
            assert cli(*args, *base).returncode == 0
        assert tree_hash(mnt) == before
        assert made.data_dir.joinpath(".env").read_bytes() == env_before


# -- prune -----------------------------------------------------------------------------------------


def change_key(ctx: Context) -> Secret:
    """Roll the data key by hand, as the key roll will: every value re-encrypted in one transaction,
    the key-check recorded, KEY = BETTER = new in .env, the old key kept only in the keyring."""
    env = EnvFile.load(ctx.env_path)
    active = ctx.profile.active_key(env)
    assert active is not None
    old, new = active.key, new_key()
    codec = ctx.profile.codec
    conn = db.connect(instance.database_path(ctx))
    try:
        with db.transaction(conn):
            for col in ctx.profile.encrypted_columns:
                rows = conn.execute(f'SELECT rowid, "{col.column}" FROM "{col.table}"').fetchall()
                for rowid, stored in rows:
                    if stored and codec.is_encrypted(stored):  # not ciphertext: left as it is
                        value = codec.encrypt_exact(new, decrypt_text(codec, old, stored))
                        conn.execute(
                            f'UPDATE "{col.table}" SET "{col.column}" = ? WHERE rowid = ?',
                            (value, rowid),
                        )
            db.write_meta(conn, key_check=new.check_value)
    finally:
        conn.close()
    Keyring(ctx).remember(old, status="retired", source="test")
    env.set("COOLIFY_SECRET_KEY", new)
    env.set("COOLIFY_SECRET_KEY_BETTER", new)
    env.save()
    Keyring(ctx).set_active(new)
    return new


def test_prune_keeps_the_newest_pre_upgrade_pinned_and_last_backup_under_an_old_key(
    demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    clock = [1_700_000_000.0]
    ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir, clock=lambda: clock[0])

    def take(reason: str = "manual", pinned: bool = False) -> BackupInfo:
        clock[0] += 60
        return backups.create(ctx, reason=reason, pinned=pinned)

    under_old = [take(), take()]
    leak_guard.register(change_key(ctx))
    pinned = take(pinned=True)
    pre_upgrade = [take(reason="pre-upgrade"), take(reason="pre-upgrade")]
    newest = [take(), take()]
    assert {b.key_fingerprint for b in under_old} == {demo.key.fingerprint}
    assert demo.key.fingerprint not in {b.key_fingerprint for b in [pinned, *pre_upgrade, *newest]}
    asked: list[list[str]] = []

    def no(doomed: list[BackupInfo]) -> bool:
        asked.append([b.name for b in doomed])
        return False

    result = backups.prune(ctx, keep=2, force=False, confirm=no)
    assert result["deleted"] == [] and result["confirmed"] is False
    assert asked == [[pre_upgrade[0].name, under_old[0].name]], "asked with the list, newest first"
    assert len(backups.list_backups(ctx)) == 7, "nothing goes without confirmation"

    result = backups.prune(ctx, keep=2, force=False, confirm=lambda doomed: True)
    assert {p["name"]: p["reason"] for p in result["protected"]} == {
        pre_upgrade[1].name: "the newest pre-upgrade backup",
        pinned.name: "pinned",
        under_old[1].name: f"the only backup under key {demo.key.fingerprint} (not the active key)",
    }
    assert result["deleted"] == [pre_upgrade[0].name, under_old[0].name]
    left = {b.name for b in backups.list_backups(ctx)}
    assert left == {
        newest[1].name,
        newest[0].name,
        pre_upgrade[1].name,
        pinned.name,
        under_old[1].name,
    }
    assert not [
        p
        for p in demo.db_path.parent.iterdir()
        if p.name.endswith(".json") and p.name[:-5] not in left
    ], "manifests go with backups"

    result = backups.prune(ctx, keep=0, force=True, confirm=lambda doomed: True)
    assert len(result["deleted"]) == 5 and backups.list_backups(ctx) == []


def test_prune_asks_and_does_nothing_without_yes(
    demo: DemoInstance, ctx: Context, cli: CliRunner
) -> None:
    for _ in range(3):
        backups.create(ctx)
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    r = run_cli(cli, demo, "backup", "prune", "--keep", "1")
    assert r.returncode == 3 and "not confirmed" in one_error_line(r)
    assert r.stdout.count("prod.db_") == 2, r.stdout
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before
    r = run_cli(cli, demo, "backup", "prune", "--keep", "1", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["deleted"]) == 2
    assert len(backups.list_backups(ctx)) == 1


def test_find_refuses_a_path_and_an_instance_without_backups_lists_none(ctx: Context) -> None:
    with pytest.raises(BackupRefused, match="not a backup name"):
        backups.find(ctx, "../../etc/shadow")
    assert backups.list_backups(ctx) == []


def test_a_claim_left_by_a_dead_run_is_removed_and_a_live_ones_kept(demo: DemoInstance) -> None:
    """``reserve`` claims a partial's name through a small private file; one a killed run left
    is removed by the next backup, one whose process lives is left alone."""
    from coolify_migrate.backups import copy as backup_copy

    directory = demo.db_path.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    left = directory / f".claim-{dead}-1-.prod.db_1700000000000.partial"
    alive = directory / f".claim-{os.getpid()}-1-.prod.db_1700000000001.partial"
    left.touch()
    alive.touch()
    removed = backup_copy.remove_partials(directory, demo.db_path.name)
    assert removed == [left.name] and not left.exists() and alive.exists()
