"""The command line: a thin typer layer over the library. Only this package imports typer/rich.

Errors are mapped to exit codes here and nowhere else (``main``). A traceback is shown only with
``--debug``, and every byte printed passes through the redactor.
"""

from __future__ import annotations

import gc
import os
import sys

# Importing makes some hundred thousand objects that live as long as the process: the cyclic
# collector would walk them again and again while click, typer and this package load (about 40
# collections) and free nothing. It is off until the imports below are done (``_imported``).
_COLLECTING = gc.isenabled()
gc.disable()

import traceback  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import TYPE_CHECKING, NoReturn  # noqa: E402

import click  # noqa: E402


def _typer_without_rich() -> ModuleType:
    """typer imports rich (and markdown-it) whenever rich is installed, only to draw its help:
    about 50 ms of every start. Here help and usage errors are click's plain text, and rich is
    imported by ``cli.output`` only to draw progress on a terminal (benchmarks/bench_startup.py)."""

    class Hide:  # a meta path finder (``importlib.abc.MetaPathFinder`` costs 15 ms to import)
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "rich" or name.startswith("rich."):
                raise ImportError(f"{name}: not for typer's help")

    hide = Hide()
    sys.meta_path.insert(0, hide)
    try:
        import typer as module
    finally:
        sys.meta_path.remove(hide)
    return module


if TYPE_CHECKING:
    import typer
else:
    typer = _typer_without_rich()  # before any module of this package imports typer

from coolify_migrate.apps import NAMES  # noqa: E402
from coolify_migrate.cli import common, tree  # noqa: E402
from coolify_migrate.core import interrupts  # noqa: E402
from coolify_migrate.core.errors import (  # noqa: E402
    ExitCode,
    MigrateError,
    UsageError,
    from_os_error,
)


def _imported() -> None:
    """The imports are done: what they made goes to the oldest generation (``freeze`` then
    ``unfreeze`` moves it there without walking it; one walk of it all would cost as much as the
    collections saved), and the collector is on again if it was. ``main`` then freezes what is
    loaded for the rest of the process (docs/performance.md, "Start-up"). Objects a program that
    imports this module had frozen itself stay frozen (nothing is moved then)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    if _COLLECTING:
        gc.enable()


_imported()

app = typer.Typer(
    name="coolify-migrate",
    help="Install and upgrade self-hosted Docker apps (Coolify v3) without losing data or keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=tree.Root,  # each command's module is imported, and the command built, when it runs
)


def _print_version(value: bool) -> None:
    if value:
        from coolify_migrate import __version__

        typer.echo(f"coolify-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    app_name: str = typer.Option(
        None,
        "--app",
        envvar="COOLIFY_MIGRATE_APP",
        click_type=click.Choice(NAMES),
        help="The app [default: found from the install directory, else coolify-v3]. "
        "Accepted anywhere on the line.",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the tool's version and exit.",
    ),
) -> None:
    """Install and upgrade self-hosted Docker apps without losing data or keys."""
    if app_name:
        common.choose_app(app_name)


def _take_app(args: list[str]) -> list[str]:
    """``--app NAME`` (or ``--app=NAME``) anywhere on the line: every command takes it."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--app" and i + 1 < len(args):
            common.choose_app(args[i + 1])
            i += 2
            continue
        if arg.startswith("--app="):
            common.choose_app(arg.split("=", 1)[1])
        else:
            out.append(arg)
        i += 1
    return out


_GLOBAL_VALUES = ("--data-dir", "--db", "--runtime", "--key-file")
_GLOBAL_FLAGS = ("--json", "--yes", "-y", "--debug")


def _globals_last(args: list[str]) -> list[str]:
    """The options every command takes, given before the command (``coolify-migrate
    --data-dir X status``), moved after it, where the command reads them."""
    moved: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name = args[i].split("=", 1)[0]
        if name in _GLOBAL_VALUES and "=" not in args[i] and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 2
        elif name in _GLOBAL_VALUES or args[i] in _GLOBAL_FLAGS:
            moved.append(args[i])
            i += 1
        else:
            break
    return args[i:] + moved if moved and i < len(args) else args


def _no_empty_arguments(args: list[str]) -> None:
    """No option or argument takes an empty value: ``--to ""`` is not "latest", ``--data-dir ""``
    is not the current directory, ``--secret ""`` is not the data key."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and eq and not value.strip():
            raise UsageError(f"{name} is empty", hint="give it a value, or leave it out")
        if not arg.strip():
            after = args[i - 1] if i and args[i - 1].startswith("-") else None
            raise UsageError(
                f"{after} is empty" if after else "an argument is empty",
                hint="give it a value, or leave it out",
            )


def main(argv: list[str] | None = None) -> None:
    if argv is None:  # the process's own command line (not a test calling in)
        _settle_imports()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("COOLIFY_MIGRATE_DEBUG") == "1"
    interrupts.install()
    try:
        common.reset()
        _no_empty_arguments(list(args))
        args = _globals_last(_take_app(list(args)))
        command = typer.main.get_command(app)
        tree.tidy(command)
        code = command.main(args=args, prog_name="coolify-migrate", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except MigrateError as err:
        common.report_error(err, debug=debug, json_mode="--json" in args)
        sys.exit(int(err.exit_code))
    except click.exceptions.NoArgsIsHelpError as err:
        if err.ctx is not None:  # the help, once, on stdout; click leaves it to us here
            common.write_out(sys.stdout, err.ctx.get_help() + "\n")
        sys.exit(int(ExitCode.USAGE))
    except click.UsageError as err:
        hint = f"see '{err.ctx.command_path} --help'" if err.ctx else "see --help"
        usage = UsageError(err.format_message(), hint=hint)
        common.report_error(usage, debug=False, json_mode="--json" in args)
        sys.exit(int(ExitCode.USAGE))
    except click.exceptions.Abort:
        common.print_error_line("error: aborted")
        sys.exit(130)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except interrupts.Interrupted as err:
        _interrupted(err)
    except KeyboardInterrupt:
        common.print_error_line("error: interrupted")
        sys.exit(130)
    except OSError as err:  # a file-system refusal no guard caught: structured, never exit 1
        structured = from_os_error(err)
        common.report_error(structured, debug=debug)
        sys.exit(int(structured.exit_code))
    except Exception as err:  # the one place an unexpected error becomes exit 1
        if debug:
            common.print_error_line(common.redact("".join(traceback.format_exception(err))))
        said = common.redact(str(err)).splitlines()[0] if str(err) else ""
        common.report_error(
            MigrateError(f"unexpected {type(err).__name__}: {said}"),
            debug=False,
            json_mode="--json" in args,
        )
        sys.exit(int(ExitCode.UNEXPECTED))


def _settle_imports() -> None:
    """What is loaded by now (click, typer, this package's modules) lives as long as the process:
    frozen, the cyclic collector never walks it again, in a collection during the command or in
    the interpreter's last one at exit (docs/performance.md, "Start-up": about 10 ms of ``status``)."""
    gc.freeze()


def _interrupted(sig: interrupts.Interrupted) -> NoReturn:
    """SIGINT or SIGTERM: the run has unwound (transaction rolled back, lock released); one line
    says where the instance stands and what to run next. Exit 128 + the signal (130, 143)."""
    ctx = common.current_ctx()
    if ctx is None:
        line = f"interrupted by {sig.name}: no change was made"
    else:
        from coolify_migrate.engine import stopped

        line = stopped.state_line(ctx, sig)
    common.report_interrupt(sig.name, line, sig.exit_code)
    sys.exit(sig.exit_code)
