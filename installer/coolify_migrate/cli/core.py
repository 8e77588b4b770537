"""status, version, demo."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from coolify_migrate import __version__
from coolify_migrate.cli import app
from coolify_migrate.cli.common import (
    DataDirOpt,
    DbOpt,
    DebugOpt,
    JsonOpt,
    KeyFileOpt,
    RuntimeName,
    RuntimeOpt,
    emit,
    make_ctx,
)


@app.command("status")
def status_cmd(
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show the installed version, database, .env keys (names only) and key fingerprint."""
    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    from coolify_migrate import status

    report = status.collect(ctx)
    emit(json, report, status.human(report))


@app.command("version")
def version_cmd(
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print the version of coolify-migrate."""
    emit(
        json,
        {"coolify_migrate": __version__, "python": platform.python_version()},
        [f"coolify-migrate {__version__}"],
    )


@app.command("demo")
def demo_cmd(
    data_dir: DataDirOpt = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="App version the demo pretends to run [default: the last one before the "
            "required key roll, 3.12.32]",
        ),
    ] = None,
    installed_at: Annotated[
        str | None,
        typer.Option("--installed-at", help="Install time (ISO-8601); seeds the legacy key"),
    ] = None,
    rows: Annotated[
        int, typer.Option("--rows", help="Scale: units of rows (about 119 encrypted values each)")
    ] = 5,
    db: DbOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Create a legacy Coolify v3 instance with a date-seeded key, to try the tool on."""
    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, events=True)
    from coolify_migrate.engine import demo

    made = demo.create(
        ctx, version=version or demo.DEFAULT_DEMO_VERSION, installed_at=installed_at, rows=rows
    )
    result = {
        "data_dir": str(made.data_dir),
        "database": str(made.db_path),
        "version": made.version,
        "installed_at_ms": made.installed_at_ms,
        "encrypted_values": made.value_count,
        "key_fingerprint": made.key.fingerprint,
    }
    emit(
        json,
        result,
        [
            f"created a legacy {ctx.profile.title} {made.version} instance in {made.data_dir}",
            f"  database:  {made.db_path} ({made.value_count} encrypted values)",
            f"  data key:  {made.key.fingerprint} (date-seeded from {made.installed_at_ms} ms)",
        ],
    )


@app.command("stamp")
def stamp_cmd(
    version: Annotated[str, typer.Argument(help="The version the instance really runs")],
    force: Annotated[
        bool, typer.Option("--force", help="Record it even if no source says so")
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Record the installed version (tool record and .env TAG) when the sources disagree.

    Nothing is migrated. Without --force the version must be one a source states, and not one
    the running container contradicts.
    """
    from coolify_migrate.engine import stamp
    from coolify_migrate.state import lock

    ctx = make_ctx(
        changes=True, data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file
    )
    with lock.acquire(ctx, "stamp"):
        result = stamp.stamp(ctx, version, force=force)
    emit(json, result, [f"recorded {result['version']} as the installed version"])
