"""``start`` and ``restart``: run the app as the host files describe it (install.sh uses both).

``start`` is what makes a fresh install run: ``upgrade`` is a no-op there (the new ``.env`` already
names the target version), so the container is created here. On an instance that already runs
it changes nothing. Both refuse to touch an instance with an interrupted run in its journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coolify_migrate import backups
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import MigrateError, Refused
from coolify_migrate.secrets import host_key
from coolify_migrate.state import journal, lock


def _guard(ctx: Context) -> None:
    running = journal.current(ctx)
    if running is not None:
        raise Refused(
            f"an interrupted {running['kind']} run ({running['run_id']}) "
            f"stopped at '{running['phase']}'",
            hint="run 'coolify-migrate resume' first",
        )


def _guarded(ctx: Context, what: str, go: Callable[[], None]) -> list[str]:
    """Settle the key on the host, start, then check the app changed no encrypted value; if it
    did, put the database back from the copy taken just before and stop the app (exit 5)."""
    notes = host_key.settle(ctx)
    for note in notes:
        ctx.out.info(note)
    before = host_key.Snapshot.take(ctx)
    backup = None
    if before is not None and ctx.runtime_name != "none":
        backup = backups.create(ctx, reason="pre-start")
    go()
    if before is None:
        return notes
    try:
        before.check(ctx, what=what)
    except MigrateError:
        ctx.runtime().stop()
        if backup is not None:
            ctx.store().restore(backup.path)
            ctx.out.warn(f"the database was put back from {backup.name}; the app is stopped")
        raise
    return notes


def start(ctx: Context) -> dict[str, Any]:
    with lock.acquire(ctx, "start"):
        _guard(ctx)
        runtime = ctx.runtime()
        runtime.check()
        made = ctx.profile.initialise(ctx)  # a fresh install's empty database (Redash)
        if made:
            ctx.out.info(made)
        notes = _guarded(ctx, "start", runtime.start)
        return {
            "outcome": "running" if runtime.name != "none" else "not-started",
            "runtime": runtime.name,
            "version": runtime.current_image_tag(),
            "notes": notes,
        }


def restart(ctx: Context) -> dict[str, Any]:
    with lock.acquire(ctx, "restart"):
        _guard(ctx)
        runtime = ctx.runtime()
        runtime.check()
        again = getattr(runtime, "restart", None)

        def go() -> None:
            if callable(again):
                again()
            else:
                runtime.stop()
                runtime.start()

        notes = _guarded(ctx, "restart", go)
        return {
            "outcome": "restarted" if runtime.name != "none" else "not-started",
            "runtime": runtime.name,
            "version": runtime.current_image_tag(),
            "notes": notes,
        }
