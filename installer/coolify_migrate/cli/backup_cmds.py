"""backup create | list | verify | prune, and the top-level rollback: adapters over
``coolify_migrate.backups`` and ``coolify_migrate.backups.rollback``.

The mutating commands (create, prune, rollback) take the run lock; list and verify never take it
and never write. ``backup verify`` exits 3 when any backup it checked fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer

from coolify_migrate.cli import app
from coolify_migrate.cli.common import (
    DataDirOpt,
    DbOpt,
    DebugOpt,
    JsonOpt,
    KeyFileOpt,
    RuntimeName,
    RuntimeOpt,
    YesOpt,
    emit,
    make_ctx,
    print_error_line,
)
from coolify_migrate.core.errors import ExitCode, UsageError
from coolify_migrate.stores.names import REASONS

if TYPE_CHECKING:  # the library is imported by the command that runs, not by every start
    from coolify_migrate.backups import BackupInfo
    from coolify_migrate.core.context import Context

backup_app = typer.Typer(
    help="Create, list, verify and prune database backups.", no_args_is_help=True
)
app.add_typer(backup_app, name="backup")

NameArg = Annotated[str | None, typer.Argument(help="A backup's file name [default: every backup]")]
ReasonOpt = Annotated[
    str, typer.Option("--reason", click_type=click.Choice(REASONS), help="Why the backup is made")
]
PinOpt = Annotated[bool, typer.Option("--pin", help="Never prune this backup (unless --force)")]
FullOpt = Annotated[bool, typer.Option("--full", help="Run integrity_check instead of quick_check")]
KeepOpt = Annotated[
    int | None,
    typer.Option(
        "--keep",
        min=0,
        show_default=False,
        help="How many of the newest backups to keep (required)",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Also delete protected backups")]
ForeignOpt = Annotated[
    bool, typer.Option("--force", help="Restore even a backup made by another instance")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="The backup to restore (its file name)")]
LastOpt = Annotated[
    bool,
    typer.Option(
        "--last",
        help="Revert the interrupted run, else restore the newest pre-upgrade/pre-roll backup",
    ),
]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _key(info: BackupInfo) -> str:
    if info.key_fingerprint is None:
        return "none needed" if info.key_known is None else "unknown"
    return info.key_fingerprint + ("" if info.key_known is not False else " (not known here)")


def _fields(info: BackupInfo, declared: int) -> str:
    if info.fields_absent is None:
        return "-"
    return f"{declared - len(info.fields_absent)}/{declared}"


def _line(info: BackupInfo, declared: int) -> str:
    verified = {True: "ok", False: "FAILED", None: "-"}[info.verified]
    return (
        f"{info.name:<34} {info.time_iso:<24} {info.kind:<17} {info.reason or '-':<11} "
        f"{info.version or '-':<9} {_mib(info.size):>10}  {_key(info):<18} "
        f"{_fields(info, declared):<6} {verified}" + ("  pinned" if info.pinned else "")
    )


def _fail(message: str, hint: str) -> NoReturn:
    print_error_line(f"error: {message} (hint: {hint})")
    raise typer.Exit(int(ExitCode.REFUSED))


@backup_app.command("create")
def create_cmd(
    reason: ReasonOpt = "manual",
    pin: PinOpt = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Take a consistent backup of the database beside it, with a manifest naming its key."""
    from coolify_migrate import backups
    from coolify_migrate.state import lock

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        runtime=runtime,
        key_file=key_file,
        events=True,
    )
    with lock.acquire(ctx, "backup create"):
        info = backups.create(ctx, reason=reason, pinned=pin)
    emit(
        json,
        info.as_dict(),
        [f"  in {info.path.parent}, sha256 {info.sha256}"],  # the summary line came from create()
    )


