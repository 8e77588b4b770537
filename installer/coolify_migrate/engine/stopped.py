"""The one line an interrupted command ends with: what state the instance is in, what to run next.

It is read from durable facts once the run has unwound (the transaction rolled back, the lock
released), the same facts ``status`` and ``resume`` use: an open journal is a run to finish; a
pending key with no journal is a key roll to complete; neither means no change was left half-done.
"""

from __future__ import annotations

from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import MigrateError
from coolify_migrate.core.interrupts import Interrupted
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import Keyring


def state_line(ctx: Context, sig: Interrupted) -> str:
    head = f"interrupted by {sig.name}"
    try:
        doc = journal.current(ctx)
        pending = any(e.status == "pending" for e in Keyring(ctx).entries)
    except (MigrateError, OSError, ValueError):
        return f"{head}; run 'coolify-migrate status' to see the state of the instance"
    if doc is not None:
        down = (
            "; the app stays stopped until then"
            if ctx.runtime_name != "none" and doc.get("phase") != "started"
            else ""
        )
        return (
            f"{head}: the {doc['kind']} run {doc['run_id']} stopped at '{doc['phase']}' and is "
            f"recorded in the journal{down}; run 'coolify-migrate resume' to finish it (or "
            "'coolify-migrate rollback --last' to revert it)"
        )
    if pending:
        return (
            f"{head}: a key roll stopped before its journal recorded it; run "
            "'coolify-migrate resume' to complete it"
        )
    return (
        f"{head}: no change was left half-done, the instance is as it was before this command; "
        "run the command again"
    )
