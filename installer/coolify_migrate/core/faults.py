"""Named crash points, for the tests that kill the process at every durable step.

``checkpoint(name)`` does nothing unless the environment asks for it:

- ``COOLIFY_MIGRATE_TRACE=<file>`` appends each checkpoint name reached to that file, so a test
  can enumerate the durable steps of a command;
- ``COOLIFY_MIGRATE_CRASH_AT=<name>[#<n>]`` sends SIGKILL to this process at the n-th (default
  first) time that checkpoint is reached, as a power cut would.

This is read from the process environment on purpose: the crash tests drive the real CLI in a
subprocess, and nothing else in the library reads these variables.
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def checkpoint(name: str) -> None:
    trace = os.environ.get("COOLIFY_MIGRATE_TRACE")
    crash = os.environ.get("COOLIFY_MIGRATE_CRASH_AT")
    if not trace and not crash:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{name}#{_seen[name]}\n")
    if crash:
        want, _, nth = crash.partition("#")
        if want == name and _seen[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
