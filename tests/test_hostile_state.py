"""Hostile and unlucky state (issue 14): links and loose modes in the tool's own state, modes of
what it writes, leftovers of killed runs, the order of backups, foreign and lying backups.

Each refusal is checked for its exit code (3), its one-line message, and a tree of the instance
(and of any link's target) identical before and after, modes included.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from support import CliRunner, snapshot
from test_backups import one_error_line

MANIFEST = str(Path(__file__).resolve().parent.parent / "versions.json")


def run(
    cli: CliRunner, demo: DemoInstance, *args: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--data-dir", str(demo.data_dir), "--runtime", "none", **kw)


def upgrade(cli: CliRunner, demo: DemoInstance) -> subprocess.CompletedProcess[str]:
    return run(cli, demo, "upgrade", "--manifest", MANIFEST, "--yes")


def refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = one_error_line(proc)
    for fragment in fragments:
        assert fragment in line, line
    return line


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the state directory and its files -------------------------------------------------------------


def test_a_symlinked_lock_is_refused_and_its_target_untouched(
    demo: DemoInstance, cli: CliRunner, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o644)
    state = demo.data_dir / ".coolify-migrate"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / "lock").symlink_to(victim)
    before = snapshot(demo.data_dir)
    r = upgrade(cli, demo)
    refused(r, "lock", "is a symlink")
    assert victim.read_text() == "precious\n"
    assert mode(victim) == 0o644
    assert snapshot(demo.data_dir) == before


def test_a_symlinked_state_directory_is_refused_and_its_target_untouched(
    demo: DemoInstance, cli: CliRunner, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "keep.txt").write_text("not the tool's\n")
    (demo.data_dir / ".coolify-migrate").symlink_to(elsewhere, target_is_directory=True)
    before, target_before = snapshot(demo.data_dir), snapshot(elsewhere)
    for args in (
        ("upgrade", "--manifest", MANIFEST, "--yes"),
        ("backup", "create"),
        ("status",),
    ):
        r = run(cli, demo, *args)
        refused(r, ".coolify-migrate", "is a symlink")
        assert snapshot(demo.data_dir) == before
        assert snapshot(elsewhere) == target_before  # no keyring, log or lock written there


@pytest.mark.parametrize("name", ["journal.json", "keyring.json"])
def test_a_symlinked_journal_or_keyring_is_refused(
    demo: DemoInstance, cli: CliRunner, tmp_path: Path, name: str
) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("{}\n")
    state = demo.data_dir / ".coolify-migrate"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / name).symlink_to(victim)
    before = snapshot(demo.data_dir)
    r = upgrade(cli, demo)
    refused(r, name, "is a symlink")
    assert victim.read_text() == "{}\n"
    after = snapshot(demo.data_dir)
    after.pop(".coolify-migrate/lock")  # the (empty) lock file the run took: nothing else
    assert after == before


def test_a_state_directory_others_can_write_is_refused(demo: DemoInstance, cli: CliRunner) -> None:
    state = demo.data_dir / ".coolify-migrate"
    state.mkdir(exist_ok=True)
    os.chmod(state, 0o777)
    before = snapshot(demo.data_dir)
    r = upgrade(cli, demo)
    refused(r, "writable by group or others", "0777")
    assert "chmod 700" in r.stderr
    assert snapshot(demo.data_dir) == before


def test_a_state_directory_others_can_read_is_tightened_with_a_warning(
    demo: DemoInstance, cli: CliRunner
) -> None:
    state = demo.data_dir / ".coolify-migrate"
    state.mkdir(exist_ok=True)
    os.chmod(state, 0o755)
    r = run(cli, demo, "backup", "create")
    assert r.returncode == 0, r.stderr
    assert "tightened to 0700" in r.stderr
    assert mode(state) == 0o700


def test_a_state_path_that_is_a_file_is_refused(demo: DemoInstance, cli: CliRunner) -> None:
    (demo.data_dir / ".coolify-migrate").write_text("not a directory\n")
    before = snapshot(demo.data_dir)
    refused(upgrade(cli, demo), ".coolify-migrate", "not a directory")
    assert snapshot(demo.data_dir) == before


def test_a_lock_that_is_a_directory_is_refused(demo: DemoInstance, cli: CliRunner) -> None:
    (demo.data_dir / ".coolify-migrate" / "lock").mkdir(parents=True)
    os.chmod(demo.data_dir / ".coolify-migrate", 0o700)
    before = snapshot(demo.data_dir)
    refused(upgrade(cli, demo), "lock")
    assert snapshot(demo.data_dir) == before


# -- modes of what the tool writes ----------------------------------------------------------------


def test_every_copy_of_the_database_a_restore_makes_is_owner_only(
    demo: DemoInstance, cli: CliRunner
) -> None:
    os.chmod(demo.db_path, 0o644)  # as Coolify left it
    made = run(cli, demo, "backup", "create", "--json")
    assert made.returncode == 0, made.stderr
    name = json.loads(made.stdout)["name"]
    # killed with the current file set aside and the backup staged: both hold encrypted data
    r = run(
        cli,
        demo,
        "rollback",
        "--to",
        name,
        "--yes",
        env={"COOLIFY_MIGRATE_CRASH_AT": "restore:set-aside"},
    )
    assert r.returncode == -9, r.stderr
    staged = demo.db_path.with_name(".prod.db.restoring")
    undo = demo.db_path.with_name(".prod.db.undo")
    assert mode(staged) == 0o600
    assert mode(undo) == 0o600
    finished = run(cli, demo, "rollback", "--last", "--yes")
    assert finished.returncode == 0, finished.stderr
    assert mode(demo.db_path) == 0o600  # the restored database
    assert not staged.exists() and not undo.exists()


def test_a_failed_restore_gives_the_database_its_mode_back(demo: DemoInstance, ctx: Any) -> None:
    from coolify_migrate import backups
    from coolify_migrate.backups.restore import Restoration

    info = backups.create(ctx)
    os.chmod(demo.db_path, 0o644)
    ctx.ensure_state_dir()
    before = snapshot(demo.data_dir)
    plan = Restoration(ctx, info)
    plan.prepare()
    plan._verify_values = lambda: (_ for _ in ()).throw(RuntimeError("injected"))  # type: ignore[method-assign]
    with pytest.raises(Exception, match="as they were"):
        plan.apply()
    assert snapshot(demo.data_dir) == before
    assert mode(demo.db_path) == 0o644


def test_a_kept_damaged_database_is_owner_only(demo: DemoInstance, ctx: Any) -> None:
    from coolify_migrate import backups
    from coolify_migrate.backups import rollback

    info = backups.create(ctx)
    demo.db_path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    os.chmod(demo.db_path, 0o644)
    result = rollback.restore(ctx, info)
    assert mode(Path(result["damaged_database_kept"])) == 0o600
    assert mode(demo.db_path) == 0o600


def test_a_readable_env_is_tightened_with_a_warning_when_the_tool_writes_it(
    demo: DemoInstance, cli: CliRunner
) -> None:
    os.chmod((demo.data_dir / ".env"), 0o644)
    r = upgrade(cli, demo)  # writes TAG and the new key into .env
    assert r.returncode == 0, r.stderr
    assert "readable by group or others (mode 0644): tightened to 0600" in r.stderr
    assert mode(demo.data_dir / ".env") == 0o600
