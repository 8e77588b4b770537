"""On a terminal a long phase draws a bar with its rate and ETA, and a roll ends with its times.

The CLI runs under a pseudo-terminal (stdin, stdout and stderr all a pty, as in an ssh session)
on a demo big enough that re-encrypting takes seconds; everything it drew is
read back and split into the frames a terminal would show.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from coolify_migrate.apps.coolify_v3.demo import create
from support import DEMO_MS, SRC, LeakGuard

ROWS = 1500  # about 180,000 encrypted values: seconds of re-encryption (the roll runs about
# 70,000 values/s on 2 idle cores; 250 rows drew no bar with a rate on such a machine)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = re.compile(
    r"^(?P<phase>[a-z' -]+) \S+ (?P<done>[\d,.]+)/(?P<total>[\d,.]+ \w+)\s+"
    r"(?P<rate>[\d,.]+) (?P<unit>\w+)/s\s+ETA (?P<eta>[\d.:]+(?: s)?)\s+elapsed \S+"
)


def run_on_a_terminal(args: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with a pty as its terminal; returns (exit code, what it drew, unescaped)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(SRC), "TERM": "xterm-256color", "COLUMNS": "160"}
    env["COOLIFY_MIGRATE_PHASE_LINE_S"] = "0"  # every phase's line, however fast this machine is
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "coolify_migrate", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, ANSI.sub("", drawn.decode("utf-8", "replace"))


def frames(drawn: str) -> list[str]:
    """Each line or redraw a terminal showed, in order."""
    return [part.strip() for part in re.split(r"[\r\n]+", drawn) if part.strip()]


def test_a_roll_on_a_terminal_shows_rate_and_eta_then_its_times(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    made = create(tmp_path / "big", version="3.12.32", installed_at_ms=DEMO_MS, rows=ROWS)
    leak_guard.register(made.key)
    started = time.monotonic()
    code, drawn = run_on_a_terminal(
        [
            "secrets",
            "roll",
            "--force",
            "--yes",
            "--data-dir",
            str(made.data_dir),
            "--runtime",
            "none",
        ]
    )
    took = time.monotonic() - started
    leak_guard.record("pty secrets roll", drawn)
    assert code == 0, drawn[-2000:]
    shown = frames(drawn)

    bars = [m for m in map(BAR.match, shown) if m]
    encrypting = [m for m in bars if m["phase"] == "re-encrypting"]
    assert encrypting, f"no re-encryption bar with a rate and an ETA in:\n{drawn[-3000:]}"
    assert {m["unit"] for m in encrypting} == {"values"}  # the summary's unit, not rows
    assert {m["total"] for m in encrypting} == {f"{made.value_count:,} values"}  # as summed up
    assert all(float(m["rate"].replace(",", "")) > 0 for m in encrypting)

    # the phase line that replaces the bar, in the same units and with the rate
    done = [line for line in shown if line.startswith("re-encrypting: ")]
    assert len(done) == 1 and re.fullmatch(
        r"re-encrypting: [\d,]+ values in [\d.:]+(?: s)?, [\d,]+ values/s", done[0]
    ), done

    last = shown[-1]
    times = re.fullmatch(
        r"done in (?P<total>[\d.]+) s, downtime (?P<down>[\d.]+) s \(app stopped -> started\)", last
    )
    assert times, f"the last line gives no times: {last!r}"
    assert 0 < float(times["down"]) <= float(times["total"]) <= took + 0.1
