"""Named crash points, for the tests that kill the process at every durable step.

``checkpoint(name)`` does nothing unless the environment asks for it:

- ``COOLIFY_MIGRATE_TRACE=<file>`` appends each checkpoint name reached to that file, so a test
  can enumerate the durable steps of a command;
- ``COOLIFY_MIGRATE_CRASH_AT=<name>[#<n>]`` sends SIGKILL to this process at the n-th (default
  first) time that checkpoint is reached, as a power cut would;
- ``COOLIFY_MIGRATE_PAUSE_AT=<name>[#<n>]`` writes the checkpoint's name to the file
  ``COOLIFY_MIGRATE_PAUSE_FILE`` there and waits (at most a minute) for a signal, so a test can
  send SIGINT, SIGTERM or SIGHUP at exactly that moment (``core.interrupts``).

This is read from the process environment on purpose: the crash tests drive the real CLI in a
subprocess, and nothing else in the library reads these variables.
"""

from __future__ import annotations

import os
import signal
import time

from coolify_migrate.core import interrupts

_seen: dict[str, int] = {}


def checkpoint(name: str) -> None:
    trace = os.environ.get("COOLIFY_MIGRATE_TRACE")
    crash = os.environ.get("COOLIFY_MIGRATE_CRASH_AT")
    pause = os.environ.get("COOLIFY_MIGRATE_PAUSE_AT")
    if not trace and not crash and not pause:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{name}#{_seen[name]}\n")
    if crash and _is(crash, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if pause and _is(pause, name):
        _pause(name)


def _is(wanted: str, name: str) -> bool:
    want, _, nth = wanted.partition("#")
    return want == name and _seen[name] == int(nth or 1)


def _pause(name: str) -> None:
    seen = interrupts.received()
    with open(os.environ["COOLIFY_MIGRATE_PAUSE_FILE"], "a", encoding="utf-8") as fh:
        fh.write(f"{name}\n")
    deadline = time.monotonic() + 60
    while interrupts.received() == seen and time.monotonic() < deadline:
        time.sleep(0.02)  # SIGINT/SIGTERM raise out of here; SIGHUP returns and ends the wait
