"""Hostile and unlucky inputs (issue 14): each is refused in one line, never with exit 1, and the
instance's files stay byte-identical (the tool's own run log and run record aside).

One case per line of the issue, as a table: how the instance is spoilt, the command, the exit
code and words of the one-line message. Cases that need root tricks (``chattr +i``, a tmpfs) skip
where the trick is unavailable (outside CI).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coolify_migrate.apps.coolify_v3.demo as demo_module
import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.errors import DiskFull, MigrateError, StorageProblem, from_os_error
from coolify_migrate.core.secret import Redactor
from support import REPO, CliRunner, LeakGuard, make_demo, snapshot, tmpfs

MANIFEST = str(REPO / "versions.json")
# the state directory with the lock and the run record of the refused run itself, and the
# installation's identity (backups.json: created with the first backup the tool numbers)
OWN_RECORDS = (".coolify-migrate",)


def unchanged(before: dict[str, str], after: dict[str, str]) -> bool:
    def instance(s: dict[str, str]) -> dict[str, str]:
        return {
            k: v
            for k, v in s.items()
            if not k.startswith(OWN_RECORDS)
            or (k.endswith(".json") and "/" in k and not k.endswith("/backups.json"))
        }

    runs = [k for k in after if k.startswith(".coolify-migrate/runs/")]
    return instance(before) == {k: v for k, v in instance(after).items() if k not in runs}


def env_line(old: str, new: str) -> Callable[[DemoInstance, Path], list[str]]:
    def spoil(demo: DemoInstance, tmp: Path) -> list[str]:
        env = demo.data_dir / ".env"
        text = env.read_text()
        assert old in text
        env.write_text(text.replace(old, new))
        return []

    return spoil


def manifest_file(content: bytes) -> Callable[[DemoInstance, Path], list[str]]:
    def spoil(demo: DemoInstance, tmp: Path) -> list[str]:
        path = tmp / "hostile.json"
        path.write_bytes(content)
        return ["--manifest", str(path)]

    return spoil


def manifest_edit(old: str, new: str) -> Callable[[DemoInstance, Path], list[str]]:
    text = Path(MANIFEST).read_text()
    assert old in text
    return manifest_file(text.replace(old, new).encode())


def state(make: Callable[[Path], None]) -> Callable[[DemoInstance, Path], list[str]]:
    def spoil(demo: DemoInstance, tmp: Path) -> list[str]:
        make(demo.data_dir / ".coolify-migrate")
        return []

    return spoil


def _lock_is_a_dir(d: Path) -> None:
    d.mkdir(mode=0o700)
    (d / "lock").mkdir()


def _state_is_a_file(d: Path) -> None:
    d.write_text("")


def _crafted_journal(d: Path) -> None:
    d.mkdir(mode=0o700)
    (d / "journal.json").write_text('{"kind": "upgrade"}')


def _empty_db(demo: DemoInstance, tmp: Path) -> list[str]:
    demo.db_path.write_bytes(b"")
    return []


def _foreign_db(demo: DemoInstance, tmp: Path) -> list[str]:
    demo.db_path.unlink()
    conn = sqlite3.connect(demo.db_path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    return []


def _failing_pre_hook(demo: DemoInstance, tmp: Path) -> list[str]:
    folder = demo.data_dir / "hooks" / "pre-upgrade.d"
    folder.mkdir(parents=True)
    hook = folder / "10-check"
    hook.write_text("#!/bin/sh\nexit 2\n")
    hook.chmod(0o755)
    return []


@dataclass(frozen=True)
class Case:
    name: str
    spoil: Callable[[DemoInstance, Path], list[str]]
    words: str
    code: int = 3
    command: tuple[str, ...] = ("upgrade",)
    extra: tuple[str, ...] = field(default=())


CASES = [
    # 1. bounded reads
    Case("an endless manifest", lambda d, t: ["--manifest", "/dev/zero"], "larger than 4096 KiB"),
    Case("deeply nested JSON", manifest_file(b"[" * 100_000 + b"]" * 100_000), "nests deeper"),
    Case("a manifest that is not UTF-8", manifest_file(b"\xff\xfe{}"), "not valid JSON"),
    # 2. an unsigned manifest may not contradict the profile
    Case(
        "an unsigned manifest names another image",
        manifest_edit("ghcr.io/coollabsio/coolify:3.12.36", "evil.example/coolify:3.12.36"),
        "names image 'evil.example/coolify:3.12.36'",
    ),
    Case(
        "an unsigned manifest marks the 3.12.33 stop not required",
        manifest_edit('"required_stop": true', '"required_stop": false'),
        "required stop 3.12.33 is marked not required",
    ),
    Case(
        "an unsigned manifest offers the withdrawn 3.12.34 again",
        manifest_edit('"withdrawn": true', '"withdrawn": false'),
        "3.12.34 was withdrawn by its publisher, not offered again",
    ),
    Case("--to ''", lambda d, t: ["--to", ""], "--to is empty", code=2),
    Case("--to=", lambda d, t: ["--to="], "--to is empty", code=2),
    Case(
        "secrets roll --secret '' (not the data key)",
        lambda d, t: ["--secret", "", "--yes"],
        "--secret is empty",
        code=2,
        command=("secrets", "roll", "--yes"),
    ),
    # 4. errors and preconditions
    Case(
        "COOLIFY_SECRET_KEY missing",
        env_line("COOLIFY_SECRET_KEY=", "# COOLIFY_SECRET_KEY="),
        "names no data key",
    ),
    Case(
        "COOLIFY_SECRET_KEY empty",
        env_line(
            f"COOLIFY_SECRET_KEY={demo_module.date_seeded_key(1689674942980)}",
            "COOLIFY_SECRET_KEY=",
        ),
        "names no data key",
    ),
    Case(
        "COOLIFY_SECRET_KEY without '='",
        env_line(
            f"COOLIFY_SECRET_KEY={demo_module.date_seeded_key(1689674942980)}", "COOLIFY_SECRET_KEY"
        ),
        "names no data key",
    ),
    Case("the lock path is a directory", state(_lock_is_a_dir), "it is a directory"),
    Case("the state path is a file", state(_state_is_a_file), "it is not a directory"),
    Case("a crafted journal.json", state(_crafted_journal), "is not one this tool wrote"),
    # 5. the database must look like the app's
    Case("a 0-byte prod.db", _empty_db, "is empty (0 bytes)"),
    Case("a prod.db without the app's tables", _foreign_db, "the app's tables"),
    # 7. options
    Case("--hook-timeout -5", lambda d, t: ["--hook-timeout", "-5"], "not a positive", code=2),
    Case("--hook-timeout nan", lambda d, t: ["--hook-timeout", "nan"], "not a positive", code=2),
    # 8. a failing pre-upgrade hook: nothing was changed, its backup is removed too
    Case("a failing pre-upgrade hook", _failing_pre_hook, "nothing was changed"),
]


def run(
    cli: CliRunner, demo: DemoInstance, extra: list[str], *command: str
) -> subprocess.CompletedProcess[str]:
    args = [*command, "--data-dir", str(demo.data_dir), "--runtime", "none"]
    if command[0] in ("upgrade", "plan") and "--manifest" not in extra:
        args += ["--manifest", MANIFEST]
    return cli(*args, *extra, env={"COOLIFY_MIGRATE_DB_LOCK_WAIT": "1"})


def refused_cleanly(r: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_in_one_line_and_nothing_changed(
    case: Case, demo: DemoInstance, cli: CliRunner, tmp_path: Path
) -> None:
    extra = case.spoil(demo, tmp_path)
    before = snapshot(demo.data_dir)
    r = run(cli, demo, extra, *case.command)
    refused_cleanly(r, case.code, case.words)
    assert unchanged(before, snapshot(demo.data_dir))


def test_a_data_key_holding_dollar_and_hash_is_refused_before_the_backup(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compose expands '$' and reads ' #' as a comment: such a key cannot be written back safely
    monkeypatch.setattr(
        demo_module, "date_seeded_key", lambda ms: "Ab$cd#efghijklmnopqrstuvwxyz0123"
    )
    demo = make_demo(tmp_path / "inst", leak_guard)
    before = snapshot(demo.data_dir)
    r = run(cli, demo, [], "upgrade")
    refused_cleanly(r, 3, "holds '$' (Compose expands it), '#'")
    assert unchanged(before, snapshot(demo.data_dir))


def test_an_immutable_database_is_refused(demo: DemoInstance, cli: CliRunner) -> None:
    made = subprocess.run(["chattr", "+i", str(demo.db_path)], capture_output=True, text=True)
    if made.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"chattr +i must work under CI: {made.stderr.strip()}")
        pytest.skip(f"chattr +i is unavailable here: {made.stderr.strip()}")
    try:
        before = snapshot(demo.data_dir)
        r = run(cli, demo, [], "upgrade")
        refused_cleanly(r, 3, "is immutable")
        assert unchanged(before, snapshot(demo.data_dir))
    finally:
        subprocess.run(["chattr", "-i", str(demo.db_path)], check=False)


def test_no_room_for_the_backup_and_the_rollback_journal(
    tmp_path: Path, demo: DemoInstance, cli: CliRunner
) -> None:
    size = demo.db_path.stat().st_size
    # room for the backup (size + 10% + 1 MiB) but not for SQLite's journal of the roll as well
    room = size + size // 10 + (1 << 20) + size // 2 + size
    with tmpfs(tmp_path / "small", f"{room // 1024 + 64}k") as small:
        db = small / "prod.db"
        shutil.copyfile(demo.db_path, db)
        before = snapshot(small) | {"env": snapshot(demo.data_dir)[".env"]}
        r = run(cli, demo, ["--db", str(db)], "upgrade")
        refused_cleanly(r, 3, "rollback journal")
        assert snapshot(small) | {"env": snapshot(demo.data_dir)[".env"]} == before


def test_a_disk_already_full_is_a_structured_refusal(
    tmp_path: Path, demo: DemoInstance, cli: CliRunner
) -> None:
    with tmpfs(tmp_path / "full", "3m") as full:
        shutil.copytree(demo.data_dir, full / "inst")
        with open(full / "filler", "wb") as fh:  # fill it to the last block
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        target = DemoInstance(
            full / "inst",
            full / "inst" / "db" / "prod.db",
            demo.key,
            demo.installed_at_ms,
            demo.version,
        )
        before = snapshot(target.data_dir)
        r = run(cli, target, [], "upgrade")
        assert r.returncode == 3, r.stderr
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert unchanged(before, snapshot(target.data_dir))


@pytest.fixture
def held_lock(demo: DemoInstance) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database locked (an open exclusive transaction)."""
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(demo.db_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("command", [("upgrade",), ("rollback", "--to", "BACKUP", "--yes")])
def test_a_database_another_process_holds_locked_is_not_touched(
    command: tuple[str, ...],
    demo: DemoInstance,
    cli: CliRunner,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    made = cli("backup", "create", "--data-dir", str(demo.data_dir), "--runtime", "none", "--json")
    assert made.returncode == 0, made.stderr
    name = next(
        p.name
        for p in demo.db_path.parent.iterdir()
        if p.name.startswith("prod.db_") and not p.name.endswith(".json")
    )
    holder = request.getfixturevalue("held_lock")
    before = snapshot(demo.data_dir)
    r = run(cli, demo, [], *[name if part == "BACKUP" else part for part in command])
    refused_cleanly(r, 3, f"is locked by another process (pid {holder.pid} ")
    assert unchanged(before, snapshot(demo.data_dir))


def test_a_hook_that_leaves_a_background_child_is_not_timed_out(
    demo: DemoInstance, cli: CliRunner
) -> None:
    folder = demo.data_dir / "hooks" / "pre-upgrade.d"
    folder.mkdir(parents=True)
    hook = folder / "10-daemon"
    hook.write_text("#!/bin/sh\necho started\nsleep 30 &\nexit 0\n")
    hook.chmod(0o755)
    r = run(cli, demo, ["--hook-timeout", "10"], "upgrade")
    assert r.returncode == 0, r.stderr
    assert "timed out" not in r.stderr


def test_a_garbage_better_key_on_3_12_32_ends_rolled_back_with_nothing_to_resume(
    demo: DemoInstance, cli: CliRunner
) -> None:
    with open(demo.data_dir / ".env", "a") as fh:
        fh.write("COOLIFY_SECRET_KEY_BETTER=garbage-not-the-key\n")
    r = run(cli, demo, [], "upgrade")
    assert r.returncode == 5, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert "does not encrypt the data" in error and "rolled back to 3.12.32" in error
    assert not (demo.data_dir / ".coolify-migrate" / "journal.json").exists()
    assert EnvFile.load(demo.data_dir / ".env").get("COOLIFY_SECRET_KEY") == demo.key.reveal()
    again = run(cli, demo, [], "resume")
    assert again.returncode == 0 and "nothing-to-resume" in again.stdout, again.stderr


@pytest.mark.parametrize(
    ("number", "kind", "words"),
    [
        (errno.ENOSPC, DiskFull, "the disk is full"),
        (errno.EACCES, StorageProblem, "cannot use /x/prod.db"),
        (errno.EPERM, StorageProblem, "cannot use /x/prod.db"),
        (errno.EISDIR, StorageProblem, "cannot use /x/prod.db"),
        (errno.EEXIST, StorageProblem, "cannot use /x/prod.db"),
        (errno.EROFS, StorageProblem, "cannot use /x/prod.db"),
    ],
)
def test_every_os_error_class_becomes_a_structured_refusal(
    number: int, kind: type[MigrateError], words: str
) -> None:
    err = from_os_error(OSError(number, os.strerror(number), "/x/prod.db"))
    assert isinstance(err, kind) and err.exit_code == 3
    assert words in err.message and err.hint


def test_a_read_only_file_system_is_refused(
    tmp_path: Path, demo: DemoInstance, cli: CliRunner
) -> None:
    with tmpfs(tmp_path / "ro", "4m") as ro:
        shutil.copytree(demo.data_dir, ro / "inst")
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(ro)], capture_output=True, text=True
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remount.stderr.strip()}")
        target = DemoInstance(
            ro / "inst",
            ro / "inst" / "db" / "prod.db",
            demo.key,
            demo.installed_at_ms,
            demo.version,
        )
        before = snapshot(target.data_dir)
        r = run(cli, target, [], "upgrade")
        refused_cleanly(r, 3, "Read-only file system")
        assert snapshot(target.data_dir) == before


def test_a_stored_ciphertext_is_never_printed(demo: DemoInstance) -> None:
    # whatever quotes a row (an error, a hook's output, a run log line), the redactor removes it
    conn = sqlite3.connect(demo.db_path)
    stored = next(
        v for (v,) in conn.execute("SELECT value FROM Secret") if v and v.startswith('{"iv"')
    )
    conn.close()
    redactor = Redactor()
    for text in (f"bad value {stored}", json.dumps({"message": f"row: {stored}"})):
        assert stored[8:40] not in redactor.redact(text)
