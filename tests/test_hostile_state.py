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
    """Exit 3 with one error line (a warning such as a stale lock taken over may precede it)."""
    assert proc.returncode == 3, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1, proc.stderr
    line = one_error_line(subprocess.CompletedProcess(proc.args, 3, "", errors[0]))
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
    name = json.loads(made.stdout.splitlines()[-1])["name"]
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


# -- leftovers of killed runs, and the order of backups -------------------------------------------


def backup_list(cli: CliRunner, demo: DemoInstance) -> list[dict[str, Any]]:
    r = run(cli, demo, "backup", "list", "--json")
    assert r.returncode == 0, r.stderr
    found: list[dict[str, Any]] = json.loads(r.stdout)["backups"]
    return found


def test_partial_copies_of_a_killed_run_are_removed_by_the_next_backup(
    demo: DemoInstance, cli: CliRunner
) -> None:
    r = run(cli, demo, "backup", "create", env={"COOLIFY_MIGRATE_CRASH_AT": "backup:copied"})
    assert r.returncode == -9
    partials = sorted(p.name for p in demo.db_path.parent.glob(".prod.db_*.partial*"))
    assert partials, "the kill left no partial copy: the case is not exercised"
    before = snapshot(demo.data_dir)
    assert backup_list(cli, demo) == []  # never listed, and listing removes nothing
    assert snapshot(demo.data_dir) == before
    r = run(cli, demo, "backup", "create")
    assert r.returncode == 0, r.stderr
    assert "removed 1 partial copies left by interrupted runs" in r.stderr + r.stdout
    assert not list(demo.db_path.parent.glob(".prod.db_*.partial*"))


def test_a_backup_killed_before_its_manifest_is_still_known_as_the_tools(
    demo: DemoInstance, cli: CliRunner
) -> None:
    r = run(cli, demo, "backup", "create", env={"COOLIFY_MIGRATE_CRASH_AT": "backup:renamed"})
    assert r.returncode == -9
    [found] = backup_list(cli, demo)
    assert not found["has_manifest"]
    assert found["kind"] == "coolify-migrate"  # not taken for a copy Coolify made
    assert "before the manifest was written" in found["note"]
    shown = run(cli, demo, "backup", "list")
    assert "before the manifest was written" in shown.stdout
    verified = run(cli, demo, "backup", "verify", found["name"])
    assert verified.returncode == 0, verified.stderr


