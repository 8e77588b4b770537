"""Shared fixtures: a legacy demo instance, the real CLI in a subprocess, and the leak guard.

The leak guard fails any test whose CLI output, captured output or ``*.log`` files contain a
secret value the test registered (every demo key is registered automatically).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from installer.context import Context
from installer.profiles.coolify_v3_demo import DemoInstance, create

REPO = Path(__file__).resolve().parent.parent
DEMO_TIME = "2023-07-18T10:09:02.980Z"
DEMO_MS = 1689674942980
DEMO_KEY = "YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"


class LeakGuard:
    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.texts: list[tuple[str, str]] = []

    def register(self, value: object) -> None:
        raw = value.reveal() if hasattr(value, "reveal") else str(value)
        if raw:
            self.secrets.add(raw)

    def record(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def leaks(self, extra_dirs: list[Path]) -> list[str]:
        found = []
        texts = list(self.texts)
        for d in extra_dirs:
            for log in d.rglob("*.log"):
                texts.append((str(log), log.read_text(errors="replace")))
        for where, text in texts:
            for s in self.secrets:
                if s in text:
                    found.append(f"secret {s[:4]}... leaked into {where}")
        return found


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


def make_demo(path: Path, guard: LeakGuard, *, rows: int = 3, version: str = "3.12.32",
              at_ms: int = DEMO_MS) -> DemoInstance:
    made = create(path, version=version, installed_at_ms=at_ms, rows=rows)
    guard.register(made.key)
    return made


@pytest.fixture
def ctx(demo: DemoInstance) -> Context:
    return Context(data_dir=demo.data_dir)


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(leak_guard: LeakGuard) -> CliRunner:
    """Run the real CLI in a subprocess; its output goes through the leak guard."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "installer", *args],
            capture_output=True, text=True, env=full_env, input=input, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        leak_guard.record(f"cli {' '.join(args[:2])} stdout", proc.stdout)
        leak_guard.record(f"cli {' '.join(args[:2])} stderr", proc.stderr)
        return proc

    return run


def tree_hash(root: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """Path -> sha256 of every file under root (and symlink targets), for byte-identical checks."""
    result = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if any(rel.startswith(e) for e in exclude):
            continue
        if p.is_symlink():
            result[rel] = "symlink:" + os.readlink(p)
        elif p.is_file():
            result[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return result
