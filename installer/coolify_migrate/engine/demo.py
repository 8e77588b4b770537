"""``coolify-migrate demo``: create a legacy instance to try the tool on (no Docker needed)."""

from __future__ import annotations

from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import Refused, UsageError
from coolify_migrate.core.times import parse_time
from coolify_migrate.core.versions import normalize

DEFAULT_DEMO_VERSION = "3.12.32"


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
        ctx.data_dir,
        db_path,
        version=normalize(version),
        installed_at_ms=at_ms,
        rows=rows,
        out=ctx.out,
    )
    ctx.redactor.add(demo.key)
    return demo
