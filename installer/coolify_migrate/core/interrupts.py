"""What the tool does when it is told to stop (SIGINT, SIGTERM) or loses its terminal (SIGHUP).

- SIGINT and SIGTERM raise ``Interrupted`` in the main thread, wherever it is: every durable
  step is already safe against a kill at any point (``core.faults``), and unwinding also rolls back
  the open transaction and releases the lock. The exit code is 128 + the signal's number (130 for
  SIGINT, 143 for SIGTERM), as shells and service managers expect.
- Once the tool is stopping, a second signal only says "please wait"; a third ends the process at
  once (what it leaves is what a power cut leaves: ``resume`` handles it).
- Inside ``deferred(...)`` (a revert putting the instance back) a signal is noted and the work
  finishes: stopping half-way through a revert helps no one.
- SIGHUP never stops a run: the terminal is gone, so the output is sent to /dev/null (no EIO or
  EPIPE from a dead terminal) and the run carries on to its end; its run log holds the outcome.

A signal the tool was started with ignored (``nohup``, a background job) stays ignored. Forked
workers inherit these handlers until they set their own: there, SIGINT and SIGHUP are ignored
and SIGTERM ends the worker without a word (the parent decides what happens to the run).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: the run stops where it is and unwinds. Not a
    ``KeyboardInterrupt``: typer turns one of those into a silent exit 130 before the command
    line can say what state the instance is in; like one, no ``except Exception`` catches it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    owner: int | None = None  # the pid that installed the handlers
    received = 0  # every signal handled, for a test's pause (``core.faults``)
    stopping = 0  # SIGINT/SIGTERM seen since the run was told to stop
    hung_up = False
    deferring: str | None = None  # what is running that must finish ("reverting ...")


_state = _State()


def install() -> None:
    """Called once by the command line, before any command runs."""
    _state.owner = os.getpid()
    _state.received = _state.stopping = 0
    _state.hung_up, _state.deferring = False, None
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _on_stop)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup: its output is a file
        signal.signal(signal.SIGHUP, _on_hangup)


def in_worker() -> None:
    """First thing in a forked worker: the parent alone decides; no worker prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def received() -> int:
    return _state.received


def hung_up() -> bool:
    return _state.hung_up


@contextlib.contextmanager
def deferred(what: str) -> Iterator[None]:
    """SIGINT and SIGTERM are noted, not obeyed, until the block ends (``what`` is said)."""
    before, _state.deferring = _state.deferring, what
    try:
        yield
    finally:
        _state.deferring = before


def _say(text: str) -> None:
    """From inside a handler: straight to the file descriptor (no re-entering a Python stream)."""
    if _state.hung_up:
        return
    with contextlib.suppress(OSError):
        os.write(2, f"{text}\n".encode())


def _on_stop(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _state.owner:  # a forked worker, before ``in_worker`` ran
        if signum == signal.SIGTERM:
            os._exit(128 + signum)
        return
    _state.received += 1
    name = signal.Signals(signum).name
    if _state.deferring is not None or _state.stopping:
        _state.stopping += 1
        if _state.stopping >= 3:
            _say(f"{name} again: ending at once; run 'coolify-migrate status' to see the state")
            os._exit(128 + signum)
        what = _state.deferring or "stopping"
        _say(f"{name}: {what}, please wait (a third signal ends the process at once)")
        return
    _state.stopping = 1
    raise Interrupted(signum)


def _on_hangup(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _state.owner:
        return
    _state.received += 1
    if _state.hung_up:
        return
    _state.hung_up = True
    detach_terminal()


def detach_terminal() -> None:
    """Standard input and output become /dev/null: the terminal is gone (a hangup, or a write
    that failed with EIO or EPIPE), and the run must not fail for want of someone to tell."""
    with contextlib.suppress(OSError):
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        os.close(fd)
