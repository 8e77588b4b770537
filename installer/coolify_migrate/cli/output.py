"""What the command line prints: human lines, progress bars, and JSON lines (docs/json.md).

Human mode: messages on stdout, warnings and errors on stderr. On a terminal (stderr) a phase
draws a bar while it runs: what it does, done/total in the units its summary uses, rate, ETA and
elapsed time. A phase that took a second or more then says on stdout, terminal or not, what it
did, how long it took and at what rate (the phase line); nothing else is drawn off a terminal.

``--json``: every line on stdout is one JSON object with ``ts`` (ISO 8601 UTC, milliseconds) and
``event``. Read commands print one ``result``; commands that change things (``events``) also
stream ``info``, ``warning``, ``progress`` (at most ``JSON_EVERY_S`` apart per phase, plus the
phase's first and last) and the library's own events before it. Errors are one ``error`` line.
docs/events.schema.json is the schema of every line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from typing import Any

import click

from coolify_migrate.core import interrupts
from coolify_migrate.core.errors import MigrateError
from coolify_migrate.core.output import Progress
from coolify_migrate.core.secret import Redactor

JSON_EVERY_S = 0.5  # at most two progress events a second per phase (plus its first and last)
DRAW_EVERY_S = 0.25  # the terminal bar is redrawn at most four times a second
RATE_WINDOW_S = 10.0  # the rate (and so the ETA) is measured over the last ten seconds


def _phase_line_from() -> float:
    """A phase says what it did when it took this long (``COOLIFY_MIGRATE_PHASE_LINE_S``, default
    one second; 0: every phase says it)."""
    try:
        value = float(os.environ.get("COOLIFY_MIGRATE_PHASE_LINE_S", "1"))
    except ValueError:
        return 1.0
    return value if value >= 0 and value != float("inf") else 1.0


PHASE_LINE_FROM_S = _phase_line_from()

_REDACTOR = Redactor()


def redact(text: str) -> str:
    return _REDACTOR.redact(text)


def write_out(stream: Any, text: str) -> None:
    """Write and flush; a terminal gone (EIO, EPIPE) makes the output /dev/null, never an error."""
    try:
        stream.write(text)
        stream.flush()
    except OSError:
        interrupts.detach_terminal()


def timestamp(at: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-12-01T19:20:05.123Z``."""
    t = time.time() if at is None else at
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def json_line(event: str, **fields: Any) -> None:
    """One JSON line on stdout: ``ts`` and ``event`` first, then the event's fields."""
    doc = {"ts": timestamp(), "event": event, **fields}
    write_out(sys.stdout, redact(json.dumps(doc, default=str)) + "\n")


def command_name() -> str | None:
    """The running command as typed after the program name (``backup list``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    return " ".join(ctx.command_path.split()[1:]) or None


def print_error_line(text: str) -> None:
    write_out(sys.stderr, redact(text).rstrip("\n") + "\n")


def report_error(err: MigrateError, *, debug: bool, json_mode: bool = False) -> None:
    """The error line on stderr; with ``--json`` also an ``error`` event on stdout."""
    if debug:
        import traceback

        print_error_line("".join(traceback.format_exception(err)))
    if json_mode:
        json_line("error", **err.as_dict())
    print_error_line(f"error: {err.message} (hint: {err.hint})")


def report_interrupt(signal_name: str, line: str, exit_code: int, *, json_mode: bool) -> None:
    """The last line of a command stopped by a signal (with --json, also an ``error`` event)."""
    if json_mode:
        json_line(
            "error",
            error="Interrupted",
            signal=signal_name,
            message=line,
            hint="run the command the message names",
            exit_code=exit_code,
        )
    print_error_line(f"error: {line}")


def emit(json_mode: bool, result: dict[str, Any], lines: list[str]) -> None:
    """A command's result: its human lines, or one ``result`` event naming the command."""
    if json_mode:
        fields = {k: v for k, v in result.items() if k not in ("ts", "event", "command")}
        json_line("result", command=command_name(), **dict(sorted(fields.items())))
        return
    write_out(sys.stdout, "".join(redact(line) + "\n" for line in lines))


# -- numbers as people read them -------------------------------------------------------------


