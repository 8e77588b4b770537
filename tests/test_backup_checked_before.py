"""The integrity check taken off the downtime: ``backups.check_before_stop`` checks the database
while the app still runs, and the backup taken once it has stopped leans on that check only when
its SHA-256 proves it is the very bytes checked.

What must hold: the manifest says ``integrity: ok`` only of bytes ``quick_check`` passed; a write
or damage after the check is still checked (and damage refused, nothing kept) before any verdict
is written; a database that fails the check is refused before anything stops.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from checks import file_hashes
from coolify_migrate import backups
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import DatabaseError
from coolify_migrate.engine import upgrade
from coolify_migrate.secrets import verdicts
from coolify_migrate.state import journal, proven
from coolify_migrate.stores import names, sqlite_copy
from support import REPO, CliRunner, add_table_of_rows


def _mode(path: Path, mode: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {mode}")
    conn.close()


def _damage(path: Path, root: int, page_size: int) -> None:
    """Garbage cells in the table's root (an interior page): the size and header stay."""
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size + 12)
        fh.write(b"\xff" * 64)


@pytest.fixture
def checks_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every quick_check / integrity_check the copy helper runs, by pragma."""
    seen: list[str] = []
    real = sqlite_copy._verdict

    def counted(conn: sqlite3.Connection, pragma: str) -> str:
        seen.append(pragma)
        return real(conn, pragma)

    monkeypatch.setattr(sqlite_copy, "_verdict", counted)
    return seen


def _manifest(info: backups.BackupInfo) -> dict[str, object]:
    doc = durable.read_json(info.path.with_name(names.manifest_name(info.name)))
    assert isinstance(doc, dict)
    return doc


def test_bytes_checked_before_the_stop_are_not_checked_again_and_the_backup_says_ok(
    demo: DemoInstance, ctx: Context, checks_run: list[str]
) -> None:
    _mode(demo.db_path, "delete")
    checked = backups.check_before_stop(ctx)
    assert checked is not None and checks_run == ["quick_check"]
    assert checked.sha256 == hashlib.sha256(demo.db_path.read_bytes()).hexdigest()
    assert checked.file == proven.identity(demo.db_path)
    checks_run.clear()
    info = backups.create(ctx, reason="pre-upgrade", checked=checked)
    assert checks_run == [], "the copy's SHA-256 proves it is the bytes already checked"
    assert info.path.read_bytes() == demo.db_path.read_bytes()
    doc = _manifest(info)
    assert doc["integrity"] == "ok" and doc["sha256"] == checked.sha256
    (result,) = backups.verify(ctx, info.name)
    assert result["ok"] and result["checksum"] == "match", result


def test_a_write_after_the_check_gets_the_copy_checked_while_it_is_taken(
    demo: DemoInstance, ctx: Context, checks_run: list[str]
) -> None:
    _mode(demo.db_path, "delete")
    checked = backups.check_before_stop(ctx)
    assert checked is not None
    conn = sqlite3.connect(demo.db_path, isolation_level=None)  # the app, on its way down
    conn.execute("CREATE TABLE late (v TEXT)")
    conn.execute("INSERT INTO late VALUES ('written after the check')")
    conn.close()
    assert not checked.still(ctx.store())  # type: ignore[arg-type]
    checks_run.clear()
    info = backups.create(ctx, checked=checked)
    assert checks_run == ["quick_check"]
    assert _manifest(info)["integrity"] == "ok"
    assert info.sha256 != checked.sha256
    assert info.path.read_bytes() == demo.db_path.read_bytes()


def test_damage_the_file_identity_hides_is_caught_by_the_digest_and_nothing_is_kept(
    demo: DemoInstance, ctx: Context, checks_run: list[str]
) -> None:
    _mode(demo.db_path, "delete")
    root, page_size = add_table_of_rows(demo.db_path)
    checked = backups.check_before_stop(ctx)
    assert checked is not None
    st = demo.db_path.stat()
    _damage(demo.db_path, root, page_size)  # not by SQLite: no counter moves
    os.utime(demo.db_path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the time put back
    assert checked.still(ctx.store()), "the identity cannot tell: only the digest can"  # type: ignore[arg-type]
    before = sorted(p.name for p in demo.db_path.parent.iterdir())
    checks_run.clear()
    with pytest.raises(DatabaseError, match="integrity check"):
        backups.create(ctx, reason="pre-upgrade", checked=checked)
    assert checks_run == ["quick_check"], "the copy differs from what was checked: checked again"
    assert sorted(p.name for p in demo.db_path.parent.iterdir()) == before


def test_a_wrong_digest_makes_the_one_pass_check_its_snapshot_after_the_copy(
    demo: DemoInstance, tmp_path: Path, checks_run: list[str]
) -> None:
    _mode(demo.db_path, "delete")
    dest = tmp_path / "copy"
    sealed = sqlite_copy.copy_sealed(demo.db_path, dest, checked="0" * 64)
    assert sealed == ("ok", hashlib.sha256(demo.db_path.read_bytes()).hexdigest())
    assert checks_run == ["quick_check"]
    checks_run.clear()
    assert sqlite_copy.copy_sealed(demo.db_path, dest, checked=sealed[1]) == sealed
    assert checks_run == []


def test_a_damaged_database_fails_the_check_before_the_stop(
    demo: DemoInstance, ctx: Context
) -> None:
    _mode(demo.db_path, "delete")
    _damage(demo.db_path, *add_table_of_rows(demo.db_path))
    with pytest.raises(DatabaseError, match="fails its integrity check"):
        backups.check_before_stop(ctx)


def test_an_upgrade_of_a_damaged_database_is_refused_before_anything_stops(
    demo: DemoInstance, cli: CliRunner
) -> None:
    _mode(demo.db_path, "delete")
    _damage(demo.db_path, *add_table_of_rows(demo.db_path))
    before = file_hashes(demo.data_dir)
    r = cli(
        "upgrade",
        "--data-dir",
        str(demo.data_dir),
        "--manifest",
        str(REPO / "versions.json"),
        "--runtime",
        "none",
        "--json",
    )
    assert r.returncode == 3, r.stderr
    assert "fails its integrity check" in r.stderr
    assert file_hashes(demo.data_dir) == before
    assert not (demo.data_dir / ".coolify-migrate" / "journal.json").exists()


def test_an_upgrade_checks_before_the_journal_begins_and_its_backup_leans_on_that(
    demo: DemoInstance, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mode(demo.db_path, "delete")
    events: list[tuple[str, object]] = []
    real_check, real_copy, real_begin = (
        sqlite_copy.check_in_place,
        sqlite_copy.copy_sealed,
        journal.begin,
    )

    def check(source: Path, *a: Any) -> tuple[str, str] | None:
        found = real_check(source, *a)
        events.append(("check", found))
        return found

    def copy(*a: Any, **kw: Any) -> tuple[str, str] | None:
        sealed = real_copy(*a, **kw)
        events.append(("copy", (a[3] if len(a) > 3 else kw.get("checked"), sealed)))
        return sealed

    def begin(*a: Any, **kw: Any) -> dict[str, Any]:
        events.append(("journal", None))
        return real_begin(*a, **kw)

    monkeypatch.setattr(sqlite_copy, "check_in_place", check)
    monkeypatch.setattr(sqlite_copy, "copy_sealed", copy)
    monkeypatch.setattr(journal, "begin", begin)
    upgrade.upgrade(ctx, manifest_src=str(REPO / "versions.json"))
    assert [e[0] for e in events][:3] == ["check", "journal", "copy"], events
    found, (passed, sealed) = events[0][1], events[2][1]
    assert found is not None and found[0] == "ok" and passed == found[1]
    assert sealed == ("ok", found[1]), "the stopped file is the bytes checked while it ran"
    (manifest,) = demo.db_path.parent.glob("prod.db_*.json")
    doc = json.loads(manifest.read_text())
    assert doc["reason"] == "pre-upgrade" and doc["integrity"] == "ok"
    assert doc["sha256"] == found[1]


def test_the_key_identified_on_the_checked_snapshot_describes_a_backup_of_those_bytes(
    demo: DemoInstance, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mode(demo.db_path, "delete")
    manual = backups.create(ctx)
    calls: list[str] = []
    real = verdicts.identify

    def counted(*a: Any, **kw: Any) -> Any:
        calls.append("identify")
        return real(*a, **kw)

    monkeypatch.setattr(verdicts, "identify", counted)
    checked = backups.check_before_stop(ctx)
    assert checked is not None and calls == ["identify"]
    assert checked.key == (demo.key.fingerprint, demo.key.check_value, "identified")
    calls.clear()
    info = backups.create(ctx, reason="pre-upgrade", checked=checked)
    assert calls == [], "the copy is the checked bytes: their key is its key"
    for field in ("key_fingerprint", "key_check", "key_status"):
        assert _manifest(info)[field] == _manifest(manual)[field], field
    conn = sqlite3.connect(demo.db_path, isolation_level=None)  # a write: identified again
    conn.execute("CREATE TABLE late (v TEXT)")
    conn.close()
    again = backups.create(ctx, checked=checked)
    assert calls == ["identify"]
    assert _manifest(again)["key_fingerprint"] == demo.key.fingerprint
