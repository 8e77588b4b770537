"""The command tree, built one command at a time.

Building every command (typer reads each function's signature and type hints) and importing every
command module cost more than ``status`` takes to do its work (docs/performance.md, "Start-up").
The root group knows each command's name and the module that declares it (``MODULES``): that
module is imported, and the command built, when the command runs, completes or shows its help.
The root's own help lists the commands from what typer has registered, building none of them.
"""

from __future__ import annotations

import importlib
import inspect

import click
import typer.main
from typer.core import TyperGroup

# Every command and group under the root, in the order the root's help lists them, and the module
# of this package that declares it (tests/test_cli_contract.py holds the two together).
MODULES = {
    "rollback": "backup_cmds",
    "status": "core",
    "version": "core",
    "demo": "core",
    "stamp": "core",
    "plan": "engine_cmds",
    "upgrade": "engine_cmds",
    "resume": "engine_cmds",
    "start": "install_cmds",
    "restart": "install_cmds",
    "target-version": "install_cmds",
    "prepare-env": "install_cmds",
    "backup": "backup_cmds",
    "secrets": "secrets_cmds",
    "manifest": "engine_cmds",
}


def _root_app() -> typer.Typer:
    from coolify_migrate.cli import app

    return app


def declare(name: str) -> None:
    """Import the module that declares ``name`` (its decorators register it on the typer apps)."""
    importlib.import_module(f"coolify_migrate.cli.{MODULES[name]}")


def declare_all() -> None:
    for module in dict.fromkeys(MODULES.values()):
        importlib.import_module(f"coolify_migrate.cli.{module}")


def _registered(name: str) -> typer.models.CommandInfo | typer.models.TyperInfo | None:
    app = _root_app()
    for info in app.registered_commands:
        if info.name == name:
            return info
    for group in app.registered_groups:
        if group.name == name:
            return group
    return None


def build(name: str) -> click.Command | None:
    """The click command (or group, with its commands) for a name under the root, tidied."""
    if name not in MODULES:
        return None
    declare(name)
    info = _registered(name)
    app = _root_app()
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    if isinstance(info, typer.models.CommandInfo):
        command: click.Command = typer.main.get_command_from_info(
            info, pretty_exceptions_short=short, rich_markup_mode=markup
        )
    elif isinstance(info, typer.models.TyperInfo):
        command = typer.main.get_group_from_info(
            info, pretty_exceptions_short=short, rich_markup_mode=markup
        )
    else:
        return None
    tidy(command)
    return command


def _summary(name: str) -> click.Command | None:
    """What the root's help shows of a command (its name, help and whether it is hidden), read
    from its registration without building its parameters."""
    info = _registered(name)
    if isinstance(info, typer.models.CommandInfo):
        doc = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
        return click.Command(name, help=doc, short_help=info.short_help, hidden=info.hidden)
    if isinstance(info, typer.models.TyperInfo):
        solved = typer.main.solve_typer_info_defaults(info)
        return click.Command(
            name, help=solved.help, short_help=solved.short_help, hidden=bool(solved.hidden)
        )
    return None


class Root(TyperGroup):
    """The root group: a command is built when it is asked for, once."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None:
            command = build(cmd_name)
            if command is not None:
                self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing of the commands, from their summaries."""
        declare_all()
        summaries = {name: self.commands.get(name) or _summary(name) for name in MODULES}
        listing = TyperGroup(commands={n: c for n, c in summaries.items() if c is not None})
        listing.format_commands(ctx, formatter)


def tidy(command: click.Command) -> None:
    """No ``[default: None]`` in any help (an option without a default says nothing of one),
    and every required parameter enforced."""
    for param in command.params:
        if param.default is None and hasattr(param, "show_default"):
            param.show_default = False
        if param.required:
            _required(param)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


def _required(param: click.Parameter) -> None:
    """A required parameter given nothing is a usage error (exit 2). typer hands click a
    default of None, which this click does not count as missing."""
    process = param.process_value

    def process_value(ctx: click.Context, value: object) -> object:
        if value is None and not ctx.resilient_parsing:
            raise click.MissingParameter(ctx=ctx, param=param)
        return process(ctx, value)

    param.process_value = process_value  # type: ignore[method-assign]
