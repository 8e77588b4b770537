"""Instances shaped like the real app (v3's 50-table schema, every odd value the app writes):
upgrades through the 3.12.33 key roll, checked value by value by Node.js, and the refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import node_cipher
import pytest
from checks import active_key, assert_all_decrypt, stored_values
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.secret import Secret
from coolify_migrate.engine import keyops
from support import CliRunner, LeakGuard, make_demo, tree_hash

FIELDS = {c.label for c in CoolifyV3.encrypted_columns}


def require_node() -> None:
    import os

    if not node_cipher.node_available():
        if os.environ.get("CI"):
            pytest.fail("node is required under CI")
        pytest.skip("node is not installed")


def test_upgrade_of_the_real_schema_demo_keeps_every_plaintext_of_all_59_fields(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    require_node()
    demo = make_demo(tmp_path / "inst", leak_guard, rows=2)
    assert len(FIELDS) == 59
    seen = {(t, c) for (t, c, _), p in demo.plaintexts.items() if p is not None}
    assert {f"{t}.{c}" for t, c in seen} == FIELDS, "the fixture fills every field"
    assert demo.as_is, "the fixture holds values that are not ciphertext"
    crlf = [
        p for (t, c, _), p in demo.plaintexts.items() if t == "GitlabApp" and c == "privateSshKey"
    ]
    assert any(p and "\r\n" in p for p in crlf), "node-forge deploy keys end lines with CRLF"

    proc = cli("upgrade", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    assert new != demo.key
    env = EnvFile.load(demo.data_dir / ".env")
    assert env.get("COOLIFY_SECRET_KEY") == env.get("COOLIFY_SECRET_KEY_BETTER") == new.reveal()

    stored = stored_values(demo.db_path)
    where = [w for w, p in demo.plaintexts.items() if p is not None]
    got = node_cipher.decrypt_all(new.reveal(), [stored[w] or "" for w in where])
    assert got == [demo.plaintexts[w] for w in where], "Node reads every value under the new key"
    for w, raw in demo.as_is.items():
        assert stored[w] == raw, f"{w} is not ciphertext and must stay byte-identical"
    assert assert_all_decrypt(demo, new) == demo.value_count


def test_verify_and_dry_run_account_for_every_field(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    proc = cli("secrets", "verify", "--json", "--runtime", "none", "--data-dir", str(demo.data_dir))
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"], proc.stdout + proc.stderr
    assert {c["column"] for c in doc["columns"]} == FIELDS
    assert doc["values"] == demo.value_count
    texts = {w for w, raw in demo.as_is.items() if raw != ""}  # '' counts as empty
    assert texts and doc["not_ciphertext"]["count"] == len(texts)
    named = {".".join(w) for w in texts}
    assert set(doc["not_ciphertext"]["labels"]) <= named
    dry = cli(
        "secrets",
        "roll",
        "--yes",
        "--dry-run",
        "--json",
        "--runtime",
        "none",
        "--data-dir",
        str(demo.data_dir),
    )
    plan = json.loads(dry.stdout)
    assert dry.returncode == 0, dry.stderr
    assert {c["column"] for c in plan["columns"]} == FIELDS
    assert plan["values"] == demo.value_count
    assert plan["not_ciphertext"]["count"] == len(texts)


def test_a_field_an_older_database_lacks_is_reported_absent(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    conn = sqlite3.connect(demo.db_path)
    conn.execute('DROP TABLE "Taiga"')  # e.g. a database from before that service existed
    conn.commit()
    conn.close()
    proc = cli("secrets", "verify", "--json", "--runtime", "none", "--data-dir", str(demo.data_dir))
    doc = json.loads(proc.stdout)
    taiga = {f"Taiga.{c.column}" for c in CoolifyV3.encrypted_columns if c.table == "Taiga"}
    assert set(doc["fields_absent"]) == taiga and len(taiga) == 5
    human = cli("secrets", "verify", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert "Taiga.secretKey" in human.stdout and "absent" in human.stdout
    assert "59 declared, 54 present, 5 absent" in human.stdout
    listing = cli("backup", "create", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert listing.returncode == 0, listing.stderr
    doc = json.loads(
        cli(
            "backup", "list", "--json", "--runtime", "none", "--data-dir", str(demo.data_dir)
        ).stdout
    )
    assert doc["fields_declared"] == 59
    assert set(doc["backups"][0]["fields_absent"]) == taiga


def test_a_database_under_an_unknown_key_is_refused_with_nothing_changed(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    stranger = new_key()
    leak_guard.register(stranger)
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("COOLIFY_SECRET_KEY", stranger)  # a re-install wrote a fresh key: data unreadable
    env.save()
    before = tree_hash(demo.data_dir, exclude=(".coolify-migrate/lock",))
    proc = cli("upgrade", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no known key decrypts the data" in proc.stderr
    assert proc.stderr.count("\n") == 1, "one line"
    assert tree_hash(demo.data_dir, exclude=(".coolify-migrate/lock",)) == before


def test_a_strong_key_on_3_12_32_is_not_rolled_by_the_3_12_33_step(
    ctx: Context, cli: CliRunner, leak_guard: LeakGuard, tmp_path: Path
) -> None:
    demo = make_demo(tmp_path / "strong", leak_guard, rows=1)
    c = Context(profile=CoolifyV3(), data_dir=demo.data_dir)
    keyops.roll_key(
        c, force=True
    )  # as if installed with a strong random key: KEY = BETTER = strong
    strong = active_key(demo.data_dir)
    leak_guard.register(strong)
    proc = cli("upgrade", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing to roll" in proc.stdout
    assert active_key(demo.data_dir) == strong, "a strong key is kept: nobody is logged out"
    assert assert_all_decrypt(demo, strong) == demo.value_count


def test_a_self_rolled_instance_given_the_containers_keys_upgrades(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    """v3 rolled the 16 fields to a key only its /app/.env holds, and left the 43 legacy fields
    under the date-seeded key. With that file as --key-file, the upgrade rolls every value."""
    require_node()
    import v3_replay

    demo = make_demo(tmp_path / "inst", leak_guard, rows=1, version="3.12.33")
    inside = new_key()
    leak_guard.register(inside)
    v3_replay.roll(demo.db_path, demo.key.reveal(), inside.reveal(), at_ms=1_690_000_000_000)
    v3_replay.account(demo)
    keyfile = tmp_path / "app.env"
    keyfile.write_text(v3_replay.app_env(inside.reveal(), demo.key.reveal(), 1_690_000_000_000))
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("TAG", "3.12.33")
    env.save()
    refused = cli("secrets", "roll", "--yes", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert refused.returncode == 3 and "under no known key" in refused.stderr
    proc = cli(
        "upgrade", "--runtime", "none", "--data-dir", str(demo.data_dir), "--key-file", str(keyfile)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = active_key(demo.data_dir)
    leak_guard.register(final)
    assert final not in (demo.key, inside)
    assert assert_all_decrypt(demo, final) == demo.value_count


def test_keys_from_a_key_file_never_reach_the_output(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1)
    extra = Secret("k" * 32)
    leak_guard.register(extra)
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# mine\n{extra.reveal()}\nCOOLIFY_SECRET_KEY={demo.key.reveal()}\n")
    proc = cli(
        "secrets",
        "verify",
        "--runtime",
        "none",
        "--data-dir",
        str(demo.data_dir),
        "--key-file",
        str(keyfile),
        "--debug",
    )
    assert proc.returncode == 0, proc.stderr
    bad = cli(
        "secrets",
        "verify",
        "--runtime",
        "none",
        "--data-dir",
        str(demo.data_dir),
        "--key-file",
        str(tmp_path / "missing"),
    )
    assert bad.returncode == 2 and "cannot read the key file" in bad.stderr
