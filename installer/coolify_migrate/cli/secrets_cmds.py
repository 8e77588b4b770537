"""secrets audit | roll | verify: short adapters over coolify_migrate.secrets.audit, .roll and .reencrypt.

Exit codes beyond the usual ones (coolify_migrate.core.errors.ExitCode): ``secrets audit`` exits 6 when the
key is weak (0 when it is not); ``secrets verify`` exits 5 when any value fails to decrypt under
the active key, or the database records another key; ``secrets repair`` exits 7 when it finished
but some values could not be proven (they are named and left as they were).
"""

from __future__ import annotations

from typing import Annotated

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
)
from coolify_migrate.core.errors import ExitCode, UsageError

InstalledAtOpt = Annotated[
    str | None,
    typer.Option(
        "--installed-at",
        show_default=False,
        help="When the app was installed (ISO-8601 or epoch ms): searched first",
    ),
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        show_default=False,
        help="How far each side of every piece of evidence to search: seconds, 30m, 6h, 2d "
        "[default: 24h]",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        show_default=False,
        help="Processes for the search [default: every core]",
    ),
]

ForceOpt = Annotated[bool, typer.Option("--force", help="Roll even a key that is not weak")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count what would change; no change")]

secrets_app = typer.Typer(help="Audit, roll and verify the data key.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("audit")
def audit_cmd(
    installed_at: InstalledAtOpt = None,
    window: WindowOpt = None,
    workers: WorkersOpt = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Is the data key weak? Proves a date-seeded key by its seed time. Changes nothing.

    Exit 0: not weak; 6: weak (see the reasons); 3: no key to audit.
    """
    from coolify_migrate.secrets import audit

    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    report = audit.audit(
        ctx,
        installed_at=installed_at,
        window_s=audit.parse_window(window) if window else None,
        workers=workers,
    )
    emit(json, report.as_dict(), report.lines())
    if report.weak:
        raise typer.Exit(int(ExitCode.WEAK_KEY))


@secrets_app.command("roll")
def roll_cmd(
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    yes: YesOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="Which secret: the data key (default), or another the app has, such as "
            "Redash's cookie-secret (everyone is logged out; the data key stays)",
        ),
    ] = None,
    leave: Annotated[
        list[str] | None,
        typer.Option(
            "--leave",
            help="A value under no known key to leave as it is (its label from the refusal, "
            "e.g. data_sources.encrypted_options.7); repeat for each",
        ),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Replace a weak data key: backup, one verified transaction, .env promoted. Crash-safe.

    Running it again is a no-op; after an interruption it completes the interrupted roll.
    """
    from coolify_migrate.engine import keyops
    from coolify_migrate.secrets import signing
    from coolify_migrate.state import lock

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        yes=yes,
        runtime=runtime,
        key_file=key_file,
        events=not dry_run,
    )
    ctx.leave = frozenset(leave or ())
    spec = signing.spec_of(ctx, secret) if secret else ctx.profile.data_secret
    if not spec.encrypts:
        if dry_run or leave:
            raise UsageError(
                f"--dry-run and --leave apply to the data key, not the {spec.name}",
                hint=f"'secrets roll --secret {spec.name}' changes no stored value",
            )
        with lock.acquire(ctx, "secrets roll"):
            other = keyops.roll_secret(ctx, spec.name)
        emit(json, {"event": "result", **other.as_dict()}, other.lines())
        return
    if dry_run:  # read-only: not even the lock file is written
        result = keyops.roll_key(ctx, force=force, dry_run=True)
    else:
        with lock.acquire(ctx, "secrets roll"):
            result = keyops.roll_key(ctx, force=force)
    emit(
        json,
        {"event": "result", **result.as_dict()} if not dry_run else result.as_dict(),
        result.lines(),
    )


@secrets_app.command("verify")
def verify_cmd(
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Read every value, even when the last key change proved them all"
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Decrypt every encrypted value under the active key; count per column. Changes nothing.

    Right after a key change that proved every value, while the database file is unchanged, it
    reports that proof instead of reading again (--full reads every value regardless).

    Exit 0: every value decrypts; 5: some do not (or the database records another key).
    """
    from coolify_migrate.secrets import verify

    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    report = verify.verify(ctx, full=full)
    emit(json, report.as_dict(), report.lines())
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@secrets_app.command("repair")
def repair_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the whole outcome; change nothing")
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    yes: YesOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Undo Coolify's own re-roll: recover garbled values from its prod.db_* copies, then put
    every value under one new key (KEY = BETTER in .env). Values written since are kept.

    Exit 0: every value proven; 7: done, but some values could not be proven (named, left as
    they were); 3: refused, nothing changed; 5: failed and rolled back.
    """
    from coolify_migrate.engine import keyops
    from coolify_migrate.state import lock

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        yes=yes,
        runtime=runtime,
        key_file=key_file,
        events=not dry_run,
    )
    if dry_run:
        report = keyops.repair(ctx, dry_run=True)
    else:
        with lock.acquire(ctx, "secrets repair"):
            report = keyops.repair(ctx)
    emit(
        json,
        report.as_dict() if dry_run else {"event": "result", **report.as_dict()},
        report.lines(),
    )
    if report.unproven:
        raise typer.Exit(int(ExitCode.PARTIAL))
