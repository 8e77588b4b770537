"""Asked before every user is logged out: on a terminal the operator answers; without one, only
``--yes`` goes on. A "no" (or nobody to ask) changes nothing: exit 3."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support import SRC
from support import tree_hash as _tree_hash


def tree_hash(root: Path) -> dict[str, str]:
    """The instance's files; the lock file (empty once released) is the tool's, not the app's."""
    lock = root / ".coolify-migrate" / "lock"
    assert not lock.exists() or lock.stat().st_size == 0
    return _tree_hash(root, exclude=(".coolify-migrate/lock",))


def test_without_a_terminal_and_without_yes_nothing_changes(cli: Any, demo: Any) -> None:
    before = tree_hash(demo.data_dir)
    proc = cli("secrets", "roll", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: not confirmed: the data key was not rolled; nothing was changed")
    assert "pass --yes" in line and len(line.splitlines()) == 1
    assert tree_hash(demo.data_dir) == before
    json_mode = cli(
        "secrets", "roll", "--json", "--runtime", "none", "--data-dir", str(demo.data_dir)
    )
    assert json_mode.returncode == 3 and tree_hash(demo.data_dir) == before


def _on_a_terminal(args: list[str], answer: bytes, timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with a pty as its terminal; answer the question when it appears."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coolify_migrate", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        close_fds=True,
    )
    os.close(follower)
    seen, answered, end = b"", False, time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break  # the child closed the terminal
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(leader, answer + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=timeout)
    os.close(leader)
    return code, seen.decode(errors="replace")


def test_on_a_terminal_no_changes_nothing_and_yes_rolls(demo: Any, leak_guard: Any) -> None:
    args = ["secrets", "roll", "--runtime", "none", "--data-dir", str(demo.data_dir)]
    before = tree_hash(demo.data_dir)
    code, seen = _on_a_terminal(args, b"n")
    leak_guard.record("pty no", seen)
    assert "roll the data key? every user is logged out [y/N]" in seen, seen
    assert code == 3 and "not confirmed" in seen, seen
    assert tree_hash(demo.data_dir) == before

    code, seen = _on_a_terminal(args, b"y")
    leak_guard.record("pty yes", seen)
    assert code == 0, seen
    assert tree_hash(demo.data_dir) != before
    assert "Traceback" not in seen


def test_nothing_to_roll_asks_nothing(cli: Any, demo: Any, tmp_path: Path) -> None:
    rolled = cli("secrets", "roll", "--yes", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert rolled.returncode == 0, rolled.stderr
    again = cli("secrets", "roll", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert again.returncode == 0, again.stderr  # the key is strong now: no question, no change
