"""SIGINT, SIGTERM and SIGHUP sent to the real CLI at several moments of an upgrade and a key roll.

Each run pauses at a named checkpoint (``COOLIFY_MIGRATE_PAUSE_AT``, ``core.faults``) and the
test sends the signal to its whole process group, as a terminal does. After SIGINT or SIGTERM:
exit 128 + the signal, no traceback, the lock free, one last line naming the state and what to
run next; running that completes, every value decrypting under the one active key. After SIGHUP
the run finishes by itself (exit 0) and its log says how it ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checks import active_key, assert_all_decrypt
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.context import Context
from coolify_migrate.state import journal, lock
from coolify_migrate.state.keyring import Keyring
from jsonschema import Draft202012Validator
from support import REPO, SRC, CliRunner, LeakGuard, make_demo

MANIFEST = str(REPO / "versions.json")
UPGRADE = ("upgrade", "--manifest", MANIFEST)
EVENTS = Draft202012Validator(json.loads((REPO / "docs" / "events.schema.json").read_text()))
ROLL = ("secrets", "roll", "--yes")

# (command, checkpoint, what the moment is)
UPGRADE_MOMENTS = [
    ("journal:upgrade:started:done#1", "before the backup"),
    ("backup:copied#1", "during the backup"),
    ("roll:before-commit#1", "during re-encryption"),
    ("journal:upgrade:step:roll-date-seeded-key:done#1", "after a step"),
]
ROLL_MOMENTS = [
    ("backup:copied#1", "during the pre-roll backup"),
    ("roll:keyring-pending:done#1", "new key recorded, data untouched"),
    ("roll:before-commit#1", "during re-encryption"),
    ("roll:committed#1", "just after the commit"),
]
CASES = [(UPGRADE, point) for point, _ in UPGRADE_MOMENTS] + [
    (ROLL, point) for point, _ in ROLL_MOMENTS
]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
# the fast set: SIGINT at every moment of the upgrade, every signal during re-encryption
FAST = (
    {(UPGRADE, p, signal.SIGINT) for p, _ in UPGRADE_MOMENTS}
    | {(UPGRADE, "roll:before-commit#1", s) for s in SIGNALS}
    | {(ROLL, "roll:before-commit#1", s) for s in SIGNALS}
)

# Demo units whose roll uses the worker pool and re-encrypts for about two seconds on two idle
# cores (about 140,000 values): a signal or a kill timed after "re-encrypting: started" lands
# while the workers still work, however fast the machine (240 units could finish first).
POOL_DEMO_ROWS = 1200


def _ctx(data: Path) -> Context:
    return Context(profile=CoolifyV3(), data_dir=data)


def _start(data: Path, command: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
    where = ("--data-dir", str(data), "--runtime", "none")
    return subprocess.Popen(
        [sys.executable, "-m", "coolify_migrate", *command, *where],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        start_new_session=True,  # its own process group, signalled as a terminal would
    )


def _when(proc: subprocess.Popen[str], ready: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, f"ended (exit {proc.returncode}) before the moment came"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.02)


def _signal_at(
    data: Path, command: tuple[str, ...], point: str, sig: int, tmp: Path, guard: LeakGuard
) -> tuple[int, str, str]:
    paused = tmp / f"paused-{os.getpid()}-{time.monotonic_ns()}.txt"
    proc = _start(
        data,
        command,
        {"COOLIFY_MIGRATE_PAUSE_AT": point, "COOLIFY_MIGRATE_PAUSE_FILE": str(paused)},
    )
    _when(proc, lambda: paused.exists() and paused.read_text().strip())
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    guard.record(f"{command[0]} stdout", out)
    guard.record(f"{command[0]} stderr", err)
    _no_process_left(proc.pid)
    return proc.returncode, out, err


def _no_process_left(group: int) -> None:
    """No worker of the run outlives it (still holding the lock's descriptor or a key)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "a process of the interrupted run is still alive"
        time.sleep(0.05)


def _assert_whole(demo: DemoInstance, data: Path, guard: LeakGuard) -> None:
    """Every value decrypts under the one active key; no run, no pending key, lock free."""
    key = active_key(data)
    guard.register(key)
    assert_all_decrypt(demo, key, data / "db" / "prod.db")
    ctx = _ctx(data)
    assert journal.current(ctx) is None
    assert not [e for e in Keyring(ctx).entries if e.status == "pending"]
    assert lock.holder(ctx) is None


def _interrupted_then_next(
    cli: CliRunner, demo: DemoInstance, command: tuple[str, ...], code: int, out: str, err: str
) -> str:
    """The checks after SIGINT/SIGTERM; runs what the last line says; returns that line."""
    data = demo.data_dir
    assert "Traceback" not in out + err
    assert lock.holder(_ctx(data)) is None, "the lock outlived the run"
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1]
    assert last.startswith("error: interrupted by SIG"), err
    assert sum("interrupted by" in line for line in lines) == 1, err
    if "'coolify-migrate resume'" in last:
        assert journal.current(_ctx(data)) is not None or "key roll" in last
        nxt = cli("resume", "--data-dir", str(data), "--runtime", "none")
    else:
        assert "run the command again" in last, last
        assert journal.current(_ctx(data)) is None
        nxt = cli(*command, "--data-dir", str(data), "--runtime", "none")
    assert nxt.returncode == 0, nxt.stderr
    assert "Traceback" not in nxt.stdout + nxt.stderr
    return last