def amount(n: float, unit: str) -> str:
    if unit == "bytes":
        return f"{n / (1 << 20):,.1f} MiB"
    return f"{int(n):,} {unit}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Meter:
    """Done, elapsed, rate over a sliding window, and the ETA of one phase."""

    def __init__(self, total: int | None) -> None:
        self.total, self.done = total, 0
        self.started = time.monotonic()
        self.samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    def add(self, n: int) -> None:
        self.done += n

    def sample(self) -> None:
        now = time.monotonic()
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW_S:
            self.samples.popleft()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float | None:
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 - t0 > 0.2 and d1 > d0 else None

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(self.total - self.done, 0) / rate

    def fields(self) -> dict[str, Any]:
        rate, eta = self.rate, self.eta
        return {
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(self.elapsed, 3),
            "rate": round(rate, 3) if rate is not None else None,
            "eta_s": round(eta, 3) if eta is not None else None,
        }


class _Bar:
    """One phase: a rich task on a terminal, rate-limited JSON events, the closing phase line."""

    def __init__(self, out: TerminalOutput, phase: str, total: int | None, unit: str) -> None:
        self.out, self.phase, self.unit = out, phase, unit
        self.meter = _Meter(total)
        self.closed = False
        self._drawn = self._sent = self.meter.started
        self.task: Any = None  # rich's TaskID
        if out.json_mode:
            if out.events:
                self._send(final=False)
        elif out.bars is not None:
            self.task = out.bars.add_task(phase, total=total, bar=self)
            out.bars_open += 1
            if out.bars_open == 1:
                out.bars.start()

    def stats(self) -> str:
        m = self.meter
        done = amount(m.done, self.unit)
        if m.total is not None:
            done = f"{amount(m.done, self.unit).split()[0]}/{amount(m.total, self.unit)}"
        rate, eta = m.rate, m.eta
        speed = f"{amount(rate, self.unit)}/s" if rate is not None else f"- {self.unit}/s"
        left = duration(eta) if eta is not None else "-"
        return f"{done}  {speed}  ETA {left}  elapsed {duration(m.elapsed)}"

    def _send(self, *, final: bool) -> None:
        json_line("progress", phase=self.phase, unit=self.unit, final=final, **self.meter.fields())

    def advance(self, n: int = 1) -> None:
        self.meter.add(n)
        now = time.monotonic()
        if self.out.json_mode:
            if self.out.events and now - self._sent >= JSON_EVERY_S:
                self._sent = now
                self.meter.sample()
                self._send(final=False)
        elif (
            self.task is not None
            and self.out.bars is not None
            and now - self._drawn >= DRAW_EVERY_S
        ):
            self._drawn = now
            self.meter.sample()
            self.out.bars.update(self.task, completed=self.meter.done)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.meter.sample()
        m = self.meter
        if self.out.json_mode:
            if self.out.events:
                self._send(final=True)
            return
        if self.task is not None and self.out.bars is not None:
            self.out.bars.remove_task(self.task)
            self.out.bars_open -= 1
            if self.out.bars_open == 0:
                self.out.bars.stop()
        elapsed = m.elapsed
        if elapsed < PHASE_LINE_FROM_S:
            return
        rate = f", {amount(m.done / elapsed, self.unit)}/s" if m.done else ""
        write_out(
            sys.stdout, f"{self.phase}: {amount(m.done, self.unit)} in {duration(elapsed)}{rate}\n"
        )


def _bars() -> Any:
    """rich's live display on stderr, imported only when a terminal is there to draw on (rich
    costs tens of milliseconds of start-up that read commands and scripts do not need)."""
    from rich.console import Console
    from rich.progress import BarColumn, ProgressColumn, Task, TextColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class Stats(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(task.fields["bar"].stats())

    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        Stats(),
        console=Console(file=sys.stderr),
        # a drawing thread: the elapsed time moves during a step that reports nothing inside
        # itself (one SQLite backup step, pg_dump); it never writes to a child
        refresh_per_second=1 / DRAW_EVERY_S,
        transient=True,  # the phase line replaces the bar when the phase ends
    )


class TerminalOutput:
    """The library's ``Output`` for the command line (see the module docstring)."""

    def __init__(self, *, json_mode: bool, events: bool) -> None:
        self.json_mode = json_mode
        self.events = events
        self.bars: Any = None  # rich's Progress, on a terminal only
        self.bars_open = 0
        if not json_mode and sys.stderr.isatty():
            self.bars = _bars()

    def info(self, msg: str) -> None:
        if self.json_mode:
            if self.events:
                json_line("info", message=msg)
            return
        write_out(sys.stdout, redact(msg) + "\n")

    def warn(self, msg: str) -> None:
        if self.json_mode and self.events:
            json_line("warning", message=msg)
        print_error_line(f"warning: {msg}")

    def event(self, kind: str, **fields: Any) -> None:
        if self.json_mode and self.events:
            json_line(kind, **fields)

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress:
        return _Bar(self, phase, total, unit)
