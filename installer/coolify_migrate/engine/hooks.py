"""Operators' own scripts around an upgrade: ``<data-dir>/hooks/{pre-upgrade,post-upgrade,on-failure}.d/``.

Executables run in name order (hidden files and editor backups are skipped; a non-executable file
is reported and skipped), each with a timeout, with the upgrade's facts in its environment:
``COOLIFY_MIGRATE_PHASE``, ``_FROM``, ``_TO``, ``_BACKUP`` (path of the pre-upgrade backup),
``_DATA_DIR``. Their output (stdout and stderr, at most 1 MiB) goes into the run log, redacted; the tool
waits for the hook process, not for background children that inherited its output. The tool's own secrets are never in
their environment: the tool does not load ``.env`` into its process environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coolify_migrate.core import bounded

if TYPE_CHECKING:  # the command line reads DEFAULT_TIMEOUT for its help without the context
    from coolify_migrate.core.context import Context

PHASES = ("pre-upgrade", "post-upgrade", "on-failure")
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class HookFailure:
    hook: str
    reason: str


def discover(ctx: Context, phase: str) -> list[Path]:
    folder = ctx.hooks_dir / f"{phase}.d"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.endswith("~") or not path.is_file():
            continue
        if not os.access(path, os.X_OK):
            ctx.out.warn(f"hook {path} is not executable; skipped (chmod +x to enable it)")
            continue
        found.append(path)
    return found


def run(
    ctx: Context,
    phase: str,
    *,
    from_version: str,
    to_version: str,
    backup: str | None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HookFailure | None:
    """Run the phase's hooks in order; stop at (and return) the first failure."""
    env = {
        **os.environ,
        "COOLIFY_MIGRATE_PHASE": phase,
        "COOLIFY_MIGRATE_FROM": from_version,
        "COOLIFY_MIGRATE_TO": to_version,
        "COOLIFY_MIGRATE_BACKUP": backup or "",
        "COOLIFY_MIGRATE_DATA_DIR": str(ctx.data_dir),
    }
    for hook in discover(ctx, phase):
        ctx.out.info(f"hook {phase}: {hook.name}")
        ctx.proofs.forget()  # a hook may write to the database: what was proven may not hold
        failure, output = _run_one(ctx, hook, env, timeout)
        for line in output.splitlines():
            ctx.out.event("hook-output", hook=hook.name, line=ctx.redactor.redact(line))
        if failure:
            return failure
    return None


def _run_one(
    ctx: Context, hook: Path, env: dict[str, str], timeout: float
) -> tuple[HookFailure | None, str]:
    """Wait for the hook process itself, not for its output to close: its output goes to a
    file, so a background child that keeps the descriptor open does not hold the upgrade. On a
    timeout the hook's whole process group is ended. At most ``HOOK_OUTPUT_BYTES`` are read back."""
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                [str(hook)],
                cwd=ctx.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            return HookFailure(hook.name, f"could not run: {err.strerror}"), ""
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            failure: HookFailure | None = HookFailure(hook.name, f"timed out after {timeout:g} s")
        else:
            failure = HookFailure(hook.name, f"exited with status {code}") if code else None
        out.seek(0)
        text = out.read(bounded.HOOK_OUTPUT_BYTES).decode("utf-8", "replace")
    return failure, text