def test_newest_is_the_order_the_tool_made_backups_in_not_the_clock(
    demo: DemoInstance, cli: CliRunner
) -> None:
    from coolify_migrate import backups
    from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
    from coolify_migrate.core.context import Context

    later = Context(profile=CoolifyV3(), data_dir=demo.data_dir, clock=lambda: 1_800_000_000.0)
    earlier = Context(profile=CoolifyV3(), data_dir=demo.data_dir, clock=lambda: 1_700_000_000.0)
    first = backups.create(later, reason="pre-upgrade")
    second = backups.create(earlier, reason="pre-roll")  # the clock was set back in between
    assert second.time_ms < first.time_ms
    assert [b["name"] for b in backup_list(cli, demo)] == [second.name, first.name]
    r = run(cli, demo, "rollback", "--last", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["backup"] == second.name


def test_prune_refuses_while_a_run_is_interrupted(demo: DemoInstance, cli: CliRunner) -> None:
    r = upgrade_killed(cli, demo)
    assert r.returncode == -9
    lock = ".coolify-migrate/lock"  # the dead run's holder record is cleared: nothing else
    before = {k: v for k, v in snapshot(demo.data_dir).items() if k != lock}
    pruned = run(cli, demo, "backup", "prune", "--keep", "0", "--force", "--yes")
    refused(pruned, "interrupted upgrade run", "nothing is pruned until it is resolved")
    assert {k: v for k, v in snapshot(demo.data_dir).items() if k != lock} == before
    resumed = run(cli, demo, "resume")
    assert resumed.returncode in (0, 5), resumed.stderr  # finished or rolled back, never exit 1


def upgrade_killed(cli: CliRunner, demo: DemoInstance) -> subprocess.CompletedProcess[str]:
    return cli(
        "upgrade",
        "--data-dir",
        str(demo.data_dir),
        "--runtime",
        "none",
        "--manifest",
        MANIFEST,
        "--yes",
        env={"COOLIFY_MIGRATE_CRASH_AT": "backup:manifest:done"},
    )


# -- foreign and lying backups --------------------------------------------------------------------


def _other_instance(demo: DemoInstance, where: Path) -> Path:
    """The same data and key under another COOLIFY_APP_ID: a second installation of the app."""
    import shutil

    other = where / "other"
    shutil.copytree(demo.data_dir, other, symlinks=True)
    shutil.rmtree(other / ".coolify-migrate", ignore_errors=True)
    env = other / ".env"
    lines = [
        "COOLIFY_APP_ID=00000000-0000-4000-8000-000000000042"
        if line.startswith("COOLIFY_APP_ID=")
        else line
        for line in env.read_text().splitlines()
    ]
    env.write_text("\n".join(lines) + "\n")
    return other


def test_a_foreign_backup_is_refused_without_force_and_nothing_changes(
    demo: DemoInstance, cli: CliRunner, tmp_path: Path
) -> None:
    import shutil

    run(cli, demo, "backup", "create")  # this instance's own state exists
    other = _other_instance(demo, tmp_path)
    made = cli("backup", "create", "--data-dir", str(other), "--runtime", "none", "--json")
    assert made.returncode == 0, made.stderr
    name = json.loads(made.stdout.splitlines()[-1])["name"]
    for suffix in ("", ".json"):  # brought over beside this instance's database
        shutil.copy2(other / "db" / (name + suffix), demo.db_path.parent / (name + suffix))
    listed = {b["name"]: b for b in backup_list(cli, demo)}
    assert "COOLIFY_APP_ID 00000000-0000-4000-8000-000000000042" in listed[name]["foreign"]
    before = snapshot(demo.data_dir)
    r = run(cli, demo, "rollback", "--to", name, "--yes")
    refused(r, f"backup {name} belongs to another instance", "COOLIFY_APP_ID", "--force")
    assert snapshot(demo.data_dir) == before
    forced = run(cli, demo, "rollback", "--to", name, "--yes", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert "made by another instance" in forced.stderr


def _stamp_version(demo: DemoInstance, version: str) -> None:
    from coolify_migrate.stores import sqlite as db

    conn = db.connect(demo.db_path)
    try:
        with db.transaction(conn):
            db.write_meta(conn, version=version)
    finally:
        conn.close()


def test_a_manifest_edited_after_it_was_written_is_refused(
    demo: DemoInstance, cli: CliRunner
) -> None:
    made = run(cli, demo, "backup", "create", "--json")
    name = json.loads(made.stdout.splitlines()[-1])["name"]
    manifest = demo.db_path.parent / (name + ".json")
    doc = json.loads(manifest.read_text())
    doc["version"] = "3.12.36"  # the lie; size and SHA-256 still match the file
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    before = snapshot(demo.data_dir)
    r = run(cli, demo, "rollback", "--to", name, "--yes")
    refused(r, name, "manifest was changed after it was written")
    assert snapshot(demo.data_dir) == before


def test_an_older_manifest_is_restored_with_a_note_unless_it_contradicts_its_file(
    demo: DemoInstance, cli: CliRunner
) -> None:
    _stamp_version(demo, "3.12.32")
    made = run(cli, demo, "backup", "create", "--json")
    name = json.loads(made.stdout.splitlines()[-1])["name"]
    manifest = demo.db_path.parent / (name + ".json")
    doc = json.loads(manifest.read_text())
    for field in ("instance", "seal", "seq"):  # as the tool wrote them before this change
        doc.pop(field)
    lying = {**doc, "version": "3.12.36"}
    manifest.write_text(json.dumps(lying, indent=2, sort_keys=True) + "\n")
    before = snapshot(demo.data_dir)
    r = run(cli, demo, "rollback", "--to", name, "--yes")
    refused(r, "says version 3.12.36", "own record says 3.12.32")
    assert snapshot(demo.data_dir) == before
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    [listed] = [b for b in backup_list(cli, demo) if b["name"] == name]
    assert "before manifests recorded their instance" in listed["note"]
    restored = run(cli, demo, "rollback", "--to", name, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "before manifests recorded their instance" in restored.stderr
