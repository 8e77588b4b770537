"""The "Must show" of the foundation: `demo` writes the known date-seeded key, `status` reports
the instance without revealing a secret, and the leak guard catches a leak."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate import status
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context

INSTALLED_AT = "2023-07-18T10:09:02.980Z"
INSTALLED_MS = 1689674942980
KNOWN_KEY = "YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"
TESTS = Path(__file__).resolve().parent
ENV_KEYS = [
    "TAG",
    "COOLIFY_APP_ID",
    "COOLIFY_SECRET_KEY",
    "COOLIFY_DATABASE_URL",
    "COOLIFY_HOSTED_ON",
    "COOLIFY_WHITE_LABELED",
    "COOLIFY_WHITE_LABELED_ICON",
    "COOLIFY_AUTO_UPDATE",
]
# The exact command of the issue uses the default --runtime auto; with DOCKER_HOST="" (unset) and
# no default socket that resolves to "none". A host with a default socket gets --runtime none.
NO_ENGINE = {"DOCKER_HOST": ""}
RUNTIME_ARGS = ["--runtime", "none"] if Path("/var/run/docker.sock").exists() else []


def snapshot(root: Path) -> dict[str, tuple[str, int, float]]:
    """Every file's content hash, mode and mtime: proof that nothing was written."""
    found = {}
    for p in sorted(root.rglob("*")):
        st_ = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        found[str(p.relative_to(root))] = (digest, st_.st_mode, st_.st_mtime)
    return found


@pytest.fixture
def made(tmp_path: Path, cli: Any, leak_guard: Any) -> Path:
    leak_guard.register(KNOWN_KEY)
    data_dir = tmp_path / "coolify"
    proc = cli("demo", "--data-dir", str(data_dir), "--installed-at", INSTALLED_AT)
    assert proc.returncode == 0, proc.stderr
    return data_dir


def test_demo_writes_the_known_date_seeded_key(made: Path, cli: Any) -> None:
    env_path = made / ".env"
    env = EnvFile.load(env_path)
    assert env.get("COOLIFY_SECRET_KEY") == KNOWN_KEY
    assert env.get("TAG") == "3.12.32"
    assert env.get("COOLIFY_SECRET_KEY_BETTER") is None  # the pre-2023-07-14 installer had none
    assert env.keys() == ENV_KEYS
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert env_path.stat().st_mtime == pytest.approx(INSTALLED_MS / 1000)  # evidence of the date
    conn = sqlite3.connect(made / "db" / "prod.db")
    try:
        # the app's first start seeds Setting shortly after the installer wrote .env
        first = conn.execute('SELECT MIN("createdAt") FROM "Setting"').fetchone()[0]
        assert INSTALLED_MS <= first < INSTALLED_MS + 300_000
        assert conn.execute('SELECT count(*) FROM "Secret"').fetchone()[0] > 0
    finally:
        conn.close()


def test_demo_prints_no_secret(tmp_path: Path, cli: Any, leak_guard: Any) -> None:
    leak_guard.register(KNOWN_KEY)
    for args in ([], ["--json"]):
        target = tmp_path / f"d{len(args)}"
        proc = cli("demo", "--data-dir", str(target), "--installed-at", INSTALLED_AT, *args)
        assert proc.returncode == 0, proc.stderr
        assert KNOWN_KEY not in proc.stdout + proc.stderr
    shown = json.loads(proc.stdout.splitlines()[-1])  # the result ends the events
    assert shown["installed_at_ms"] == INSTALLED_MS
    assert shown["encrypted_values"] > 0
    assert len(shown["key_fingerprint"]) == 16


