"""The durable record of a run in progress (``<state>/journal.json``).

A run (upgrade, key roll, rollback) writes its journal before its first change and after every
durable step, so that after a crash ``status`` says where it stopped and ``resume`` (or
``rollback --last``) finishes or reverts it. A finished run's journal is kept as
``<state>/runs/<run-id>.json`` and the current one removed: no journal means no run in progress.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coolify_migrate.core import durable, private
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import Refused

FILENAME = "journal.json"


def current(ctx: Context) -> dict[str, Any] | None:
    path = ctx.state_dir / FILENAME
    if not ctx.has_state_dir():
        return None
    try:
        doc: dict[str, Any] = durable.read_json(path, private=True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise Refused(
            f"the run journal {path} is unreadable",
            hint="inspect it; 'rollback --last' restores the last backup",
        ) from err
    _check_shape(doc, path)
    return doc


_SHAPE = {"run_id": str, "kind": str, "phase": str, "history": list, "data": dict}


def _check_shape(doc: Any, path: Path) -> None:
    """A journal this tool did not write (edited, truncated by hand) is refused, not half-read."""
    bad = (
        [k for k, t in _SHAPE.items() if not isinstance(doc.get(k), t)]
        if isinstance(doc, dict)
        else ["the top level"]
    )
    if bad:
        raise Refused(
            f"the run journal {path} is not one this tool wrote ({bad[0]} is missing or wrong)",
            hint="move it away if no run is interrupted; 'rollback --last' restores the last backup",
        )


def begin(ctx: Context, kind: str, **data: Any) -> dict[str, Any]:
    found = current(ctx)
    if found is not None:
        raise Refused(
            f"an interrupted {found['kind']} run ({found['run_id']}) stopped at '{found['phase']}'",
            hint="run 'coolify-migrate resume' to finish it, or 'rollback --last' to revert it",
        )
    now = ctx.now_ms()
    doc = {
        "run_id": f"{kind}-{now}",
        "kind": kind,
        "pid": os.getpid(),
        "started_ms": now,
        "phase": "started",
        "history": [{"phase": "started", "at_ms": now}],
        "data": data,
    }
    ctx.ensure_state_dir()
    durable.write_json(
        ctx.state_dir / FILENAME, doc, checkpoint=f"journal:{kind}:started", private=True
    )
    return doc


def advance(ctx: Context, doc: dict[str, Any], phase: str, **data: Any) -> dict[str, Any]:
    doc["phase"] = phase
    doc["history"].append({"phase": phase, "at_ms": ctx.now_ms()})
    doc["data"].update(data)
    durable.write_json(
        ctx.state_dir / FILENAME, doc, checkpoint=f"journal:{doc['kind']}:{phase}", private=True
    )
    return doc


def finish(ctx: Context, doc: dict[str, Any], outcome: str) -> None:
    doc["outcome"] = outcome
    doc["finished_ms"] = ctx.now_ms()
    runs = private.ensure_dir(ctx.state_dir / "runs", ctx.out)
    durable.write_json(runs / f"{doc['run_id']}.json", doc, private=True)
    (ctx.state_dir / FILENAME).unlink(missing_ok=True)
    durable.fsync_dir(ctx.state_dir)
