"""One log per run in the state directory (``upgrade-<epoch-ms>.log``), redacted like all output.

``RunLog`` wraps the context's output: everything said to the user is also appended to the log,
with a timestamp, plus events that the terminal does not show (hook output).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from coolify_migrate.core import private
from coolify_migrate.core.context import Context
from coolify_migrate.core.output import Output, Progress


class _LoggedProgress:
    def __init__(self, log: RunLog, inner: Progress, phase: str) -> None:
        self.log, self.inner, self.phase, self.done = log, inner, phase, 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.inner.advance(n)

    def close(self) -> None:
        self.inner.close()
        self.log.write(f"{self.phase}: {self.done} done")


class RunLog:
    """The file is created on the first line written: a run refused by a guard leaves none."""

    def __init__(self, ctx: Context, kind: str) -> None:
        self.ctx = ctx
        self.inner: Output = ctx.out
        self.path: Path = ctx.state_dir / f"{kind}-{ctx.now_ms()}.log"
        self._fh: TextIO | None = None

    def write(self, text: str) -> None:
        if self._fh is None:
            self.ctx.ensure_state_dir()
            fd = private.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
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

    def progress(self, phase: str, total: int | None) -> Progress:
        self.write(f"{phase}: started ({total if total is not None else '?'} items)")
        return _LoggedProgress(self, self.inner.progress(phase, total), phase)

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
