"""A big demo's rows are written by a forked writer process: the same instance as the one written
in process, and a writer that fails or dies fails the demo at once, leaving nothing behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3 import demo as coolify_v3_demo
from coolify_migrate.apps.coolify_v3 import demo_forked_writer
from coolify_migrate.apps.coolify_v3.demo_writer import Batch, RowWriter
from coolify_migrate.core.errors import ChangeFailed
from support import DEMO_MS, SRC, LeakGuard, make_demo
from test_demo_schema import contents


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[demo_forked_writer.ForkedWriter]:
    """Every demo of the test writes in a forked process, one write per unit; the writers made."""
    made: list[demo_forked_writer.ForkedWriter] = []

    class Spy(demo_forked_writer.ForkedWriter):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(coolify_v3_demo, "UNITS_PER_WRITE", 1)
    monkeypatch.setattr(coolify_v3_demo, "can_fork", lambda: True)  # however busy the machine
    monkeypatch.setattr(coolify_v3_demo, "ForkedWriter", Spy)
    return made


def in_the_writer(parent: int) -> bool:
    return os.getpid() != parent


def test_the_forked_writer_stores_the_instance_written_in_process(
    tmp_path: Path, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as here_only:
        here_only.setattr(coolify_v3_demo, "can_fork", lambda: False)
        here = make_demo(tmp_path / "here", leak_guard, rows=3)
    made: list[Any] = []
    real = coolify_v3_demo.ForkedWriter
    monkeypatch.setattr(coolify_v3_demo, "UNITS_PER_WRITE", 1)
    monkeypatch.setattr(coolify_v3_demo, "can_fork", lambda: True)
    monkeypatch.setattr(
        coolify_v3_demo, "ForkedWriter", lambda *a: made.append(real(*a)) or made[-1]
    )
    there = make_demo(tmp_path / "there", leak_guard, rows=3)
    assert len(made) == 1 and made[0].proc.exitcode == 0  # written there, and it exited
    assert there.plaintexts == here.plaintexts and there.counted == here.counted
    assert contents(there) == contents(here)
    conn = sqlite3.connect(there.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def _fail_in_writer(monkeypatch: pytest.MonkeyPatch, at_call: int, fail: Any) -> None:
    """The writer process runs ``fail`` instead of its ``at_call``-th write (this process's
    writes are left alone)."""
    parent, calls = os.getpid(), [0]
    write = RowWriter.write

    def failing(self: RowWriter, batch: Batch, tick: Any = None) -> None:
        if in_the_writer(parent):
            calls[0] += 1
            if calls[0] == at_call:
                fail()
        write(self, batch, tick)

    monkeypatch.setattr(RowWriter, "write", failing)


def _nothing_left(data_dir: Path) -> None:
    assert not list((data_dir / "db").glob("*")), "a database or a .creating file was left"
    assert not (data_dir / ".env").exists()


def test_a_killed_writer_fails_the_demo_at_once(
    tmp_path: Path, forked: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_in_writer(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGKILL))
    begun = time.monotonic()
    with pytest.raises(ChangeFailed, match="writer process was killed by SIGKILL"):
        coolify_v3_demo.create(
            tmp_path / "d", version="3.12.32", installed_at_ms=DEMO_MS, rows=6, record=False
        )
    assert time.monotonic() - begun < 30  # no wait on the dead writer
    assert len(forked) == 1 and forked[0].proc.exitcode == -signal.SIGKILL  # reaped
    _nothing_left(tmp_path / "d")


def test_an_error_in_the_writer_is_raised_as_itself(
    tmp_path: Path, forked: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    _fail_in_writer(monkeypatch, 3, full)
    with pytest.raises(sqlite3.OperationalError, match=r"^database or disk is full$"):
        coolify_v3_demo.create(
            tmp_path / "d", version="3.12.32", installed_at_ms=DEMO_MS, rows=6, record=False
        )
    assert len(forked) == 1 and forked[0].proc.exitcode == 1
    _nothing_left(tmp_path / "d")


def test_a_failure_here_kills_the_writer(
    tmp_path: Path, forked: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or any error) while the rows are made: the writer is killed and reaped before the
    file is removed."""
    unit = coolify_v3_demo.Instance.unit

    def interrupted(self: Any, u: int) -> None:
        if u == 4:
            raise KeyboardInterrupt
        unit(self, u)

    monkeypatch.setattr(coolify_v3_demo.Instance, "unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        coolify_v3_demo.create(
            tmp_path / "d", version="3.12.32", installed_at_ms=DEMO_MS, rows=6, record=False
        )
    assert len(forked) == 1 and not forked[0].proc.is_alive()
    assert forked[0].proc.exitcode == -signal.SIGKILL
    _nothing_left(tmp_path / "d")


# The real command, with a writer process however busy the machine is (``can_fork`` reads the
# load average)
_FORKING_CLI = (
    "import sys; from coolify_migrate.apps.coolify_v3 import demo; "
    "demo.can_fork = lambda: True; from coolify_migrate.cli import main; "
    "sys.argv[0] = 'coolify-migrate'; main()"
)


def test_the_command_reports_a_dead_writer(tmp_path: Path, leak_guard: LeakGuard) -> None:
    """The real command, its writer killed at its second batch (a crash point): exit 5, one
    line saying what happened, no instance."""
    rows = 2 * coolify_v3_demo.UNITS_PER_WRITE + 1
    argv = ["demo", "--data-dir", str(tmp_path / "d"), "--rows", str(rows)]
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "COOLIFY_MIGRATE_CRASH_AT": "demo:writer-batch#2",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _FORKING_CLI, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    leak_guard.record("demo stdout", proc.stdout)
    leak_guard.record("demo stderr", proc.stderr)
    assert proc.returncode == 5, proc.stderr
    assert "the demo's writer process was killed by SIGKILL" in proc.stderr
    assert "Traceback" not in proc.stderr
    _nothing_left(tmp_path / "d")


@pytest.mark.parametrize(
    ("cores", "busy", "forks"),
    [
        (2, 0.0, True),
        (2, 0.4, True),
        (2, 0.6, False),
        (2, 3.0, False),
        (1, 0.0, False),
        (8, 6.0, True),
        (8, 6.6, False),
    ],
)
def test_a_writer_is_forked_only_with_a_core_free(
    monkeypatch: pytest.MonkeyPatch, cores: int, busy: float, forks: bool
) -> None:
    """It costs more CPU time in all: with the machine's cores busy now it would only slow the
    demo. What ran in the last minute does not count (the load average says 4.5 here)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    monkeypatch.setattr(demo_forked_writer, "busy_cores", lambda: busy)
    monkeypatch.setattr(os, "getloadavg", lambda: (4.5, 4.5, 4.5))
    assert demo_forked_writer.can_fork() is forks


@pytest.mark.parametrize(("load", "forks"), [(0.3, True), (1.1, True), (1.6, False)])
def test_without_proc_stat_the_load_average_decides(
    monkeypatch: pytest.MonkeyPatch, load: float, forks: bool
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(demo_forked_writer, "busy_cores", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert demo_forked_writer.can_fork() is forks


def test_a_process_that_keeps_a_core_busy_is_counted() -> None:
    """The real /proc/stat: a spinning process keeps about one core busy while this one sleeps."""
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat here")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # started and spinning
        seen = demo_forked_writer.busy_cores()
    finally:
        spinner.kill()
        spinner.wait()
    assert seen is not None and seen >= 0.8
