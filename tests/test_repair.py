"""``secrets repair`` on instances v3's own start-up roll broke, replayed with Node's crypto
(``tests/v3_replay.py``): the first roll O -> N, a secret written, then the wrong-key re-roll."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import node_cipher
import pytest
import v3_replay
from checks import active_key, assert_all_decrypt, stored_values
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec
from support import CliRunner, LeakGuard, make_demo, tree_hash

V3 = AesCtrJsonCodec()
ROLL1_MS = 1_690_000_000_000
ROLL2_MS = 1_690_100_000_000
LOCK = ".coolify-migrate/lock"


@pytest.fixture(autouse=True)
def _node() -> None:
    if not node_cipher.node_available():
        if os.environ.get("CI"):
            pytest.fail("node is required under CI")
        pytest.skip("node is not installed")


def _write_between(demo: DemoInstance, key: Secret) -> tuple[str, str]:
    """The user changes a secret and adds one while the app runs on ``key`` (between rolls)."""
    conn = sqlite3.connect(demo.db_path)
    try:
        row_id, app_id = conn.execute(
            'SELECT id, "applicationId" FROM "Secret" WHERE "isPRMRSecret" = 0 '
            "AND value LIKE '{%' LIMIT 1"
        ).fetchone()
        changed = "rotated-token-" + os.urandom(8).hex()
        conn.execute(
            'UPDATE "Secret" SET value = ?, "updatedAt" = ? WHERE id = ?',
            (V3.encrypt(key, changed), ROLL1_MS + 60_000, row_id),
        )
        added_id = "clz" + os.urandom(11).hex()
        added = "postgres://new:" + os.urandom(6).hex() + "@db/new"
        conn.execute(
            'INSERT INTO "Secret" (id, name, value, "isBuildSecret", "isPRMRSecret", '
            '"applicationId", "createdAt", "updatedAt") VALUES (?, ?, ?, 0, 0, ?, ?, ?)',
            (
                added_id,
                "ADDED_LATER",
                V3.encrypt(key, added),
                app_id,
                ROLL1_MS + 90_000,
                ROLL1_MS + 90_000,
            ),
        )
        conn.commit()
    finally:
        conn.close()
    demo.plaintexts[("Secret", "value", row_id)] = changed
    demo.plaintexts[("Secret", "value", added_id)] = added
    return row_id, added_id


def _double_rolled(tmp_path: Path, guard: LeakGuard) -> tuple[DemoInstance, Secret, Path]:
    demo = make_demo(tmp_path / "inst", guard, rows=1, version="3.12.33")
    inside = new_key()  # BETTER: only the container's /app/.env keeps it
    guard.register(inside)
    old, new = demo.key.reveal(), inside.reveal()
    v3_replay.roll(demo.db_path, old, new, at_ms=ROLL1_MS)  # first start: O -> N, correct
    _write_between(demo, inside)
    v3_replay.roll(demo.db_path, old, new, at_ms=ROLL2_MS)  # restart: O -> N again: garbage
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("TAG", "3.12.33")
    env.save()
    keyfile = tmp_path / "app.env"
    keyfile.write_text(v3_replay.app_env(new, old, ROLL2_MS))
    return demo, inside, keyfile


def test_the_replayed_re_roll_really_garbled_the_values(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    demo, inside, _ = _double_rolled(tmp_path, leak_guard)
    stored = stored_values(demo.db_path)
    rolled = {c.label for c in v3_replay.ROLLED}
    wrong = 0
    for where, plain in demo.plaintexts.items():
        if plain and f"{where[0]}.{where[1]}" in rolled:
            got = V3.decrypt_bytes(inside, stored[where] or "")
            wrong += got != plain.encode()
    assert wrong > 20, "most values of the 16 fields are garbage under the container's key"


def test_repair_recovers_every_value_including_one_written_between_the_rolls(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo, inside, keyfile = _double_rolled(tmp_path, leak_guard)
    args = ("--runtime", "none", "--data-dir", str(demo.data_dir), "--key-file", str(keyfile))
    before = tree_hash(demo.data_dir, exclude=(LOCK,))
    dry = cli("secrets", "repair", "--yes", "--dry-run", "--json", *args)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["counts"].get("recovered", 0) > 20 and not plan["unproven"]["count"]
    assert tree_hash(demo.data_dir, exclude=(LOCK,)) == before, "a dry run changes nothing"

    proc = cli("secrets", "repair", "--yes", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    live = active_key(demo.data_dir)
    leak_guard.register(live)
    env = EnvFile.load(demo.data_dir / ".env")
    assert env.get("COOLIFY_SECRET_KEY") == env.get("COOLIFY_SECRET_KEY_BETTER") == live.reveal()
    assert live not in (demo.key, inside) and len(live.reveal()) == 32
    assert assert_all_decrypt(demo, live) == demo.value_count  # the two later writes included
    stored = stored_values(demo.db_path)
    where = [w for w, p in demo.plaintexts.items() if p is not None]
    assert node_cipher.decrypt_all(live.reveal(), [stored[w] or "" for w in where]) == [
        demo.plaintexts[w] for w in where
    ]
    again = cli("secrets", "verify", *args)
    assert again.returncode == 0, again.stdout


def test_a_value_whose_chain_ends_under_an_unknown_key_is_named_and_left(
    tmp_path: Path, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=1, version="3.12.33")
    lost = new_key()  # the first roll's key: gone with the container that held it
    leak_guard.register(lost)
    second = new_key()
    leak_guard.register(second)
    v3_replay.roll(demo.db_path, demo.key.reveal(), lost.reveal(), at_ms=ROLL1_MS)
    v3_replay.roll(demo.db_path, demo.key.reveal(), second.reveal(), at_ms=ROLL2_MS)
    keyfile = tmp_path / "app.env"
    keyfile.write_text(v3_replay.app_env(second.reveal(), demo.key.reveal(), ROLL2_MS))
    args = ("--runtime", "none", "--data-dir", str(demo.data_dir), "--key-file", str(keyfile))
    before = stored_values(demo.db_path)
    proc = cli("secrets", "repair", "--yes", "--json", *args)
    assert proc.returncode == 7, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout.splitlines()[-1])
    assert doc["event"] == "result" and doc["unproven"]["count"] > 0
    after = stored_values(demo.db_path)
    for label in doc["unproven"]["labels"]:
        table, column, row_id = label.split(".", 2)
        assert after[(table, column, row_id)] == before[(table, column, row_id)], label
    live = active_key(demo.data_dir)
    leak_guard.register(live)
    legacy = [w for w, p in demo.plaintexts.items() if p and w[0] == "Minio"]
    assert legacy and all(
        V3.decrypt_bytes(live, after[w] or "") == (demo.plaintexts[w] or "").encode()
        for w in legacy
    ), "the legacy fields (under the known old key) are rolled to the new key"