def test_status_json_reports_version_database_and_key_names(made: Path, cli: Any) -> None:
    before = snapshot(made)
    proc = cli("status", "--data-dir", str(made), "--json", *RUNTIME_ARGS, env=NO_ENGINE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    assert report["installed_version"] == "3.12.32"
    assert report["database"] == {
        "path": str(made / "db" / "prod.db"),
        "kind": "sqlite",
        "exists": True,
        "size": (made / "db" / "prod.db").stat().st_size,
    }
    assert report["env_keys"] == ENV_KEYS
    assert report["key_source"] == "COOLIFY_SECRET_KEY"
    assert len(report["key_fingerprint"]) == 16
    assert report["env_error"] is None
    assert report["run_in_progress"] is None
    assert report["runtime"] == "none"
    # No secret value anywhere (the leak guard checks the same, for every registered secret).
    assert KNOWN_KEY not in proc.stdout
    assert snapshot(made) == before  # read-only: nothing written, not even the state dir


def test_status_human_output(made: Path, cli: Any) -> None:
    before = snapshot(made)
    proc = cli("status", "--data-dir", str(made), "--runtime", "none")
    assert proc.returncode == 0, proc.stderr
    assert "installed version: 3.12.32" in proc.stdout
    assert "COOLIFY_SECRET_KEY" in proc.stdout
    assert KNOWN_KEY not in proc.stdout
    assert snapshot(made) == before


def test_status_library_call(made: Path) -> None:
    report = status.collect(Context(profile=CoolifyV3(), data_dir=made))
    assert report["installed_version"] == "3.12.32"
    assert [s["source"] for s in report["version_sources"]] == ["env"]
    assert all(KNOWN_KEY not in line for line in status.human(report))


def test_status_with_a_debug_flag_stays_clean(made: Path, cli: Any) -> None:
    proc = cli("status", "--data-dir", str(made), "--json", "--debug", "--runtime", "none")
    assert proc.returncode == 0
    assert KNOWN_KEY not in proc.stdout + proc.stderr


# -- the leak guard itself ----------------------------------------------------------------------

INNER_TESTS = """
import sys
from pathlib import Path

CANARY = "leak-canary-7f3e9a1b2c"


def test_prints_a_registered_secret(leak_guard):
    leak_guard.register(CANARY)
    print("the value is", CANARY)


def test_writes_it_to_stderr(leak_guard):
    leak_guard.register(CANARY)
    sys.stderr.write(CANARY + "\\n")


def test_writes_it_into_a_log_file(leak_guard, tmp_path):
    leak_guard.register(CANARY)
    (tmp_path / "run.log").write_text("key=" + CANARY)


def test_records_cli_output_with_it(leak_guard):
    leak_guard.register(CANARY)
    leak_guard.record("cli status stdout", "{" + CANARY + "}")


def test_keeps_it_to_itself(leak_guard, tmp_path):
    leak_guard.register(CANARY)
    print("nothing secret here")
    (tmp_path / "run.log").write_text("fingerprint only")
    (tmp_path / "data.txt").write_text(CANARY)  # not a log: not searched


def test_unregistered_values_are_not_flagged(tmp_path):
    print(CANARY)
"""


def test_the_leak_guard_fails_a_test_that_leaks(tmp_path: Path) -> None:
    """Runs tests/conftest.py's real fixture in an inner pytest session."""
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copy(TESTS / "conftest.py", inner / "conftest.py")
    shutil.copy(TESTS / "support.py", inner / "support.py")
    shutil.copy(TESTS / "pg.py", inner / "pg.py")  # conftest.py's pytest_plugins
    (inner / "test_leaks.py").write_text(textwrap.dedent(INNER_TESTS))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rA",
            "--tb=short",
            str(inner),
        ],
        capture_output=True,
        text=True,
        cwd=inner,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    # The guard fails the test in its teardown: the test body itself passed.
    assert "6 passed, 4 errors" in out, out[-3000:]
    for name in (
        "test_prints_a_registered_secret",
        "test_writes_it_to_stderr",
        "test_writes_it_into_a_log_file",
        "test_records_cli_output_with_it",
    ):
        assert f"ERROR test_leaks.py::{name}" in out, out[-3000:]
    guard_lines = [ln for ln in out.splitlines() if "leaked into" in ln]
    for where in ("captured stdout", "captured stderr", "run.log", "cli status stdout"):
        assert any(where in ln for ln in guard_lines), guard_lines
    for name in ("test_keeps_it_to_itself", "test_unregistered_values_are_not_flagged"):
        assert f"ERROR test_leaks.py::{name}" not in out
    # The guard names a leak by its first four characters only.
    assert all("leak-canary-7f3e9a1b2c" not in ln for ln in guard_lines)


def test_the_demo_help_names_the_default_version() -> None:
    """The help states the default without importing the demo at start-up: the two agree."""
    import typer.main
    from coolify_migrate.cli import app
    from coolify_migrate.cli import commands as _every_command  # noqa: F401  (all declared)
    from coolify_migrate.engine import demo

    cmd = typer.main.get_command(app).commands["demo"]  # type: ignore[attr-defined]
    option = next(p for p in cmd.params if "--version" in p.opts)
    assert f"{demo.DEFAULT_DEMO_VERSION}]" in (option.help or "")
