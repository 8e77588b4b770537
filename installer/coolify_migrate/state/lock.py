"""One run at a time: an advisory lock in the state directory, with its holder recorded.

``fcntl.flock`` is released by the kernel when the holder dies, so a lock can never outlive its
process; the holder file (pid, command, start time) names who holds it, and a holder file whose
pid is gone is reported as stale and taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coolify_migrate.core import private, procs
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import LockHeld


def holder(ctx: Context) -> dict[str, Any] | None:
    """Who holds the lock now (None when free); ``stale`` is set for a dead holder's record."""
    if not ctx.has_state_dir():
        return None
    try:
        fd = private.open_file(ctx.state_dir / "lock", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            info: dict[str, Any] = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            info = {}
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return info or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if info.get("pid") and not procs.pid_alive(int(info["pid"])):
        return {**info, "stale": True}
    return None


@contextmanager
def acquire(ctx: Context, command: str) -> Iterator[None]:
    ctx.ensure_state_dir()
    # never through a link: the tool runs as root, and truncates this file
    fd = private.open_file(ctx.state_dir / "lock", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                info = {}
            who = f"pid {info.get('pid', '?')} ({info.get('command', 'unknown command')})"
            raise LockHeld(
                f"another coolify-migrate run holds the lock: {who}", holder_pid=info.get("pid")
            ) from None
        try:
            old = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            old = {}
        if old.get("pid") and not procs.pid_alive(int(old["pid"])):
            ctx.out.warn(f"took over a stale lock left by pid {old['pid']} ({old.get('command')})")
        record = json.dumps({"pid": os.getpid(), "command": command, "started_ms": ctx.now_ms()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