def _run_case(
    tmp_path: Path,
    cli: CliRunner,
    guard: LeakGuard,
    command: tuple[str, ...],
    point: str,
    sig: int,
) -> None:
    demo = make_demo(tmp_path / "inst", guard, rows=1)
    code, out, err = _signal_at(demo.data_dir, command, point, sig, tmp_path, guard)
    if sig == signal.SIGHUP:
        # the run carried on to its end; the terminal was gone, so the log tells
        assert code == 0, err
        assert "Traceback" not in out + err
        logs = sorted((demo.data_dir / ".coolify-migrate").glob("*.log"))
        text = logs[-1].read_text()
        assert "the terminal hung up (SIGHUP)" in text
        assert text.splitlines()[-1].endswith("ended: done"), text[-500:]
    else:
        assert code == 128 + sig, f"exit {code}: {err[-500:]}"
        _interrupted_then_next(cli, demo, command, code, out, err)
    _assert_whole(demo, demo.data_dir, guard)
    if command == UPGRADE or sig == signal.SIGHUP:
        assert active_key(demo.data_dir) != demo.key, "the weak key is still in use"


def _params() -> list[object]:
    out = []
    for command, point in CASES:
        for sig in SIGNALS:
            marks = () if (command, point, sig) in FAST else (pytest.mark.slow,)
            name = f"{command[1] if command == ROLL else 'upgrade'}-{point}-{sig.name}"
            out.append(pytest.param(command, point, sig, marks=marks, id=name))
    return out


@pytest.mark.parametrize(("command", "point", "sig"), _params())
def test_signal_at_a_moment(
    tmp_path: Path,
    cli: CliRunner,
    leak_guard: LeakGuard,
    command: tuple[str, ...],
    point: str,
    sig: int,
) -> None:
    _run_case(tmp_path, cli, leak_guard, command, point, sig)


def test_the_line_names_what_to_run(tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard) -> None:
    """Stopped with a journal open: resume; stopped before any record: the same command again."""
    demo = make_demo(tmp_path / "a", leak_guard, rows=1)
    code, out, err = _signal_at(
        demo.data_dir, (*UPGRADE, "--json"), "backup:copied#1", signal.SIGTERM, tmp_path, leak_guard
    )
    assert code == 143
    told = json.loads(out.splitlines()[-1])  # with --json, the same line as a JSON object
    assert not list(EVENTS.iter_errors(told)), told  # an error event of docs/events.schema.json
    assert told["error"] == "Interrupted" and told["signal"] == "SIGTERM"
    assert told["exit_code"] == 143
    line = _interrupted_then_next(cli, demo, UPGRADE, code, out, err)
    assert told["message"] == line.removeprefix("error: ")
    assert "the upgrade run upgrade-" in line and "stopped at 'stop'" in line, line
    demo = make_demo(tmp_path / "b", leak_guard, rows=1)
    code, out, err = _signal_at(
        demo.data_dir, ROLL, "backup:copied#1", signal.SIGINT, tmp_path, leak_guard
    )
    assert code == 130
    line = _interrupted_then_next(cli, demo, ROLL, code, out, err)
    assert "no change was left half-done" in line, line


