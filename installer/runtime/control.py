"""``start`` and ``restart``: run the app as the host files describe it (install.sh uses both).

``start`` is what makes a fresh install run: ``upgrade`` is a no-op there (the new ``.env`` already
names the target version), so the container is created here. On an instance that already runs
it changes nothing. Both refuse to touch an instance with an interrupted run in its journal.
"""

from __future__ import annotations

from typing import Any

from installer import journal, lock
from installer.context import Context
from installer.errors import Refused


def _guard(ctx: Context) -> None:
    running = journal.current(ctx)
    if running is not None:
        raise Refused(
            f"an interrupted {running['kind']} run ({running['run_id']}) "
            f"stopped at '{running['phase']}'",
            hint="run 'coolify-migrate resume' first",
        )


def start(ctx: Context) -> dict[str, Any]:
    with lock.acquire(ctx, "start"):
        _guard(ctx)
        runtime = ctx.runtime()
        runtime.check()
        runtime.start()
        return {
            "outcome": "running",
            "runtime": runtime.name,
            "version": runtime.current_image_tag(),
        }


def restart(ctx: Context) -> dict[str, Any]:
    with lock.acquire(ctx, "restart"):
        _guard(ctx)
        runtime = ctx.runtime()
        runtime.check()
        again = getattr(runtime, "restart", None)
        if callable(again):
            again()
        else:
            runtime.stop()
            runtime.start()
        return {
            "outcome": "restarted",
            "runtime": runtime.name,
            "version": runtime.current_image_tag(),
        }
