"""``stamp VERSION`` and ``--key-file``: small commands that settle what an instance is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.errors import UsageError
from coolify_migrate.secrets import keyfile
from coolify_migrate.stores import sqlite as db
from support import CliRunner, LeakGuard, make_demo, tree_hash


def _record(db_path: Path, version: str) -> None:
    conn = db.connect(db_path)
    try:
        with db.transaction(conn):
            db.write_meta(conn, version=version)
    finally:
        conn.close()


def test_disagreeing_sources_are_named_and_stamp_records_one_of_them(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1, version="3.12.32")
    _record(demo.db_path, "3.12.33")  # e.g. a v3 update that never wrote TAG
    args = ("--runtime", "none", "--data-dir", str(demo.data_dir))
    plan = cli("plan", *args)
    assert plan.returncode == 3
    assert "record says 3.12.33" in plan.stderr and "env says 3.12.32" in plan.stderr
    assert "coolify-migrate stamp VERSION" in plan.stderr

    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate",))
    refused = cli("stamp", "3.12.36", *args)
    assert refused.returncode == 3 and "no source says" in refused.stderr
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate",)) == before

    done = cli("stamp", "v3.12.33", "--json", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "3.12.33"
    assert EnvFile.load(demo.data_dir / ".env").get("TAG") == "3.12.33"
    assert db.read_meta_file(demo.db_path)["version"] == "3.12.33"
    status = json.loads(cli("status", "--json", *args).stdout)
    assert status["installed_version"] == "3.12.33" and not status["version_conflict"]


def test_stamp_force_records_a_version_no_source_states(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    args = ("--runtime", "none", "--data-dir", str(demo.data_dir))
    assert cli("stamp", "3.12.35", "--force", *args).returncode == 0
    assert db.read_meta_file(demo.db_path)["version"] == "3.12.35"
    assert cli("stamp", "not-a-version", *args).returncode == 2


def test_key_files_take_bare_keys_and_only_the_apps_key_names(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(
        "# comment\n\nbare-key-0123456789abcdefghijklmn\n"
        "COOLIFY_SECRET_KEY=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "COOLIFY_SECRET_KEY_OLD_1690000000000=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
        "COOLIFY_DATABASE_URL=file:../db/prod.db\n"
    )
    found = keyfile.load(path, names=CoolifyV3().secret_names)
    assert [c.key.reveal() for c in found] == [
        "bare-key-0123456789abcdefghijklmn",
        "a" * 32,
        "b" * 32,
    ]
    assert all("***" in repr(c.key) for c in found)
    assert "COOLIFY_SECRET_KEY_OLD_1690000000000" in found[2].source
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(UsageError, match="holds no key"):
        keyfile.load(tmp_path / "empty")
    (tmp_path / "huge").write_bytes(b"k" * (keyfile.MAX_BYTES + 1))
    with pytest.raises(UsageError, match="larger than"):
        keyfile.load(tmp_path / "huge")