@backup_app.command("list")
def list_cmd(
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List backups, newest first: ours and the ones Coolify or its docs made. Changes nothing."""
    from coolify_migrate import backups

    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    found = backups.list_backups(ctx)
    declared = len(ctx.profile.encrypted_columns)
    lines = [
        f"{'NAME':<34} {'TIME (UTC)':<24} {'KIND':<17} {'REASON':<11} {'VERSION':<9} "
        f"{'SIZE':>10}  {'KEY':<18} {'FIELDS':<6} VERIFIED"
    ] + [_line(b, declared) for b in found]
    lines += [f"  {b.name}: {b.note}" for b in found if b.note]
    if not found:
        lines = [f"no backups in {backups.backup_dir(ctx)}"]
    emit(
        json,
        {
            "directory": str(backups.backup_dir(ctx)),
            "fields_declared": declared,
            "backups": [b.as_dict() for b in found],
        },
        lines,
    )


@backup_app.command("verify")
def verify_cmd(
    name: NameArg = None,
    full: FullOpt = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check integrity, and size plus SHA-256 against the manifest. Changes nothing.

    Exit 3 when any backup checked fails.
    """
    from coolify_migrate import backups

    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    results = backups.verify(ctx, name, full=full)
    lines = [
        f"{r['name']}: {'ok' if r['ok'] else 'FAILED'} (checksum {r['checksum']}, integrity "
        f"{'ok' if r['integrity'] == 'ok' else 'failed'})"
        for r in results
    ]
    emit(
        json,
        {"results": results, "ok": all(r["ok"] for r in results)},
        lines or ["no backups to verify"],
    )
    bad = [r for r in results if not r["ok"]]
    if bad:
        _fail(
            f"{bad[0]['name']}: {bad[0]['problems'][0]}"
            + (f" (and {len(bad) - 1} more failed)" if len(bad) > 1 else ""),
            "do not restore a backup that fails verification; restore another one",
        )


def _ask_prune(ctx: Context, json_mode: bool) -> Any:
    def ask(doomed: list[BackupInfo]) -> bool:
        if not json_mode:
            emit(
                False,
                {},
                [f"would delete {len(doomed)} backup(s):"]
                + [f"  {b.name}  ({b.time_iso}, {b.kind}, {_mib(b.size)})" for b in doomed],
            )
        return ctx.confirm(f"delete these {len(doomed)} backup(s)?")

    return ask


@backup_app.command("prune")
def prune_cmd(
    keep: KeepOpt = None,
    force: ForceOpt = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    yes: YesOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete all but the newest N backups; keeps pinned ones, the newest pre-upgrade one and the
    last backup under each older key, unless --force. Asks first unless --yes."""
    from coolify_migrate import backups
    from coolify_migrate.state import lock

    if keep is None:
        raise UsageError("backup prune needs --keep N", hint="e.g. --keep 5 keeps the 5 newest")
    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        yes=yes,
        runtime=runtime,
        key_file=key_file,
    )
    with lock.acquire(ctx, "backup prune"):
        result = backups.prune(ctx, keep=keep, force=force, confirm=_ask_prune(ctx, json))
    lines = [
        f"kept {name}: {p['reason']}"
        for p in result["protected"]
        for name in [p["name"]]
        if name not in result["deleted"]
    ]
    lines += [f"deleted {n}" for n in result["deleted"]] or ["nothing to delete"]
    if result["confirmed"] is False:
        emit(json, result, [line for line in lines if not line.startswith("nothing")])
        _fail(
            f"not confirmed: {len(result['would_delete'])} backup(s) left in place",
            "run again with --yes to delete them",
        )
    emit(json, result, lines)


def _ask_rollback(ctx: Context, json_mode: bool) -> Any:
    def ask(info: BackupInfo) -> bool:
        if not json_mode:
            emit(
                False,
                {},
                [
                    f"restore {info.name} ({info.time_iso}, version {info.version or 'unknown'}, "
                    f"key {_key(info)}); the current database is kept as a pre-restore backup"
                ],
            )
        return ctx.confirm("restore it now?")

    return ask


@app.command("rollback")
def rollback_cmd(
    to: ToOpt = None,
    last: LastOpt = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    yes: YesOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    force: ForeignOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Restore a backup together with the key it needs, and start the app at its version."""
    from coolify_migrate.backups import rollback
    from coolify_migrate.state import lock

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        yes=yes,
        runtime=runtime,
        key_file=key_file,
        events=True,  # a stop, a safety backup, every value checked, a start: it streams
    )
    with lock.acquire(ctx, "rollback"):
        result = rollback.rollback(
            ctx, to=to, last=last, confirm=_ask_rollback(ctx, json), force=force
        )
    emit(
        json,
        result,
        [
            f"restored {result['backup']}: version {result['version'] or 'unknown'}, "
            f"key {result['key_fingerprint']}",
            f"  {result['values_verified']} encrypted values decrypt under the active key",
            f"  the previous database is kept as {result['safety_backup']}"
            if result["safety_backup"]
            else "  there was no previous database to keep",
        ],
    )
