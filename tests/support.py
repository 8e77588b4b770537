"""Helpers shared by the tests (imported as ``support``; conftest.py holds only fixtures).

pytest imports every conftest.py as a module named ``conftest``, so tests/docker/conftest.py would
shadow this directory's one for ``from conftest import ...``; a plain module has no such clash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance, create

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "installer"  # the source folder holding the coolify_migrate package
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


def make_demo(
    path: Path, guard: LeakGuard, *, rows: int = 3, version: str = "3.12.32", at_ms: int = DEMO_MS
) -> DemoInstance:
    made = create(path, version=version, installed_at_ms=at_ms, rows=rows)
    guard.register(made.key)
    return made


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


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


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted for one test (root only; under CI it must work, elsewhere it skips)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("mount tests must run under CI: run them as root")
        pytest.skip("needs root to mount a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs under CI: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


class ProcWatch:
    """Every command line any process on this host shows (what ``ps`` shows, containers' too),
    sampled from /proc every ``interval`` seconds while the watch runs; ``leaks(secrets)`` names
    each secret seen in one."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.interval = interval
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                self.seen.add(raw.replace(b"\0", b" ").decode("utf-8", "replace"))

    def leaks(self, secrets: set[str]) -> list[str]:
        return [
            f"secret {s[:4]}... on the command line: {line[:120]!r}"
            for line in self.seen
            for s in secrets
            if s and s in line
        ]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> what is there (mode and SHA-256 of a file, a link's target, a directory's
    mode) for every entry under ``root``, links never followed: equal snapshots mean nothing in
    the tree changed, its modes included."""
    result = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.lstat()
        if p.is_symlink():
            result[rel] = "symlink:" + os.readlink(p)
        elif p.is_dir():
            result[rel] = f"dir {st.st_mode & 0o7777:04o}"
        else:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            result[rel] = f"{st.st_mode & 0o7777:04o} {digest}"
    return result


def add_table_of_rows(path: Path, rows: int = 2000) -> tuple[int, int]:
    """A table ``t`` of ``rows`` rows in the SQLite file ``path`` (large enough that its root is
    an interior page); (its root page, the page size), to damage it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("BEGIN")
    for i in range(rows):
        conn.execute("INSERT INTO t(v) VALUES (?)", (f"row {i:06d} " * 4,))
    conn.execute("COMMIT")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 't'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return int(root), int(page_size)
