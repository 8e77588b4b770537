"""The key commands as an operator runs them: ``secrets roll`` and ``secrets repair`` standing on
a pinned backup taken once the app is stopped (``coolify_migrate.secrets`` does the change itself;
backups sit above it, so the backup comes in from here)."""

from __future__ import annotations

from coolify_migrate import backups
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import UsageError
from coolify_migrate.core.secret import Secret
from coolify_migrate.engine import preconditions
from coolify_migrate.secrets import repair as repairing
from coolify_migrate.secrets import roll, signing
from coolify_migrate.secrets.roll_result import RollResult
from coolify_migrate.state.runlog import logged


def _pre_roll_backup(ctx: Context) -> roll.TakeBackup:
    def take(key: Secret) -> roll.BackupRef:
        return backups.create(ctx, reason="pre-roll", pinned=True, key=key)

    return take


def _check_room(ctx: Context, dry_run: bool) -> None:
    """Room for the pre-roll backup and the roll's rollback journal, before the app stops."""
    store = ctx.store()
    if not dry_run and store.exists():
        preconditions.check_room(ctx, store, journal=True)


def roll_key(ctx: Context, *, force: bool = False, dry_run: bool = False) -> RollResult:
    """``secrets roll``: the caller holds the lock unless ``dry_run``. A roll that changes
    anything has a run log (``state.runlog``): its outcome is there even after a hangup."""
    _check_room(ctx, dry_run)
    if dry_run:
        return roll.roll(ctx, force=force, dry_run=True)
    started_ms = ctx.now_ms()
    with logged(ctx, "roll") as log:
        result = roll.roll(ctx, force=force, take_backup=_pre_roll_backup(ctx))
        result.elapsed_s = (ctx.now_ms() - started_ms) / 1000
        if result.outcome == "strong":
            result.downtime_s = 0.0  # nothing to roll: the app was never stopped
            log.discard()  # a run that had nothing to do leaves nothing behind
        if result.rolled:
            log.write(f"outcome: {result.outcome}, new key {result.new_fingerprint}")
        return result


def repair(ctx: Context, *, dry_run: bool = False) -> repairing.RepairReport:
    """``secrets repair``: the caller holds the lock unless ``dry_run``; logged like a roll."""
    _check_room(ctx, dry_run)
    if dry_run:
        return repairing.repair(ctx, dry_run=True, take_backup=_pre_roll_backup(ctx))
    with logged(ctx, "repair"):
        return repairing.repair(ctx, take_backup=_pre_roll_backup(ctx))


def roll_secret(ctx: Context, name: str) -> signing.SigningRoll:
    """``secrets roll --secret NAME`` for a secret that encrypts nothing: replaced in the
    settings file after a backup, the services recreated from it. The caller holds the lock."""
    spec = signing.spec_of(ctx, name)
    if spec.encrypts:
        raise UsageError(f"{name} is the data key", hint="'secrets roll' rolls it")
    runtime = ctx.runtime()
    runtime.check()
    ctx.agree(f"roll the {name}? every user is logged out", what=f"the {name} was not rolled")
    info = backups.create(ctx, reason="pre-roll", pinned=True)
    result = signing.roll(ctx, spec)
    result.backup = info.name
    restart = getattr(runtime, "restart", None)
    if callable(restart):
        restart()
    else:
        result.notes.append(
            "recreate every service from the settings file now (docker compose up -d "
            "--force-recreate): a running service keeps the old value until then"
        )
    return result
