"""The upgrade engine end to end on a demo instance, with the ``none`` runtime (files only)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checks import active_key, assert_all_decrypt, file_hashes
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.stores import sqlite as db
from support import DEMO_KEY, REPO, SRC, CliRunner, LeakGuard, make_demo, tmpfs, tree_hash

MANIFEST = str(REPO / "versions.json")


def run_upgrade(
    cli: CliRunner,
    demo: DemoInstance,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return cli(
        "upgrade",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        MANIFEST,
        "--runtime",
        "none",
        "--json",
        *extra,
        env=env,
    )


def test_demo_upgrade_passes_the_required_stop_and_runs_exactly_the_plan(
    demo: DemoInstance, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    plan = cli(
        "plan",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        MANIFEST,
        "--runtime",
        "none",
        "--json",
    )
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["from"] == "3.12.32" and planned["to"] == "3.12.36"
    assert planned["required_stops"] == ["3.12.33"]

    r = run_upgrade(cli, demo)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    result = events[-1]
    assert result["outcome"] == "upgraded"
    assert (
        result["steps"]
        == [s["id"] for s in planned["steps"]]
        == ["roll-date-seeded-key", "roll-weak-key"]
    )

    env = EnvFile.load(demo.data_dir / ".env")
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    assert new.reveal() != DEMO_KEY and len(new.reveal()) == 32
    assert env.get("COOLIFY_SECRET_KEY") == env.get("COOLIFY_SECRET_KEY_BETTER")  # no re-roll by v3
    assert DEMO_KEY in [
        v for k, v in env.matching(__import__("re").compile(r"COOLIFY_SECRET_KEY_OLD_\d+"))
    ]
    assert env.get("TAG") == "3.12.36"
    assert assert_all_decrypt(demo, new) == demo.value_count
    meta = db.read_meta_file(demo.db_path)
    assert meta["version"] == "3.12.36" and meta["key_check"] == new.check_value
    status = json.loads(
        cli("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none").stdout
    )
    assert status["installed_version"] == "3.12.36" and status["key_fingerprint"] == new.fingerprint
    log = Path(result["log"])
    assert log.exists() and "roll-date-seeded-key" in log.read_text()
    verified = cli(
        "secrets", "verify", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none"
    )
    proof = json.loads(verified.stdout)  # the upgrade's roll proved every value: nothing is read
    assert proof["ok"] and proof["proven_at_ms"] and proof["values"] == demo.value_count

    again = run_upgrade(cli, demo)  # nothing left to do: a no-op
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["outcome"] == "noop"
    assert active_key(demo.data_dir) == new


def test_downgrade_is_refused_with_a_hint_to_rollback(demo: DemoInstance, cli: CliRunner) -> None:
    before = tree_hash(demo.data_dir)
    r = cli(
        "upgrade",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        MANIFEST,
        "--runtime",
        "none",
        "--to",
        "3.12.31",
    )
    assert r.returncode == 3
    assert "rollback" in r.stderr and r.stderr.count("\n") == 1
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == {
        k: v for k, v in before.items() if not k.startswith(".coolify-migrate")
    }


def _write_hook(data_dir: Path, phase: str, name: str, body: str) -> None:
    folder = data_dir / "hooks" / f"{phase}.d"
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / name
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(0o755)


def test_hooks_run_in_order_with_the_upgrade_facts(demo: DemoInstance, cli: CliRunner) -> None:
    out = demo.data_dir / "hook-trace.txt"
    _write_hook(
        demo.data_dir, "pre-upgrade", "20-second", f'echo "pre2 $COOLIFY_MIGRATE_FROM" >> {out}'
    )
    _write_hook(
        demo.data_dir,
        "pre-upgrade",
        "10-first",
        f'echo "pre1 $COOLIFY_MIGRATE_FROM $COOLIFY_MIGRATE_TO $COOLIFY_MIGRATE_BACKUP" >> {out}; echo said-hello',
    )
    _write_hook(
        demo.data_dir, "post-upgrade", "10-check", f'echo "post $COOLIFY_MIGRATE_TO" >> {out}'
    )
    r = run_upgrade(cli, demo)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("pre1 3.12.32 3.12.36 ") and "/prod.db_" in lines[0]
    assert lines[1:] == ["pre2 3.12.32", "post 3.12.36"]
    log = Path(json.loads(r.stdout.splitlines()[-1])["log"]).read_text()
    assert "said-hello" in log  # hook output captured into the run log


def test_failing_pre_upgrade_hook_aborts_before_any_change(
    demo: DemoInstance, cli: CliRunner
) -> None:
    before = file_hashes(demo.data_dir)
    _write_hook(demo.data_dir, "pre-upgrade", "10-refuse", "echo no; exit 3")
    r = run_upgrade(cli, demo)
    assert r.returncode == 3, r.stderr
    assert "pre-upgrade hook 10-refuse" in r.stderr
    assert file_hashes(demo.data_dir) == before
    status = json.loads(
        cli("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none").stdout
    )
    assert status["run_in_progress"] is None


def test_failed_post_upgrade_health_check_rolls_everything_back(
    demo: DemoInstance, cli: CliRunner
) -> None:
    before = file_hashes(demo.data_dir)
    flag = demo.data_dir / "on-failure-ran"
    _write_hook(demo.data_dir, "post-upgrade", "10-health", "echo unhealthy >&2; exit 1")
    _write_hook(demo.data_dir, "on-failure", "10-notify", f"touch {flag}")
    r = run_upgrade(cli, demo)
    assert r.returncode == 5, r.stderr
    assert "rolled back to 3.12.32" in r.stderr
    assert file_hashes(demo.data_dir) == before  # database and .env byte-identical
    assert flag.exists()
    assert assert_all_decrypt(demo, active_key(demo.data_dir)) == demo.value_count


def _fault_plugin(tmp_path: Path, body: str) -> str:
    site = tmp_path / "site"
    (site / "cm_fault_steps-0.1.dist-info").mkdir(parents=True)
    (site / "cm_fault_steps-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cm-fault-steps\nVersion: 0.1\n"
    )
    (site / "cm_fault_steps-0.1.dist-info" / "entry_points.txt").write_text(
        "[coolify_migrate.steps]\nfault = cm_fault_steps:steps\n"
    )
    (site / "cm_fault_steps.py").write_text(
        "from packaging.version import Version\n"
        "from coolify_migrate.engine.steps import Step\n"
        "def _apply(sc):\n" + body + "\n"
        "def steps(profile):\n"
        "    return [Step('fault-injection', 'a step that fails', _apply, Version('3.12.35'))]\n"
    )
    return f"{SRC}:{site}"


@pytest.mark.parametrize("where", ["inside-transaction", "after-commit"])
def test_a_step_that_raises_reverts_the_whole_upgrade(
    tmp_path: Path, demo: DemoInstance, cli: CliRunner, where: str
) -> None:
    body = (
        "    with sc.transaction() as conn:\n"
        "        conn.execute('UPDATE \"Secret\" SET name = name || \\'-x\\'')\n"
        + (
            "        raise RuntimeError('injected failure')\n"
            if where == "inside-transaction"
            else "    raise RuntimeError('injected failure')\n"
        )
    )
    path = _fault_plugin(tmp_path, body)
    plan = cli(
        "plan",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        MANIFEST,
        "--runtime",
        "none",
        "--json",
        env={"PYTHONPATH": path},
    )
    assert "fault-injection" in [s["id"] for s in json.loads(plan.stdout)["steps"]]
    before = file_hashes(demo.data_dir)
    r = run_upgrade(cli, demo, env={"PYTHONPATH": path})
    assert r.returncode == 5, r.stderr
    assert "injected failure" in r.stderr
    assert file_hashes(demo.data_dir) == before
    assert assert_all_decrypt(demo, active_key(demo.data_dir)) == demo.value_count


def test_two_upgrades_started_together_one_proceeds_one_exits_4(
    demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    _write_hook(demo.data_dir, "pre-upgrade", "10-slow", "sleep 3")
    cmd = [
        sys.executable,
        "-m",
        "coolify_migrate",
        "upgrade",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        MANIFEST,
        "--runtime",
        "none",
    ]
    env = {**__import__("os").environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    ]
    time.sleep(0.8)
    procs.append(
        subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    )
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        leak_guard.record("concurrent upgrade", out + err)
        results.append((p.returncode, err))
    assert sorted(code for code, _ in results) == [0, 4], results
    loser = next(err for code, err in results if code == 4)
    assert "holds the lock" in loser and "pid" in loser


def test_an_instance_past_3_12_33_with_a_proven_weak_key_is_rolled_too(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    # e.g. after Coolify's manual recovery recipe put the date-seeded key back on 3.12.35
    demo = make_demo(tmp_path / "inst", leak_guard, version="3.12.35")
    plan = json.loads(
        cli(
            "plan",
            "--data-dir",
            str(demo.data_dir),
            "--manifest",
            MANIFEST,
            "--runtime",
            "none",
            "--json",
        ).stdout
    )
    assert [s["id"] for s in plan["steps"]] == ["roll-weak-key"] and plan["required_stops"] == []
    r = run_upgrade(cli, demo)
    assert r.returncode == 0, r.stderr
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    assert new != demo.key
    assert assert_all_decrypt(demo, new) == demo.value_count
    runs = list((demo.data_dir / ".coolify-migrate" / "runs").glob("upgrade-*.json"))
    prechecks = json.loads(runs[0].read_text())["data"]["prechecks"]
    assert any("date-seeded" in r for r in prechecks["roll-weak-key"]["reasons"])
    assert prechecks["roll-weak-key"]["seeds"] == {demo.key.fingerprint: demo.installed_at_ms}


def test_a_strong_key_is_not_rolled_by_the_every_upgrade_step(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, version="3.12.35")
    assert (
        cli(
            "secrets",
            "roll",
            "--yes",
            "--force",
            "--data-dir",
            str(demo.data_dir),
            "--runtime",
            "none",
        ).returncode
        == 0
    )
    strong = active_key(demo.data_dir)
    leak_guard.register(strong)
    r = run_upgrade(cli, demo)
    assert r.returncode == 0, r.stderr
    assert active_key(demo.data_dir) == strong
    assert assert_all_decrypt(demo, strong) == demo.value_count


def _strong_demo(tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard) -> DemoInstance:
    demo = make_demo(tmp_path / "inst", leak_guard, version="3.12.35")
    args = ("secrets", "roll", "--yes", "--force", "--data-dir", str(demo.data_dir))
    assert cli(*args, "--runtime", "none").returncode == 0
    leak_guard.register(active_key(demo.data_dir))
    return demo


def test_a_step_with_nothing_to_do_reuses_the_proof_and_reads_no_value_again(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = _strong_demo(tmp_path, cli, leak_guard)
    r = run_upgrade(cli, demo)
    assert r.returncode == 0, r.stderr
    said = [json.loads(line).get("message", "") for line in r.stdout.splitlines()]
    assert "  verified: every value was proven under the active key in this run" in said
    # one full pass (the pre-stop analysis): no other "checking every value's key" bar
    events = [json.loads(line) for line in r.stdout.splitlines()]
    ended = [e for e in events if e["event"] == "progress" and e.get("final")]
    assert [e["phase"] for e in ended].count("checking every value's key") == 1


def test_a_hook_that_writes_a_value_no_key_reads_fails_the_verify_and_is_rolled_back(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    """A pre-upgrade hook may write to the database: what the run proved before it no longer
    counts, so the step's verify reads every value again and finds the stranger."""
    demo = _strong_demo(tmp_path, cli, leak_guard)
    stranger = '{"iv":"' + "ab" * 16 + '","content":"' + "ff" * 12 + '"}'
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('UPDATE \\\"Secret\\\" SET value = ? WHERE rowid = 1', (sys.argv[2],)); "
        "c.commit()"
    )
    _write_hook(
        demo.data_dir,
        "pre-upgrade",
        "10-write",
        f"{sys.executable} -c \"{script}\" {demo.db_path} '{stranger}'",
    )
    before = file_hashes(demo.data_dir)["db/prod.db"]
    r = run_upgrade(cli, demo)
    assert r.returncode == 5, r.stderr
    assert "do not decrypt under the active key after the step" in r.stderr
    assert file_hashes(demo.data_dir)["db/prod.db"] == before  # the backup, put back


def test_no_room_for_the_backup_is_refused_before_anything_stops(
    tmp_path: Path, demo: DemoInstance, cli: CliRunner
) -> None:
    with tmpfs(tmp_path / "small", "1m") as small:
        db_path = small / "prod.db"
        db_path.write_bytes(demo.db_path.read_bytes())  # ~150 KiB: a backup needs 1 MiB more
        before = file_hashes(demo.data_dir) | {"db": db_path.read_bytes().hex()}
        r = cli(
            "upgrade",
            "--data-dir",
            str(demo.data_dir),
            "--db",
            str(db_path),
            "--manifest",
            MANIFEST,
            "--runtime",
            "none",
        )
        assert r.returncode == 3, r.stderr
        assert "pre-upgrade backup needs" in r.stderr and r.stderr.count("\n") == 1
        assert file_hashes(demo.data_dir) | {"db": db_path.read_bytes().hex()} == before
        assert sorted(p.name for p in small.iterdir()) == ["prod.db"]
        assert not (demo.data_dir / ".coolify-migrate" / "journal.json").exists()
