"""One log per run in the state directory (``upgrade-<epoch-ms>.log``), redacted like all output.

``RunLog`` wraps the context's output: everything said to the user is also appended to the log,
with a timestamp, plus events that the terminal does not show (hook output). ``logged`` puts one
around a run and writes how the run ended (the error, or the signal that stopped it): after a
hangup (SIGHUP) the terminal is gone, and the log is where the outcome is found.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from coolify_migrate.core import interrupts, private
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ExitCode, MigrateError
from coolify_migrate.core.output import Output, Progress


class _LoggedProgress:
    def __init__(self, log: RunLog, inner: Progress, phase: str, unit: str) -> None:
        self.log, self.inner, self.phase, self.unit, self.done = log, inner, phase, unit, 0
        self.started = time.monotonic()
        self.closed = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.inner.advance(n)

    def close(self) -> None:
        """Once: a phase closed again (by a ``finally`` after its own close) logs no second
        line with a later time."""
        if self.closed:
            return
        self.closed = True
        self.inner.close()
        took = time.monotonic() - self.started
        self.log.write(f"{self.phase}: {self.done} {self.unit} done in {took:.1f} s")


class RunLog:
    """The file is created on the first line written: a run refused by a guard leaves none."""

    def __init__(self, ctx: Context, kind: str) -> None:
        self.ctx = ctx
        self.inner: Output = ctx.out
        self.path: Path = ctx.state_dir / f"{kind}-{ctx.now_ms()}.log"
        self._fh: TextIO | None = None
        self._hangup_noted = False

    def write(self, text: str) -> None:
        if self._fh is None:
            self.ctx.ensure_state_dir()
            fd = private.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
        if interrupts.hung_up() and not self._hangup_noted:
            self._hangup_noted = True
            self.write("the terminal hung up (SIGHUP): the run goes on to its end, told only here")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ctx.clock()))
        self._fh.write(f"{stamp} {self.ctx.redactor.redact(text)}\n")
        self._fh.flush()

    # Output protocol
    def info(self, msg: str) -> None:
        self.write(msg)
        self.inner.info(msg)

    def warn(self, msg: str) -> None:
        self.write(f"warning: {msg}")
        self.inner.warn(msg)

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "hook-output":
            self.write(f"  [{fields.get('hook')}] {fields.get('line')}")
        else:
            self.write(f"event {kind} {json.dumps(fields, default=str, sort_keys=True)}")
        self.inner.event(kind, **fields)

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress:
        self.write(f"{phase}: started ({total if total is not None else '?'} {unit})")
        return _LoggedProgress(self, self.inner.progress(phase, total, unit), phase, unit)

    def ending(self, how: str) -> None:
        if self._fh is not None or interrupts.hung_up():
            self.write(f"ended: {how}")

    def discard(self) -> None:
        """A run refused before any change: the error line said everything; no log is left."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


@contextmanager
def logged(ctx: Context, kind: str) -> Iterator[RunLog]:
    """A run with its log as the context's output; how it ended is the log's last line. A run
    refused before any change (exit 3) leaves no log, unless the terminal hung up."""
    log = RunLog(ctx, kind)
    outer, ctx.out = ctx.out, log
    try:
        yield log
    except MigrateError as err:
        if err.exit_code == ExitCode.REFUSED and not interrupts.hung_up():
            log.discard()
        else:
            log.ending(f"error: {err.message} (hint: {err.hint})")
        raise
    except interrupts.Interrupted as sig:
        log.ending(f"stopped by {sig.name}")
        raise
    except BaseException as err:
        log.ending(f"unexpected {type(err).__name__}")
        raise
    else:
        log.ending("done")
    finally:
        ctx.out = outer
        log.close()
