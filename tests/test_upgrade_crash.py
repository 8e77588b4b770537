"""SIGKILL the upgrade at every durable step; ``resume`` (or ``rollback --last``) must always end
with the instance either exactly as before or fully upgraded, every value decrypting to its
original plaintext under the one key in .env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checks import active_key, assert_all_decrypt, file_hashes
from coolify_migrate.stores import sqlite as db
from support import REPO, CliRunner, LeakGuard, make_demo

MANIFEST = str(REPO / "versions.json")


def _upgrade(cli: CliRunner, data_dir: Path, env: dict[str, str]) -> int:
    r = cli(
        "upgrade", "--data-dir", str(data_dir), "--manifest", MANIFEST, "--runtime", "none", env=env
    )
    return r.returncode


def _checkpoints(tmp_path: Path, cli: CliRunner, guard: LeakGuard) -> list[str]:
    demo = make_demo(tmp_path / "trace", guard)
    trace = tmp_path / "trace.txt"
    assert _upgrade(cli, demo.data_dir, {"COOLIFY_MIGRATE_TRACE": str(trace)}) == 0
    guard.register(active_key(demo.data_dir))
    return trace.read_text().split()


def _assert_consistent(
    demo_dir: Path, demo: object, before: dict[str, str], guard: LeakGuard
) -> str:
    key = active_key(demo_dir)
    guard.register(key)
    assert_all_decrypt(demo, key)  # type: ignore[arg-type]
    meta = db.read_meta_file(demo_dir / "db" / "prod.db")
    if file_hashes(demo_dir) == before:
        return "as-before"
    assert meta.get("version") == "3.12.36", f"neither before nor upgraded: {meta}"
    assert meta.get("key_check") == key.check_value
    return "upgraded"


@pytest.mark.slow
def test_sigkill_at_every_durable_step_then_resume(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    points = _checkpoints(tmp_path, cli, leak_guard)
    assert len(points) >= 15, points
    assert any(p.startswith("journal:upgrade:") for p in points)
    outcomes: dict[str, str] = {}
    for i, point in enumerate(points):
        demo = make_demo(tmp_path / f"c{i}", leak_guard)
        before = file_hashes(demo.data_dir)
        code = _upgrade(cli, demo.data_dir, {"COOLIFY_MIGRATE_CRASH_AT": point})
        assert code == -9, f"{point}: expected SIGKILL, got {code}"
        r = cli("resume", "--data-dir", str(demo.data_dir), "--runtime", "none", "--json")
        assert r.returncode == 0, f"{point}: resume failed: {r.stderr}"
        outcomes[point] = _assert_consistent(demo.data_dir, demo, before, leak_guard)
        status = json.loads(
            cli("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none").stdout
        )
        assert status["run_in_progress"] is None, point
    assert "upgraded" in outcomes.values()


@pytest.mark.slow
def test_sigkill_then_rollback_last_restores_the_exact_instance(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    points = [
        p
        for p in _checkpoints(tmp_path, cli, leak_guard)
        if p.startswith(("journal:upgrade:", "roll:"))
    ]
    assert points
    for i, point in enumerate(points):
        demo = make_demo(tmp_path / f"r{i}", leak_guard)
        before = file_hashes(demo.data_dir)
        assert _upgrade(cli, demo.data_dir, {"COOLIFY_MIGRATE_CRASH_AT": point}) == -9
        r = cli(
            "rollback", "--last", "--data-dir", str(demo.data_dir), "--runtime", "none", "--yes"
        )
        if r.returncode == 3 and "no backup" in r.stderr:
            # killed before the pre-upgrade backup existed: nothing had changed yet
            assert file_hashes(demo.data_dir) == before, point
            continue
        assert r.returncode == 0, f"{point}: {r.stderr}"
        assert file_hashes(demo.data_dir) == before, point
        assert_all_decrypt(demo, active_key(demo.data_dir))