def test_a_signal_during_a_revert_waits_for_it(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    """A failed upgrade reverting: Ctrl-C is noted, the revert finishes, the failure is told."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    hooks = demo.data_dir / "hooks" / "post-upgrade.d"
    hooks.mkdir(parents=True)
    (hooks / "10-fail").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "10-fail").chmod(0o755)
    code, out, err = _signal_at(
        demo.data_dir, UPGRADE, "revert:db#1", signal.SIGINT, tmp_path, leak_guard
    )
    assert code == 5, err
    assert "Traceback" not in out + err
    assert "SIGINT: reverting: the instance is being put back as it was, please wait" in err
    assert "rolled back to 3.12.32" in err
    assert active_key(demo.data_dir) == demo.key  # as before the upgrade
    _assert_whole(demo, demo.data_dir, leak_guard)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_workers_re_encrypt(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard, sig: int
) -> None:
    """A database big enough for the worker pool, signalled at a timed moment of the
    re-encryption: the workers stay quiet, nothing hangs, no process is left, resume finishes."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=POOL_DEMO_ROWS)
    proc = _start(demo.data_dir, ROLL, {})
    state = demo.data_dir / ".coolify-migrate"

    def re_encrypting() -> bool:
        return any("re-encrypting: started" in p.read_text() for p in state.glob("roll-*.log"))

    _when(proc, re_encrypting)
    time.sleep(0.3)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    leak_guard.record("roll stdout", out)
    leak_guard.record("roll stderr", err)
    _no_process_left(proc.pid)
    assert proc.returncode == 128 + sig, err[-500:]
    line = _interrupted_then_next(cli, demo, ROLL, proc.returncode, out, err)
    assert "stopped at 'roll:key-pending'" in line, line  # inside the transaction
    _assert_whole(demo, demo.data_dir, leak_guard)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_worker_killed_from_outside_fails_the_roll_without_a_hang(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    """A worker dies with its task (the OOM killer, a stray kill -9): the parent must not wait
    for that task forever; the transaction rolls back and the roll fails cleanly (exit 5)."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=POOL_DEMO_ROWS)
    proc = _start(demo.data_dir, ROLL, {})
    state = demo.data_dir / ".coolify-migrate"
    _when(
        proc,
        lambda: (
            any("re-encrypting: started" in p.read_text() for p in state.glob("roll-*.log"))
            and _children(proc.pid)
        ),
    )
    os.kill(_children(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    leak_guard.record("roll stdout", out)
    leak_guard.record("roll stderr", err)
    _no_process_left(proc.pid)
    assert proc.returncode == 5, err[-500:]
    assert "Traceback" not in out + err
    assert "a re-encryption worker process died" in err
    assert lock.holder(_ctx(demo.data_dir)) is None
    assert active_key(demo.data_dir) == demo.key  # nothing changed
    again = cli(*ROLL, "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert again.returncode == 0, again.stderr
    _assert_whole(demo, demo.data_dir, leak_guard)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=30,
    )


def test_once_stopping_a_second_signal_asks_to_wait_and_a_third_ends_it() -> None:
    code = (
        "import os, signal, time\n"
        "from coolify_migrate.core import interrupts\n"
        "interrupts.install()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
        "except interrupts.Interrupted as sig:\n"
        "    print('stopping', sig.exit_code, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(0.1)\n"
        "    print('still unwinding', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "    print('not reached')\n"
    )
    done = _python(code)
    assert done.stdout.split("\n")[:2] == ["stopping 143", "still unwinding"], done.stdout
    assert "not reached" not in done.stdout
    assert "SIGINT: stopping, please wait" in done.stderr
    assert done.returncode == 130 and "Traceback" not in done.stderr


def test_a_deferred_block_finishes_and_sigint_ignored_at_start_stays_ignored() -> None:
    code = (
        "import os, signal, time\n"
        "from coolify_migrate.core import interrupts\n"
        "interrupts.install()\n"
        "with interrupts.deferred('reverting'):\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(0.1)\n"
        "    print('finished the block', flush=True)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "interrupts.install()\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.1)\n"
        "print('ignored', flush=True)\n"
    )
    done = _python(code)
    assert done.stdout.split() == ["finished", "the", "block", "ignored"], done.stderr
    assert "SIGINT: reverting, please wait" in done.stderr
    assert done.returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_rollback_puts_it_all_back_and_exits_by_the_signal(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard, sig: int
) -> None:
    """``rollback`` stopped after the backup replaced the database: the database, .env and
    keyring are put back as they were, and the exit is the signal's (130, 143) with the line
    that says so, as for every other command (it was exit 5, "a change failed")."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    data = demo.data_dir
    up = cli(*UPGRADE, "--data-dir", str(data), "--runtime", "none", "--yes")
    assert up.returncode == 0, up.stderr
    upgraded = active_key(data)
    leak_guard.register(upgraded)
    db, env = data / "db" / "prod.db", data / ".env"
    before = (db.read_bytes(), env.read_bytes())
    rollback = ("rollback", "--last", "--yes")
    code, out, err = _signal_at(data, rollback, "restore:db#1", sig, tmp_path, leak_guard)
    assert code == 128 + sig, f"exit {code}: {err[-500:]}"
    assert (db.read_bytes(), env.read_bytes()) == before
    last = _interrupted_then_next(cli, demo, rollback, code, out, err)
    assert "no change was left half-done" in last, last
    assert active_key(data) == demo.key  # the command run again rolled back
    assert_all_decrypt(demo, demo.key, db)
