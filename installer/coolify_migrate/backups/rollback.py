"""``rollback``: put a backup back together with the key its values need, or nothing at all.

``restore`` is the core (the upgrade engine calls it while holding the lock and its own journal;
the steps are ``coolify_migrate.backups.restore.Restoration``); ``rollback`` is the command around it: choose
the backup (``--to NAME``, or ``--last``: the backup of an interrupted run, else the newest
pre-upgrade or pre-roll backup), stop the app, restore, start the app at the backup's version,
journal kind ``rollback``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coolify_migrate import backups
from coolify_migrate.backups import BackupInfo
from coolify_migrate.backups.restore import Restoration
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import BackupRefused, MigrateError, Refused, UsageError
from coolify_migrate.secrets import host_key
from coolify_migrate.state import journal

ROLLBACK_REASONS = ("pre-upgrade", "pre-roll")


def restore(
    ctx: Context,
    info: BackupInfo,
    *,
    journal_doc: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Restore ``info`` with the key it needs; the caller holds the lock and handles the runtime.
    ``force``: even a backup of another instance."""
    plan = Restoration(ctx, info, journal_doc=journal_doc, force=force)
    plan.prepare()
    plan.apply()
    return plan.commit()


def choose(ctx: Context, *, to: str | None, last: bool) -> tuple[BackupInfo, dict[str, Any] | None]:
    """The backup to roll back to, and the interrupted run it resolves (``--last``), if any."""
    if (to is None) == (not last):
        raise UsageError("give exactly one of --to NAME or --last")
    current = journal.current(ctx)
    if not last:
        if current is not None:
            raise Refused(
                f"an interrupted {current['kind']} run ({current['run_id']}) stopped at "
                f"'{current['phase']}'",
                hint="run 'coolify-migrate resume' to finish it, or 'rollback --last' to revert it",
            )
        return backups.find(ctx, to or ""), None
    if current is not None:
        name = current.get("data", {}).get("backup")
        if not name:
            raise BackupRefused(
                f"the interrupted {current['kind']} run ({current['run_id']}) has no backup to "
                f"roll back to: it stopped at '{current['phase']}' before taking one",
                hint="run 'coolify-migrate resume' to finish or undo it",
            )
        return backups.find(ctx, name), current
    found = [b for b in backups.list_backups(ctx) if b.reason in ROLLBACK_REASONS]
    if not found:
        raise BackupRefused(
            "there is no backup to roll back to: no pre-upgrade or pre-roll backup",
            hint="pick one with --to NAME; 'backup list' shows them all",
        )
    return found[0], None


def rollback(
    ctx: Context,
    *,
    to: str | None = None,
    last: bool = False,
    confirm: Callable[[BackupInfo], bool] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The ``rollback`` command: the caller holds the lock. ``force``: even a backup of another
    instance (refused otherwise, naming it)."""
    info, resolving = choose(ctx, to=to, last=last)
    plan = Restoration(ctx, info, journal_doc=resolving, force=force)
    plan.prepare()
    if confirm is not None and not confirm(info):
        raise Refused("rollback not confirmed: nothing was changed", hint="run again with --yes")
    doc = resolving or journal.begin(
        ctx, "rollback", backup=info.name, version=info.version, key=info.key_fingerprint
    )
    plan.journal_doc = doc
    runtime = ctx.runtime()
    try:
        runtime.stop()
    except MigrateError as err:
        if resolving is None:
            journal.finish(ctx, doc, f"refused: {err.message}")
        raise
    try:
        plan.apply()
        before = host_key.Snapshot.take(ctx) if ctx.runtime_name != "none" else None
        if info.version:
            runtime.rollback_to(info.version)
        else:
            runtime.start()
        if before is not None:  # the app is healthy: did its start leave every value alone?
            before.check(ctx, what="after the rollback")
    except BaseException as err:
        changed = plan.changed
        failure = plan.fail(err) if changed else err
        try:
            runtime.start()  # the previous version, on the previous data
        except MigrateError as start_err:
            ctx.out.warn(f"the app could not be started again: {start_err.message}")
        if resolving is None:
            journal.finish(ctx, doc, f"failed: {failure}")
        if changed and not plan.stopped_in_order(err):
            raise failure from err
        raise  # nothing changed, or a signal once all was put back (exit 130/143, its line)
    result = plan.commit()
    journal.finish(ctx, doc, "reverted" if resolving is not None else "done")
    result["resolved_run"] = resolving["run_id"] if resolving is not None else None
    ctx.out.info(
        f"restored {info.name} (version {info.version or 'unknown'}, "
        f"key {result['key_fingerprint']})"
    )
    return result
