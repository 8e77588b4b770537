"""Worker processes that never outlive the command that started them."""

from __future__ import annotations

import contextlib
import os
import signal

from coolify_migrate.core import interrupts

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Call first thing in a worker: Linux sends it SIGKILL when the parent dies.

    A killed ``secrets roll`` must leave no worker behind still holding the lock file descriptor
    it inherited (and still computing with a key in memory). Signals are the parent's business
    too: the worker ignores SIGINT and SIGHUP and dies quietly on SIGTERM (``core.interrupts``).
    """
    import ctypes  # here, not at every start of the command line (docs/performance.md)

    interrupts.in_worker()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the call took effect
        os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a lock holder, a writer that left a temp file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
