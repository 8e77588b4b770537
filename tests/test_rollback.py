"""Rollback restores the database and its key together, exactly, or changes nothing at all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from checks import active_key, assert_all_decrypt
from coolify_migrate import backups, instance
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.backups import rollback
from coolify_migrate.config.manifest import Release
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem, Refused, RuntimeProblem
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import Keyring
from coolify_migrate.stores import sqlite as db
from support import CliRunner, LeakGuard, make_demo, tree_hash
from test_backups import WRITER, change_key, one_error_line

# the lock file and finished-run records change on every run; everything else must not
STATE_NOISE = (".coolify-migrate/lock", ".coolify-migrate/runs")


def run_cli(
    cli: CliRunner, data_dir: Path, *args: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--data-dir", str(data_dir), "--runtime", "none", **kw)


def simulate_upgrade(ctx: Context, version: str) -> None:
    conn = db.connect(instance.database_path(ctx))
    try:
        with db.transaction(conn):
            db.write_meta(conn, version=version)
    finally:
        conn.close()
    env = instance.load_env(ctx)
    env.set("TAG", version)
    env.save()


def installed(ctx: Context) -> str:
    env = instance.load_env(ctx)
    found = instance.installed_version(ctx, env, instance.read_meta(ctx))
    assert not found.conflict
    return str(found.version)


def forget_key(ctx: Context, fingerprint: str) -> None:
    path = ctx.state_dir / Keyring.FILENAME
    doc = json.loads(path.read_text())
    doc["keys"] = [k for k in doc["keys"] if k["fingerprint"] != fingerprint]
    path.write_text(json.dumps(doc))


def test_rollback_to_a_backup_from_before_the_key_changed_restores_data_key_and_version(
    demo: DemoInstance, ctx: Context, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    before_change = backups.create(ctx)
    original = demo.db_path.read_bytes()
    new = change_key(ctx)
    leak_guard.register(new)
    simulate_upgrade(ctx, "3.12.36")
    assert installed(ctx) == "3.12.36" and active_key(demo.data_dir) == new

    r = run_cli(cli, demo.data_dir, "rollback", "--to", before_change.name, "--yes", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.splitlines()[-1])
    assert active_key(demo.data_dir) == demo.key
    assert assert_all_decrypt(demo, active_key(demo.data_dir)) == demo.value_count
    assert installed(ctx) == "3.12.32" == result["version"]
    assert demo.db_path.read_bytes() == original, (
        "the restored database is the backup, byte for byte"
    )
    assert not [p for p in demo.db_path.parent.iterdir() if p.name.startswith(".")]
    ring = {e.fingerprint: e.status for e in Keyring(ctx).entries}
    assert ring == {demo.key.fingerprint: "active", new.fingerprint: "retired"}

    safety = backups.find(ctx, result["safety_backup"])  # the rollback itself can be undone
    assert (safety.reason, safety.key_fingerprint, safety.version) == (
        "pre-restore",
        new.fingerprint,
        "3.12.36",
    )
    r = run_cli(cli, demo.data_dir, "rollback", "--to", safety.name, "--yes")
    assert r.returncode == 0, r.stderr
    assert active_key(demo.data_dir) == new and installed(ctx) == "3.12.36"
    assert assert_all_decrypt(demo, new) == demo.value_count


def test_a_backup_whose_key_the_instance_no_longer_knows_is_refused_naming_it(
    demo: DemoInstance, ctx: Context, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    old = backups.create(ctx)
    leak_guard.register(change_key(ctx))
    forget_key(ctx, demo.key.fingerprint)
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    r = run_cli(cli, demo.data_dir, "rollback", "--to", old.name, "--yes")
    assert r.returncode == 3
    line = one_error_line(r)
    assert f"needs key {demo.key.fingerprint}" in line
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before
    listed = {b.name: b for b in backups.list_backups(ctx)}
    assert listed[old.name].key_known is False


def _misleading_coolify_backup(demo: DemoInstance, ctx: Context, leak_guard: LeakGuard) -> str:
    """A manifest-less copy whose key-check names a key the instance knows, though its values are
    under another one: it passes 'backup verify', and only decrypting every value shows it."""
    other = new_key()
    leak_guard.register(other)
    Keyring(ctx).remember(other, status="retired", source="test")
    name = "prod.db_1689674950000"
    shutil.copyfile(demo.db_path, demo.db_path.with_name(name))
    conn = db.connect(demo.db_path.with_name(name))
    try:
        with db.transaction(conn):
            db.write_meta(conn, key_check=other.check_value, version="3.12.35")
    finally:
        conn.close()
    assert backups.verify(ctx, name)[0]["ok"]
    return name


def test_a_restore_that_fails_after_changing_things_puts_everything_back(
    demo: DemoInstance, ctx: Context, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    backups.create(ctx)
    leak_guard.register(change_key(ctx))
    name = _misleading_coolify_backup(demo, ctx, leak_guard)
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    r = run_cli(cli, demo.data_dir, "rollback", "--to", name, "--yes")
    assert r.returncode == 5, r.stderr
    assert "do not decrypt" in one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before, (
        "database, .env, keyring, backups"
    )
    assert journal.current(ctx) is None
    status = json.loads(run_cli(cli, demo.data_dir, "status", "--json").stdout)
    assert status["run_in_progress"] is None


class RecordingRuntime:
    """A runtime that records what rollback asks of it (Docker is not available here)."""

    name = "recording"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_on and what.startswith(self.fail_on):
            raise RuntimeProblem(f"{what} failed")

    def check(self) -> None:
        pass

    def current_image_tag(self) -> str | None:
        return None

    def database_path(self) -> Path | None:
        return None

    def ensure_images(self, release: Release) -> str:
        return release.image

    def stop(self) -> None:
        self._call("stop")

    def start(self) -> None:
        self._call("start")

    def update(self, release: Release, image: str) -> None:
        self._call("update")

    def rollback_to(self, version: str) -> None:
        self._call(f"rollback_to {version}")

    def finish(self) -> None:
        self._call("finish")

    def app_settings(self) -> tuple[dict[str, str], dict[str, str]] | None:
        return None

    def config_files(self) -> list[Path]:
        return []


def _with_runtime(demo: DemoInstance, runtime: RecordingRuntime) -> Context:
    return Context(profile=CoolifyV3(), data_dir=demo.data_dir, runtime_factory=lambda ctx: runtime)  # type: ignore[arg-type,return-value]


def test_rollback_stops_the_app_and_starts_the_backups_version(
    demo: DemoInstance, ctx: Context, leak_guard: LeakGuard
) -> None:
    info = backups.create(ctx)
    leak_guard.register(change_key(ctx))
    simulate_upgrade(ctx, "3.12.36")
    runtime = RecordingRuntime()
    result = rollback.rollback(_with_runtime(demo, runtime), to=info.name)
    assert runtime.calls == ["stop", "rollback_to 3.12.32"]
    assert result["version"] == "3.12.32" and result["resolved_run"] is None
    runs = list((ctx.state_dir / "runs").glob("rollback-*.json"))
    assert [json.loads(p.read_text())["outcome"] for p in runs] == ["done"]


def test_when_the_app_will_not_start_at_the_backups_version_everything_is_put_back(
    demo: DemoInstance, ctx: Context, leak_guard: LeakGuard
) -> None:
    info = backups.create(ctx)
    leak_guard.register(change_key(ctx))
    simulate_upgrade(ctx, "3.12.36")
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    runtime = RecordingRuntime(fail_on="rollback_to")
    with pytest.raises(ChangeFailed, match="as they were"):
        rollback.rollback(_with_runtime(demo, runtime), to=info.name)
    assert runtime.calls == ["stop", "rollback_to 3.12.32", "start"], "the previous app comes back"
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before


def test_a_runtime_that_cannot_stop_the_app_changes_nothing(
    demo: DemoInstance, ctx: Context
) -> None:
    info = backups.create(ctx)
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    runtime = RecordingRuntime(fail_on="stop")
    with pytest.raises(RuntimeProblem):
        rollback.rollback(_with_runtime(demo, runtime), to=info.name)
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before and journal.current(ctx) is None


def test_rollback_last_picks_the_newest_pre_upgrade_or_pre_roll_backup(
    demo: DemoInstance, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    clock = [1_700_000_000.0]
    ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir, clock=lambda: clock[0])
    r = run_cli(cli, demo.data_dir, "rollback", "--last", "--yes")
    assert r.returncode == 3 and "no backup to roll back to" in one_error_line(r)
    clock[0] += 60
    pre_upgrade = backups.create(ctx, reason="pre-upgrade")
    clock[0] += 60
    backups.create(ctx, reason="manual")
    leak_guard.register(change_key(ctx))
    r = run_cli(cli, demo.data_dir, "rollback", "--last", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["backup"] == pre_upgrade.name
    assert active_key(demo.data_dir) == demo.key


def test_rollback_last_reverts_an_interrupted_run_to_the_backup_it_names(
    demo: DemoInstance, ctx: Context, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    info = backups.create(ctx, reason="pre-upgrade")
    original = demo.db_path.read_bytes()
    doc = journal.begin(ctx, "upgrade", backup=info.name, from_version="3.12.32")
    leak_guard.register(change_key(ctx))  # the run changed things, then died
    r = run_cli(cli, demo.data_dir, "rollback", "--to", info.name, "--yes")
    assert r.returncode == 3 and "interrupted upgrade run" in one_error_line(r)
    r = run_cli(cli, demo.data_dir, "rollback", "--last", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["resolved_run"] == doc["run_id"]
    assert demo.db_path.read_bytes() == original and active_key(demo.data_dir) == demo.key
    assert journal.current(ctx) is None
    finished = json.loads((ctx.state_dir / "runs" / f"{doc['run_id']}.json").read_text())
    assert finished["outcome"] == "reverted"


def test_rollback_last_refuses_an_interrupted_run_that_took_no_backup(
    demo: DemoInstance, ctx: Context, cli: CliRunner
) -> None:
    backups.create(ctx, reason="pre-upgrade")
    journal.begin(ctx, "upgrade", from_version="3.12.32")
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    r = run_cli(cli, demo.data_dir, "rollback", "--last", "--yes")
    assert r.returncode == 3 and "no backup" in one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before


def test_rollback_needs_exactly_one_target_and_a_confirmation(
    demo: DemoInstance, ctx: Context, cli: CliRunner
) -> None:
    info = backups.create(ctx)
    before = tree_hash(demo.data_dir, exclude=STATE_NOISE)
    for args in (["rollback"], ["rollback", "--to", info.name, "--last"]):
        r = run_cli(cli, demo.data_dir, *args, "--yes")
        assert r.returncode == 2 and "exactly one" in one_error_line(r)
    r = run_cli(cli, demo.data_dir, "rollback", "--to", info.name)  # no tty, no --yes
    assert r.returncode == 3 and "not confirmed" in one_error_line(r)
    assert tree_hash(demo.data_dir, exclude=STATE_NOISE) == before


def test_a_stale_wal_is_never_replayed_into_the_restored_database(
    demo: DemoInstance, ctx: Context
) -> None:
    info = backups.create(ctx)
    conn = sqlite3.connect(demo.db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE writer_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("CREATE TABLE writer_total (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO writer_total VALUES (0)")
    conn.close()
    writer = subprocess.Popen([sys.executable, str(WRITER), str(demo.db_path)])
    time.sleep(0.5)
    writer.send_signal(signal.SIGKILL)  # the app dies: its committed rows sit in prod.db-wal
    writer.wait()
    wal = demo.db_path.with_name("prod.db-wal")
    assert wal.stat().st_size > 0
    result = rollback.restore(ctx, info)
    assert demo.db_path.read_bytes() == info.path.read_bytes()
    assert not wal.exists() and not demo.db_path.with_name("prod.db-shm").exists()
    safety = backups.find(ctx, result["safety_backup"])
    conn = backup_copy.open_snapshot(safety.path)
    try:
        rows, total = conn.execute(
            "SELECT count(*), (SELECT n FROM writer_total) FROM writer_rows"
        ).fetchone()
    finally:
        conn.close()
    assert rows == total > 0, "the safety backup holds what the WAL held"


def test_a_damaged_live_database_is_kept_aside_and_the_backup_restored(
    demo: DemoInstance, ctx: Context
) -> None:
    info = backups.create(ctx)
    damaged = b"SQLite format 3\x00" + os.urandom(8192)
    demo.db_path.write_bytes(damaged)
    result = rollback.restore(ctx, info)
    assert demo.db_path.read_bytes() == info.path.read_bytes()
    assert result["safety_backup"] is None
    assert Path(result["damaged_database_kept"]).read_bytes() == damaged


def test_the_engine_can_restore_under_its_own_journal(
    demo: DemoInstance, ctx: Context, leak_guard: LeakGuard
) -> None:
    info = backups.create(ctx, reason="pre-upgrade")
    doc = journal.begin(ctx, "upgrade", backup=info.name)
    leak_guard.register(change_key(ctx))
    result = rollback.restore(ctx, info, journal_doc=doc)
    assert result["backup"] == info.name and result["values_verified"] == demo.value_count
    phases = [h["phase"] for h in journal.current(ctx)["history"]]  # type: ignore[index]
    assert phases[-3:] == ["restore:safety-backup", "restore:db", "restore:done"]
    forget_key(ctx, demo.key.fingerprint)  # the engine's guards are the command's guards
    env = instance.load_env(ctx)
    env.set("COOLIFY_SECRET_KEY", new_key())
    env.set("COOLIFY_SECRET_KEY_BETTER", new_key())
    env.save()
    with pytest.raises(KeyProblem, match="needs key"):
        rollback.restore(ctx, info, journal_doc=doc)


def test_an_interrupted_restore_must_be_finished_first(demo: DemoInstance, ctx: Context) -> None:
    info = backups.create(ctx)
    demo.db_path.with_name(".prod.db.undo").write_bytes(b"left by a crash")
    with pytest.raises(Refused, match="interrupted restore"):
        rollback.restore(ctx, info)


def _checkpoints(tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard) -> list[str]:
    demo = make_demo(tmp_path / "trace", leak_guard)
    ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir)
    info = backups.create(ctx)
    leak_guard.register(change_key(ctx))
    trace = tmp_path / "trace.txt"
    r = run_cli(
        cli,
        demo.data_dir,
        "rollback",
        "--to",
        info.name,
        "--yes",
        env={"COOLIFY_MIGRATE_TRACE": str(trace)},
    )
    assert r.returncode == 0, r.stderr
    return trace.read_text().split()


@pytest.mark.slow
def test_sigkill_at_every_durable_step_then_rollback_last_or_resume_finishes_the_rollback(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    points = _checkpoints(tmp_path, cli, leak_guard)
    assert "restore:db#1" in points and "restore:committed#1" in points
    resolved = 0
    for i, point in enumerate(points):
        demo = make_demo(tmp_path / f"c{i}", leak_guard)
        ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir)
        info = backups.create(ctx)
        original = demo.db_path.read_bytes()
        new = change_key(ctx)
        leak_guard.register(new)
        changed = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
        r = run_cli(
            cli,
            demo.data_dir,
            "rollback",
            "--to",
            info.name,
            "--yes",
            env={"COOLIFY_MIGRATE_CRASH_AT": point},
        )
        assert r.returncode == -9, f"{point}: {r.stderr}"
        if journal.current(ctx) is None:  # killed before the run was recorded: nothing changed
            assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == changed, point
            continue
        finish = ["resume"] if i % 2 else ["rollback", "--last", "--yes"]  # both must work
        r = run_cli(cli, demo.data_dir, *finish)
        assert r.returncode == 0, f"{point} then {finish}: {r.stderr}"
        assert demo.db_path.read_bytes() == original, point
        assert active_key(demo.data_dir) == demo.key, point
        assert_all_decrypt(demo, demo.key)
        assert journal.current(ctx) is None, point
        assert not [p for p in demo.db_path.parent.iterdir() if ".undo" in p.name], point
        resolved += 1
    assert resolved >= len(points) - 2, "all but the journal's own first write left a run to finish"
