"""Shared option types, the context factory, and printing (always redacted)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from coolify_migrate.apps import DEFAULT, NAMES, detect, get_profile
from coolify_migrate.core.app import Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import MigrateError, UsageError
from coolify_migrate.core.output import Progress
from coolify_migrate.core.secret import Redactor
from coolify_migrate.runtimes import make_runtime

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="COOLIFY_DIR",
        help="Install directory [default: ~/coolify for Coolify v3, /opt/redash for Redash]",
    ),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="The app's SQLite database, if not in the default place")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (read commands) or JSON events")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to every question")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks (secrets stay redacted)")]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        help="What runs the app: docker (its container, or its Compose project for Redash), "
        "compose, none, or auto (docker when reachable)",
    ),
]

KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        show_default=False,
        help="A file of keys this instance may have used, one per line (NAME=value lines too, "
        "e.g. the app container's /app/.env); never printed, each proven by the data",
    ),
]


def positive_seconds(value: float) -> float:
    """A duration option: a finite number above zero (``-5``, ``0``, ``nan``, ``inf`` refused)."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value!r} is not a positive number of seconds")
    return value


_REDACTOR = Redactor()


def redact(text: str) -> str:
    return _REDACTOR.redact(text)


def print_error_line(text: str) -> None:
    sys.stderr.write(redact(text).rstrip("\n") + "\n")
    sys.stderr.flush()


def report_error(err: MigrateError, *, debug: bool) -> None:
    if debug:
        import traceback

        print_error_line("".join(traceback.format_exception(err)))
    if _STATE.get("json"):
        sys.stdout.write(redact(json.dumps(err.as_dict())) + "\n")
    print_error_line(f"error: {err.message} (hint: {err.hint})")


_STATE: dict[str, Any] = {}


class _TerminalProgress:
    def __init__(self, out: TerminalOutput, phase: str, total: int | None) -> None:
        self.out, self.phase, self.total, self.done = out, phase, total, 0
        self._last = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.out.json_mode:
            return
        if self.total and sys.stderr.isatty():
            pct = int(100 * self.done / self.total)
            if pct != self._last:
                self._last = pct
                sys.stderr.write(f"\r{self.phase}: {pct:3d}% ({self.done}/{self.total})")
                sys.stderr.flush()

    def close(self) -> None:
        if self.out.json_mode:
            self.out.event("progress", phase=self.phase, done=self.done, total=self.total)
        elif self._last >= 0:
            sys.stderr.write("\n")


class TerminalOutput:
    """Human lines on stdout; with --json, JSON events on stdout (mutating commands only)."""

    def __init__(self, *, json_mode: bool, events: bool) -> None:
        self.json_mode = json_mode
        self.events = events

    def _write(self, stream: Any, text: str) -> None:
        stream.write(redact(text) + "\n")
        stream.flush()

    def info(self, msg: str) -> None:
        if self.json_mode:
            if self.events:
                self._write(sys.stdout, json.dumps({"event": "info", "message": msg}))
        else:
            self._write(sys.stdout, msg)

    def warn(self, msg: str) -> None:
        self._write(sys.stderr, f"warning: {msg}")

    def event(self, kind: str, **fields: Any) -> None:
        if self.json_mode and self.events:
            self._write(sys.stdout, json.dumps({"event": kind, **fields}, default=str))

    def progress(self, phase: str, total: int | None) -> Progress:
        return _TerminalProgress(self, phase, total)


def resolve_runtime(name: str) -> str:
    if name != "auto":
        return name
    host = os.environ.get("DOCKER_HOST", "")
    sock = host[len("unix://") :] if host.startswith("unix://") else "/var/run/docker.sock"
    if host and not host.startswith("unix://"):
        return "docker"
    return "docker" if Path(sock).exists() else "none"


def reset() -> None:
    """Forget the previous command's choices (the CLI may run more than once in a process)."""
    _STATE.clear()


def choose_app(name: str) -> None:
    """The app named on the command line (``--app``); checked here, used by ``make_ctx``."""
    if name not in NAMES:
        raise UsageError(f"unknown app {name!r}", hint=f"--app takes one of: {', '.join(NAMES)}")
    _STATE["app"] = name


def app_and_dir(data_dir: Path | None) -> tuple[Profile, Path]:
    """The app and its install directory. The app: ``--app``, else ``COOLIFY_MIGRATE_APP``,
    else the one whose layout the directory has, else Coolify v3. The directory: ``--data-dir``
    (or ``COOLIFY_DIR``), else the app's default (``~/coolify``, ``/opt/redash``); with neither
    app nor directory given, the first default directory an app recognises."""
    name = (
        _STATE.get("app")
        or os.environ.get("COOLIFY_MIGRATE_APP")
        or os.environ.get("COOLIFY_MIGRATE_PROFILE")
    )
    if data_dir is not None:
        directory = data_dir.expanduser().absolute()
        return get_profile(name or detect(directory) or DEFAULT), directory
    if name:
        profile = get_profile(name)
        return profile, Path(profile.default_dir).expanduser().absolute()
    for candidate in NAMES:
        profile = get_profile(candidate)
        directory = Path(profile.default_dir).expanduser().absolute()
        if profile.recognises(directory):
            return profile, directory
    profile = get_profile(DEFAULT)
    return profile, Path(profile.default_dir).expanduser().absolute()


def _runtime_for(profile: Profile, name: str) -> str:
    """``docker`` means the app's own kind: a Compose project for an app that runs as one."""
    return profile.runtime_kind if name == "docker" else name


def make_ctx(
    *,
    data_dir: Path | None,
    db: Path | None = None,
    json_mode: bool = False,
    yes: bool = False,
    runtime: str = "none",
    events: bool = False,
    key_file: Path | None = None,
) -> Context:
    _STATE["json"] = json_mode
    profile, directory = app_and_dir(data_dir)
    ctx = Context(
        data_dir=directory,
        db_override=db.expanduser().absolute() if db else None,
        profile=profile,
        out=TerminalOutput(json_mode=json_mode, events=events),
        redactor=_REDACTOR,
        runtime_name=_runtime_for(profile, resolve_runtime(runtime)),
        runtime_factory=make_runtime,
        assume_yes=yes,
    )
    if key_file is not None:
        from coolify_migrate.secrets import keyfile

        ctx.extra_keys = keyfile.load(key_file.expanduser(), names=ctx.profile.secret_names)
        for cand in ctx.extra_keys:
            _REDACTOR.add(cand.key)
    return ctx


def emit(json_mode: bool, result: dict[str, Any], lines: list[str]) -> None:
    if json_mode:
        sys.stdout.write(redact(json.dumps(result, default=str, sort_keys=True)) + "\n")
    else:
        for line in lines:
            sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def confirm(ctx: Context, question: str) -> bool:
    if ctx.assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    return typer.confirm(question, default=False)
