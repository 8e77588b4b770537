"""start, restart, and the hidden helpers scripts/install.sh runs (target-version, prepare-env)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from coolify_migrate.cli import app
from coolify_migrate.cli.common import (
    DataDirOpt,
    DebugOpt,
    JsonOpt,
    KeyFileOpt,
    RuntimeName,
    RuntimeOpt,
    emit,
    make_ctx,
)
from coolify_migrate.core.errors import UsageError

if TYPE_CHECKING:  # the library is imported by the command that runs, not by every start
    from coolify_migrate.core.context import Context

ManifestOpt = Annotated[
    str | None,
    typer.Option(
        "--manifest", help="versions.json: a path or an http(s) URL [default: the bundled one]"
    ),
]


def _said(ctx: Context, result: dict[str, Any], done: str) -> str:
    if result["outcome"] == "not-started":
        return (
            f"runtime none ({ctx.runtime_why}): nothing was started; this tool manages the "
            f"files only, start {ctx.profile.title} yourself"
        )
    return f"{ctx.profile.title} {result.get('version') or ''} {done}".replace("  ", " ")


@app.command("start")
def start_cmd(
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Start the app from the host .env (created on a fresh install); wait until healthy."""
    from coolify_migrate.engine import control

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        json_mode=json,
        runtime=runtime,
        key_file=key_file,
        events=True,
    )
    result = control.start(ctx)
    emit(json, result, [_said(ctx, result, "is running")])


@app.command("restart")
def restart_cmd(
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Restart the app; a container whose variables differ from the host .env is recreated."""
    from coolify_migrate.engine import control

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        json_mode=json,
        runtime=runtime,
        key_file=key_file,
        events=True,
    )
    result = control.restart(ctx)
    emit(json, result, [_said(ctx, result, "restarted")])


@app.command("target-version", hidden=True)
def target_version_cmd(
    manifest: ManifestOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="A given version (v prefix accepted)")
    ] = None,
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """(install.sh) Print the release to install: --version, else the manifest's latest."""
    from coolify_migrate.engine import install_env

    ctx = make_ctx(data_dir=data_dir, json_mode=json)
    result = install_env.target_version(ctx, manifest_src=manifest, requested=version)
    emit(json, result, [result["version"]])


@app.command("prepare-env", hidden=True)
def prepare_env_cmd(
    version: Annotated[
        str, typer.Option("--version", help="The version a fresh install starts at")
    ],
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: one of the app's settings to write (install.sh's -n -a -w -i); "
            "never a secret. Repeatable.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """(install.sh) Create .env with new secrets, or add only missing keys (old file kept)."""
    from coolify_migrate.engine import install_env

    settings = {}
    for item in setting or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r} is not KEY=VALUE", hint="e.g. --set NAME=value")
        settings[key] = value
    # writes the settings file only (never the data): no engine needed to do that
    ctx = make_ctx(data_dir=data_dir, json_mode=json, runtime=runtime, key_file=key_file)
    result = install_env.prepare_env(ctx, version=version, settings=settings)
    touched = [*result["added"], *result["changed"]]
    lines = (
        [f"created {result['env']}"]
        if result["created"]
        else (
            [f"set {', '.join(touched)}; previous file kept as {result['backup']}"]
            if touched
            else [f"{result['env']}: every key present, nothing changed"]
        )
    )
    lines += [f"wrote {name} for {version}" for name in result.get("files", [])]
    emit(json, result, lines)
