"""Shared option types and the context factory; printing is ``coolify_migrate.cli.output``."""

from __future__ import annotations

import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coolify_migrate.apps import DEFAULT, NAMES, default_dir, detect, get_profile, recognises
from coolify_migrate.cli import output
from coolify_migrate.cli.output import _REDACTOR, TerminalOutput
from coolify_migrate.cli.output import emit as emit  # the commands import these from here
from coolify_migrate.cli.output import print_error_line as print_error_line
from coolify_migrate.cli.output import redact as redact
from coolify_migrate.cli.output import report_error as report_error
from coolify_migrate.cli.output import write_out as write_out
from coolify_migrate.core.errors import Refused, UsageError

if TYPE_CHECKING:  # imported by the command that runs (make_ctx), not by every start or help
    from coolify_migrate.core.app import Profile
    from coolify_migrate.core.context import Context
    from coolify_migrate.runtimes import choice

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


class RuntimeName(StrEnum):
    """``--runtime``: its choices are listed in the help and checked by click (exit 2)."""

    auto = "auto"
    docker = "docker"
    compose = "compose"
    none = "none"


RuntimeOpt = Annotated[
    RuntimeName,
    typer.Option(
        "--runtime",
        help="What runs the app: docker (its container, or its Compose project for Redash), "
        "compose, none (files only), or auto (docker when an engine answers at DOCKER_HOST, "
        "the current Docker context or the default socket; 'status' says which and why)",
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


_STATE: dict[str, Any] = {}


def report_interrupt(signal_name: str, line: str, exit_code: int) -> None:
    output.report_interrupt(signal_name, line, exit_code, json_mode=bool(_STATE.get("json")))


def reset() -> None:
    """Forget the previous command's choices (the CLI may run more than once in a process)."""
    _STATE.clear()


def current_ctx() -> Context | None:
    """The context of the command running now, once it made one."""
    from coolify_migrate.core.context import Context

    ctx = _STATE.get("ctx")
    return ctx if isinstance(ctx, Context) else None


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
        return get_profile(name), default_dir(name)
    for candidate in NAMES:
        if recognises(candidate, default_dir(candidate)):
            return get_profile(candidate), default_dir(candidate)
    return get_profile(DEFAULT), default_dir(DEFAULT)


def _runtime_for(profile: Profile, name: str) -> str:
    """``docker`` means the app's own kind: a Compose project for an app that runs as one."""
    return profile.runtime_kind if name == "docker" else name


def _engine_guard(ctx: Context, picked: choice.Choice) -> None:
    """A command that changes something never falls back to files only when the instance's data
    are where only the engine reaches them."""
    where = ctx.profile.data_in_runtime(ctx)
    if where is None:
        return
    raise Refused(
        f"{ctx.profile.title} in {ctx.data_dir}: {where}, and {picked.why.removeprefix('auto: ')}",
        hint="start Docker or point DOCKER_HOST at it, then run the command again "
        "(--runtime none manages host files only)",
    )


def make_ctx(
    *,
    data_dir: Path | None,
    db: Path | None = None,
    json_mode: bool = False,
    yes: bool = False,
    runtime: str = "none",
    events: bool = False,
    key_file: Path | None = None,
    changes: bool = False,
) -> Context:
    """The context a command runs in. ``changes``: the command changes the instance (it then
    refuses when ``--runtime auto`` finds no engine but the data live in one)."""
    from coolify_migrate.core.context import Context
    from coolify_migrate.runtimes import choice, make_runtime

    _STATE["json"] = json_mode
    profile, directory = app_and_dir(data_dir)
    picked = choice.choose(getattr(runtime, "value", runtime))
    if picked.host and picked.name == "docker" and not os.environ.get("DOCKER_HOST"):
        # a Docker context or the rootless socket: the SDK and the docker CLI read DOCKER_HOST
        os.environ["DOCKER_HOST"] = picked.host
    ctx = Context(
        data_dir=directory,
        db_override=db.expanduser().absolute() if db else None,
        profile=profile,
        out=TerminalOutput(json_mode=json_mode, events=events),
        redactor=_REDACTOR,
        runtime_name=_runtime_for(profile, picked.name),
        runtime_why=picked.why,
        runtime_factory=make_runtime,
        assume_yes=yes,
    )
    ctx.confirm = lambda question: confirm(ctx, question)
    _STATE["ctx"] = ctx  # for the line an interrupted command ends with (``cli.main``)
    if changes and picked.engine_silent:
        _engine_guard(ctx, picked)
    if key_file is not None:
        from coolify_migrate.secrets import keyfile

        ctx.extra_keys = keyfile.load(key_file.expanduser(), names=ctx.profile.secret_names)
        for cand in ctx.extra_keys:
            _REDACTOR.add(cand.key)
    return ctx


def confirm(ctx: Context, question: str) -> bool:
    """Yes with --yes; otherwise asked on a terminal (on stderr, so stdout stays the command's
    output). Without a terminal, or with --json, nobody can answer: no."""
    if ctx.assume_yes:
        return True
    if _STATE.get("json") or not sys.stdin.isatty():
        return False
    return bool(typer.confirm(question, default=False, err=True))
