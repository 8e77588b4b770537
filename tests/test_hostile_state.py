"""Hostile and unlucky state (issue 14): links and loose modes in the tool's own state, modes of
what it writes, leftovers of killed runs, the order of backups, foreign and lying backups.

Each refusal is checked for its exit code (3), its one-line message, and a tree of the instance
(and of any link's target) identical before and after, modes included.
"""

from __future__ import annotations

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
