"""Kill `secrets roll` (SIGKILL, as a power cut would) at every durable step; then `secrets roll`
again, or `resume`, must leave every value decrypting, under ONE key, to its original plaintext."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

from checks import active_key, assert_all_decrypt
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.secrets import verify as verifying
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import Keyring
from support import CliRunner, LeakGuard, make_demo


def _roll(cli: CliRunner, data: Path, **env: str):  # type: ignore[no-untyped-def]
    return cli("secrets", "roll", "--yes", "--data-dir", str(data), "--runtime", "none", env=env)


def _check_one_key(
    demo: DemoInstance, data: Path, guard: LeakGuard, *, rolled: bool = True
) -> list[str]:
    """Problems with the instance in ``data`` (a copy of ``demo``): empty means all is well.
    ``rolled=False`` accepts the other clean outcome: reverted to the old key (nothing changed)."""
    key = active_key(data)
    guard.register(key)
    env = EnvFile.load(data / ".env")
    problems = []
    better = env.get("COOLIFY_SECRET_KEY_BETTER")
    if (better or rolled) and env.get("COOLIFY_SECRET_KEY") != better:
        problems.append("KEY != BETTER")  # v3 would re-encrypt on its next start
    try:
        assert_all_decrypt(demo, key, data / "db" / "prod.db")
    except AssertionError as err:
        problems.append(f"values: {err}")
    ctx = Context(profile=CoolifyV3(), data_dir=data)
    if [e for e in Keyring(ctx).entries if e.status == "pending"]:
        problems.append("a key is still pending")
    if journal.current(ctx) is not None:
        problems.append("a journal is still open")
    if rolled and key == demo.key:
        problems.append("the weak key is still the active key")
    return problems


def test_kill_at_every_durable_step_then_complete(
    tmp_path: Path, leak_guard: LeakGuard, cli: CliRunner
) -> None:
    traced = make_demo(tmp_path / "trace", leak_guard, rows=1)
    trace = tmp_path / "trace.txt"
    proc = _roll(cli, traced.data_dir, COOLIFY_MIGRATE_TRACE=str(trace))
    assert proc.returncode == 0, proc.stderr
    leak_guard.register(active_key(traced.data_dir))
    points = trace.read_text().split()
    assert len(points) >= 6, points
    for must in (
        "roll:keyring-pending:done#1",
        "roll:before-commit#1",
        "roll:committed#1",
        "roll:env:before-replace#1",
        "roll:keyring-active:done#1",
    ):
        assert must in points, f"{must} missing from {points}"

    failures: list[str] = []
    for i, point in enumerate(points):
        demo = make_demo(tmp_path / f"crash{i}", leak_guard, rows=1)
        killed = _roll(cli, demo.data_dir, COOLIFY_MIGRATE_CRASH_AT=point)
        if killed.returncode != -signal.SIGKILL:
            failures.append(
                f"{point}: not killed (exit {killed.returncode}): {killed.stderr[-300:]}"
            )
            continue
        # `status` explains any state in which a roll is under way
        st = cli("status", "--data-dir", str(demo.data_dir), "--runtime", "none", "--json")
        report = json.loads(st.stdout)
        keyring = Keyring(Context(profile=CoolifyV3(), data_dir=demo.data_dir))
        pending = [e for e in keyring.entries if e.status == "pending"]
        if pending and not (report["run_in_progress"] or {}).get("interrupted"):
            failures.append(f"{point}: a key is pending but status shows no interrupted run")
        # complete it two ways: `resume` on a copy, the same command again on the original
        copy = tmp_path / f"resume{i}"
        shutil.copytree(demo.data_dir, copy, symlinks=True)
        resumed = cli("resume", "--data-dir", str(copy), "--runtime", "none")
        if resumed.returncode != 0:
            failures.append(f"{point}: resume exit {resumed.returncode}: {resumed.stderr[-300:]}")
        else:
            # resume completes a roll whose key was recorded; one stopped before that is reverted
            problems = _check_one_key(demo, copy, leak_guard, rolled=bool(pending))
            failures.extend(f"{point} (resume): {p}" for p in problems)
            counts = verifying.verify(Context(profile=CoolifyV3(), data_dir=copy), full=True)
            if not counts.ok:
                failures.append(f"{point} (resume): verify says {counts.as_dict()}")
        again = _roll(cli, demo.data_dir)
        if again.returncode != 0:
            failures.append(f"{point}: roll again exit {again.returncode}: {again.stderr[-300:]}")
            continue
        failures.extend(
            f"{point} (roll): {p}" for p in _check_one_key(demo, demo.data_dir, leak_guard)
        )
        verify = cli("secrets", "verify", "--data-dir", str(demo.data_dir), "--runtime", "none")
        if verify.returncode != 0:
            failures.append(f"{point}: secrets verify exit {verify.returncode}")
    assert not failures, "\n".join(failures)
