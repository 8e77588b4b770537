"""Runtimes: what runs the app. ``none`` manages files only; ``docker`` drives containers.

Only ``coolify_migrate.runtimes.docker`` imports the Docker SDK, and only when that runtime is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coolify_migrate.core.errors import UsageError
from coolify_migrate.core.runtime import NoneRuntime, Runtime

if TYPE_CHECKING:
    from coolify_migrate.core.context import Context

__all__ = ["NoneRuntime", "Runtime", "make_runtime"]


def make_runtime(ctx: Context) -> Runtime:
    if ctx.runtime_name == "none":
        return NoneRuntime()
    if ctx.runtime_name == "docker":
        from coolify_migrate.runtimes.docker import DockerRuntime

        return DockerRuntime(ctx)
    if ctx.runtime_name == "compose":
        from coolify_migrate.runtimes.compose import ComposeRuntime

        return ComposeRuntime(ctx)
    raise UsageError(
        f"unknown runtime {ctx.runtime_name!r}", hint="use --runtime docker, compose or none"
    )
