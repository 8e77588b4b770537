"""``coolify-migrate demo``: create a legacy instance to try the tool on (no Docker needed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from installer import instance
from installer.context import Context
from installer.errors import Refused, UsageError
from installer.versions import normalize

DEFAULT_DEMO_VERSION = "3.12.32"


def parse_time(text: str) -> int:
    """ISO-8601 time (``2023-07-18T10:09:02.980Z``) or epoch milliseconds -> epoch ms."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as err:
        raise UsageError(
            f"{raw!r} is not an ISO-8601 time", hint="e.g. 2023-07-18T10:09:02.980Z"
        ) from err
    if when.tzinfo is None:
        raise UsageError(f"{raw!r} has no time zone", hint="add Z (UTC) or an offset like +02:00")
    return round(when.timestamp() * 1000)


def create(
    ctx: Context,
    *,
    version: str = DEFAULT_DEMO_VERSION,
    installed_at: str | None = None,
    rows: int = 5,
) -> Any:
    if rows < 1:
        raise UsageError("--rows must be at least 1")
    db_path = instance.database_path(ctx)
    for existing in (ctx.env_path, db_path):
        if existing.exists():
            raise Refused(
                f"{existing} already exists: demo never overwrites an instance",
                hint="pick an empty --data-dir",
            )
    at_ms = parse_time(installed_at) if installed_at else ctx.now_ms()
    demo = ctx.profile.create_demo(
        ctx.data_dir, db_path, version=normalize(version), installed_at_ms=at_ms, rows=rows
    )
    ctx.redactor.add(demo.key)
    return demo
