"""Shared fixtures: a legacy demo instance, the real CLI in a subprocess, and the leak guard.

The leak guard fails any test whose CLI output, captured output or ``*.log`` files contain a
secret value the test registered (every demo key is registered automatically).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance, create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.context import Context
from support import DEMO_MS, SRC, CliRunner, LeakGuard

pytest_plugins = ["pg"]


@pytest.fixture(autouse=True)
def leak_guard(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[LeakGuard]:
    guard = LeakGuard()
    yield guard
    out, err = capfd.readouterr()
    guard.record("captured stdout", out)
    guard.record("captured stderr", err)
    sys.stdout.write(out)
    sys.stderr.write(err)
    leaks = guard.leaks([tmp_path])
    assert not leaks, "\n".join(leaks)


@pytest.fixture
def demo(tmp_path: Path, leak_guard: LeakGuard) -> DemoInstance:
    made = create(tmp_path / "inst", version="3.12.32", installed_at_ms=DEMO_MS, rows=3)
    leak_guard.register(made.key)
    return made


@pytest.fixture
def ctx(demo: DemoInstance) -> Context:
    return Context(profile=CoolifyV3(), data_dir=demo.data_dir)


@pytest.fixture
def cli(leak_guard: LeakGuard) -> CliRunner:
    """Run the real CLI in a subprocess; its output goes through the leak guard."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "coolify_migrate", *args],
            capture_output=True,
            text=True,
            env=full_env,
            input=input,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        leak_guard.record(f"cli {' '.join(args[:2])} stdout", proc.stdout)
        leak_guard.record(f"cli {' '.join(args[:2])} stderr", proc.stderr)
        return proc

    return run
