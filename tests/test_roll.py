"""secrets roll / verify: one verified transaction, the key promoted on the host, and refusals
that change nothing."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import node_cipher
import pytest
from checks import active_key, assert_all_decrypt, stored_values
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import KEY_ALPHABET, new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem, Refused
from coolify_migrate.core.output import Recording
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec
from coolify_migrate.engine import keyops
from coolify_migrate.secrets import evidence, keys, reencrypt, roll, weakness
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import Keyring
from coolify_migrate.stores import sqlite as db
from support import DEMO_TIME, SRC, CliRunner, LeakGuard, tree_hash

LOCK = ".coolify-migrate/lock"
V3 = AesCtrJsonCodec()


def _env(demo: DemoInstance) -> EnvFile:
    return EnvFile.load(demo.data_dir / ".env")


def _meta(demo: DemoInstance) -> dict[str, str]:
    return db.read_meta_file(demo.db_path)


def _db_hash(demo: DemoInstance) -> str:
    return tree_hash(demo.db_path.parent)[demo.db_path.name]


def test_roll_reencrypts_everything_and_promotes_the_key(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    result = keyops.roll_key(ctx)
    env = _env(demo)
    new = Secret(env.get("COOLIFY_SECRET_KEY_BETTER") or "")
    leak_guard.register(new)
    assert result.rolled and result.outcome == "rolled"
    assert (
        result.old_fingerprint == demo.key.fingerprint and result.new_fingerprint == new.fingerprint
    )
    assert result.backup, "a pre-roll backup was taken"
    # the key: fresh, 32 characters from a 64-symbol alphabet, KEY == BETTER, the old one kept
    raw = new.reveal()
    assert len(raw) == 32 and set(raw) <= set(KEY_ALPHABET) and new != demo.key
    assert env.get("COOLIFY_SECRET_KEY") == raw
    olds = [v for _, v in env.matching(re.compile(r"COOLIFY_SECRET_KEY_OLD_\d+"))]
    assert olds == [demo.key.reveal()]
    # the data: every value decrypts under the new key; the record names it
    assert assert_all_decrypt(demo, new) == demo.value_count
    assert _meta(demo)["key_check"] == new.check_value
    counts = {c.column: c for c in result.counts}
    nulls = sum(
        1
        for (t, c, _), p in demo.plaintexts.items()
        if (t, c) == ("Wordpress", "ftpPassword") and p is None
    )
    assert nulls and counts["Wordpress.ftpPassword"].empty == nulls
    assert sum(c.reencrypted for c in result.counts) == demo.value_count
    # the keyring: new active, old retired, nothing pending
    status = {e.fingerprint: e.status for e in Keyring(ctx).entries}
    assert status == {new.fingerprint: "active", demo.key.fingerprint: "retired"}
    assert journal.current(ctx) is None
    assert not weakness.needs_roll(ctx)


@pytest.mark.skipif(not node_cipher.node_available(), reason="node is not installed")
def test_node_decrypts_every_rolled_value(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    keyops.roll_key(ctx)
    _node_reads_every_value(demo, leak_guard)


def _node_reads_every_value(demo: DemoInstance, leak_guard: LeakGuard) -> None:
    """Node's own AES reads every fixture value under the active key as the value it was."""
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    stored = stored_values(demo.db_path)
    where = [w for w, p in demo.plaintexts.items() if p is not None]
    got = node_cipher.decrypt_all(new.reveal(), [stored[w] or "" for w in where])
    assert got == [demo.plaintexts[w] for w in where]


@pytest.mark.skipif(not node_cipher.node_available(), reason="node is not installed")
def test_short_values_under_the_fields_other_key_survive_the_roll(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    """A self-rolled instance as v3.12.35 leaves it: the legacy fields under one key, the app's
    16 under the .env's, and in ``Secret.value`` short values the app's roll skipped, still under
    the other key, at IVs where the .env's key reads them as UTF-8 too (control characters
    included). Node reads every value under the new key as the value it was."""
    other = new_key()
    leak_guard.register(other)
    rng = random.Random(17)
    controls = set(range(32)) - {9, 10, 13}
    skipped = []
    conn = sqlite3.connect(demo.db_path)
    with conn:
        for col in ctx.profile.encrypted_columns:
            rows = conn.execute(f'SELECT rowid, id, "{col.column}" FROM "{col.table}"').fetchall()
            for rowid, row_id, stored in rows:
                plain = demo.plaintexts.get((col.table, col.column, row_id))
                if not stored or plain is None or not stored.startswith('{"iv"'):
                    continue
                short = col.label == "Secret.value" and 0 < len(plain.encode()) <= 10
                if not (col.missed_by_app_roll or short):
                    continue
                raw = plain.encode()
                while True:  # for a short value: an IV the .env's key misreads as UTF-8
                    iv = rng.randbytes(16)
                    value = V3.encrypt_raw(other, raw, iv=iv)
                    misread = V3.decrypt_split(demo.key, *V3.split(value))
                    if not short or (evidence.decodes(misread) and controls & set(misread)):
                        break
                skipped += [row_id] if short else []
                conn.execute(
                    f'UPDATE "{col.table}" SET "{col.column}" = ? WHERE rowid = ?', (value, rowid)
                )
    conn.close()
    assert len(skipped) >= 4
    env = _env(demo)
    env.set("COOLIFY_SECRET_KEY_OLD_1689674942981", other)  # v3's own name for a key it rolled
    env.save()
    result = keyops.roll_key(ctx)
    counts = {c.column: c for c in result.counts}
    assert result.rolled and not any(c.left for c in result.counts)
    assert counts["Secret.value"].from_keys.get(other.fingerprint) == len(skipped)
    _node_reads_every_value(demo, leak_guard)


def test_roll_again_is_a_no_op(ctx: Context, demo: DemoInstance, leak_guard: LeakGuard) -> None:
    keyops.roll_key(ctx)
    leak_guard.register(active_key(demo.data_dir))
    before = tree_hash(demo.data_dir)
    again = keyops.roll_key(ctx)
    assert not again.rolled and again.outcome == "strong"
    assert tree_hash(demo.data_dir) == before


def test_dry_run_counts_and_changes_nothing(ctx: Context, demo: DemoInstance) -> None:
    before = tree_hash(demo.data_dir)
    result = keyops.roll_key(ctx, dry_run=True)
    assert not result.rolled and result.outcome == "dry-run" and result.weak_reasons
    expected: dict[str, int] = {}
    for (table, column, _), plain in demo.plaintexts.items():
        if plain is not None:
            expected[f"{table}.{column}"] = expected.get(f"{table}.{column}", 0) + 1
    assert {c.column: c.values for c in result.counts} == expected
    assert all(c.reencrypted == c.values for c in result.counts)
    assert tree_hash(demo.data_dir) == before
    assert not (demo.data_dir / ".coolify-migrate").exists()


def test_wrong_old_key_is_refused_before_any_change(
    demo: DemoInstance, leak_guard: LeakGuard, cli: CliRunner
) -> None:
    stranger = new_key()
    leak_guard.register(stranger)
    env = _env(demo)
    env.set("COOLIFY_SECRET_KEY", stranger)  # e.g. a re-install wrote a fresh key
    env.save()
    before = tree_hash(demo.data_dir, exclude=(LOCK,))
    proc = cli("secrets", "roll", "--yes", "--data-dir", str(demo.data_dir), "--force")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no known key decrypts the data" in proc.stderr
    assert tree_hash(demo.data_dir, exclude=(LOCK,)) == before
    assert assert_all_decrypt(demo, demo.key) == demo.value_count


def test_env_naming_another_key_than_the_data_is_refused(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    stranger = new_key()
    leak_guard.register(stranger)
    env = _env(demo)
    env.set("COOLIFY_SECRET_KEY", stranger)
    env.set("COOLIFY_SECRET_KEY_OLD_1689674942981", demo.key)  # the right key is known, not active
    env.save()
    before = tree_hash(demo.data_dir)
    with pytest.raises(KeyProblem, match="does not encrypt the data"):
        keyops.roll_key(ctx, force=True)
    assert tree_hash(demo.data_dir) == before


def test_key_check_proves_the_old_key_and_the_stranger_is_kept(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    keyops.roll_key(ctx)
    first = active_key(demo.data_dir)
    stranger = new_key()
    leak_guard.register(first)
    leak_guard.register(stranger)
    env = _env(demo)
    env.set("COOLIFY_SECRET_KEY", stranger)
    env.set("COOLIFY_SECRET_KEY_BETTER", stranger)
    env.save()
    result = keyops.roll_key(ctx, force=True)  # the database's key-check value names `first`
    second = active_key(demo.data_dir)
    leak_guard.register(second)
    assert result.rolled and result.old_fingerprint == first.fingerprint
    assert assert_all_decrypt(demo, second) == demo.value_count
    assert Keyring(ctx).find(stranger.fingerprint) is not None, "no key is ever thrown away"


def test_garbage_value_aborts_the_transaction(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    keyops.roll_key(ctx)
    first = active_key(demo.data_dir)
    leak_guard.register(first)
    # a value under some other key: the key-check value skips plausibility, the roll must not
    bad = ctx.profile.codec.encrypt(new_key(), "a value under a key nobody knows any more")
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute('UPDATE "DockerRegistry" SET "password" = ? WHERE rowid = 2', (bad,))
    conn.close()
    before = tree_hash(demo.data_dir)
    with pytest.raises(KeyProblem, match=r"under no known key \(DockerRegistry\.password\.\w+\)"):
        keyops.roll_key(ctx, force=True)
    assert _db_hash(demo) == before[str(demo.db_path.relative_to(demo.data_dir))]
    assert (demo.data_dir / ".env").read_bytes() and active_key(demo.data_dir) == first
    assert _meta(demo)["key_check"] == first.check_value
    assert not [e for e in Keyring(ctx).entries if e.status == "pending"]
    assert journal.current(ctx) is None and roll.recover(ctx) is None


def test_null_and_empty_values_stay(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute('UPDATE "Secret" SET "value" = \'\' WHERE rowid = 1')
    conn.close()
    keyops.roll_key(ctx)
    leak_guard.register(active_key(demo.data_dir))
    conn = sqlite3.connect(demo.db_path)
    assert conn.execute('SELECT "value" FROM "Secret" WHERE rowid = 1').fetchone() == ("",)
    nulls = sum(
        1
        for (t, c, _), p in demo.plaintexts.items()
        if (t, c) == ("Wordpress", "ftpPassword") and p is None
    )
    assert conn.execute(
        'SELECT count(*) FROM "Wordpress" WHERE "ftpPassword" IS NULL'
    ).fetchone() == (nulls,)
    conn.close()


def test_engine_mode_advances_its_journal_and_commits_the_record(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    from coolify_migrate import backups

    info = backups.create(ctx, reason="pre-upgrade", key=demo.key)
    doc = journal.begin(ctx, "upgrade", from_version="3.12.32", to_version="3.12.33")
    result = roll.roll(
        ctx, force=True, backup=info, meta_extra={"version": "3.12.33"}, journal_doc=doc
    )
    leak_guard.register(active_key(demo.data_dir))
    assert result.rolled and result.backup == info.name
    assert _meta(demo)["version"] == "3.12.33"
    phases = [h["phase"] for h in journal.current(ctx)["history"]]  # type: ignore[index]
    assert phases[-4:] == ["roll:started", "roll:key-pending", "roll:committed", "roll:done"]
    assert not (ctx.state_dir / "runs").exists() or not list(
        (ctx.state_dir / "runs").glob("roll-*")
    )


def test_pending_state_blocks_dry_run_and_recover_finishes(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    pending = new_key()
    leak_guard.register(pending)
    Keyring(ctx).remember(pending, status="pending", source="roll")  # as if killed before BEGIN
    with pytest.raises(Refused, match="pending"):
        keyops.roll_key(ctx, dry_run=True)
    out = Recording()
    ctx.out = out
    result = roll.recover(ctx)
    assert result is not None and result.outcome == "recovered"
    assert active_key(demo.data_dir) == pending
    assert assert_all_decrypt(demo, pending) == demo.value_count
    assert roll.recover(ctx) is None  # idempotent


def test_verify_command(demo: DemoInstance, leak_guard: LeakGuard, cli: CliRunner) -> None:
    before = tree_hash(demo.data_dir)
    ok = cli("secrets", "verify", "--data-dir", str(demo.data_dir), "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["ok"] and doc["values"] == demo.value_count and doc["failed"] == 0
    assert tree_hash(demo.data_dir) == before
    conn = sqlite3.connect(demo.db_path)
    with conn:  # one value under another key: verify must notice
        conn.execute(
            'UPDATE "SshKey" SET "privateKey" = ? WHERE rowid = 1',
            (reencrypt_under_other_key(demo),),
        )
    conn.close()
    bad = cli("secrets", "verify", "--data-dir", str(demo.data_dir))
    assert bad.returncode == 5
    assert "SshKey.privateKey" in bad.stdout and "NOT OK: 1 values" in bad.stdout


def test_verify_after_a_roll_reuses_its_proof_until_the_database_changes(
    demo: DemoInstance, leak_guard: LeakGuard, cli: CliRunner
) -> None:
    common = ("--data-dir", str(demo.data_dir), "--runtime", "none")
    assert cli("secrets", "roll", "--yes", "--force", *common).returncode == 0
    leak_guard.register(active_key(demo.data_dir))
    full = json.loads(cli("secrets", "verify", "--json", "--full", *common).stdout)
    reused = cli("secrets", "verify", "--json", *common)
    assert reused.returncode == 0, reused.stderr
    doc = json.loads(reused.stdout)
    assert doc["proven_at_ms"] is not None and full["proven_at_ms"] is None
    # the roll's proof counts what a full read counts, field by field
    assert doc["columns"] == full["columns"] and doc["values"] == demo.value_count
    assert doc["not_ciphertext"]["count"] == full["not_ciphertext"]["count"]
    assert "has not changed since" in cli("secrets", "verify", *common).stdout
    conn = sqlite3.connect(demo.db_path)
    with conn:  # any write, here one value under another key: the proof no longer counts
        conn.execute(
            'UPDATE "SshKey" SET "privateKey" = ? WHERE rowid = 1',
            (reencrypt_under_other_key(demo),),
        )
    conn.close()
    bad = cli("secrets", "verify", "--json", *common)
    assert bad.returncode == 5
    assert json.loads(bad.stdout)["proven_at_ms"] is None


def reencrypt_under_other_key(demo: DemoInstance) -> str:
    plain = next(p for (t, _, _), p in demo.plaintexts.items() if t == "SshKey")
    assert plain is not None
    return roll_codec().encrypt(new_key(), plain)


def roll_codec() -> Any:
    from coolify_migrate.apps import get_profile

    return get_profile().codec


def test_planned_counts_match_the_fixture(ctx: Context, demo: DemoInstance) -> None:
    conn = ctx.store().connect(readonly=True)
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
        counts = reencrypt.planned(ctx, analysis)
    finally:
        conn.close()
    assert sum(c.values for c in counts) == demo.value_count
    nulls = sum(1 for p in demo.plaintexts.values() if p is None)
    empties = sum(1 for raw in demo.as_is.values() if raw == "")
    assert sum(c.empty for c in counts) == nulls + empties
    assert sum(c.text for c in counts) == len(demo.as_is) - empties


def test_the_issue_walkthrough_on_the_cli(
    tmp_path: Path, leak_guard: LeakGuard, cli: CliRunner
) -> None:
    """demo --installed-at T; audit says weak, seed T; roll; Node decrypts; status shows no key."""
    data = tmp_path / "walk"
    made = cli(
        "demo", "--data-dir", str(data), "--installed-at", DEMO_TIME, "--rows", "2", "--json"
    )
    assert made.returncode == 0, made.stderr
    leak_guard.register("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1")
    old_plain = {
        w: (
            roll_codec().decrypt_bytes(Secret("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"), v).decode()
            if v and roll_codec().is_encrypted(v)
            else None
        )
        for w, v in stored_values(data / "db" / "prod.db").items()
    }
    audit_run = cli("secrets", "audit", "--data-dir", str(data), "--json")
    assert audit_run.returncode == 6
    doc = json.loads(audit_run.stdout)
    assert doc["weak"] and doc["seed_time"] == DEMO_TIME
    rolled = cli("secrets", "roll", "--yes", "--data-dir", str(data), "--json")
    assert rolled.returncode == 0, rolled.stderr
    result = json.loads(rolled.stdout.splitlines()[-1])
    assert result["rolled"] and result["reencrypted"] == sum(
        v is not None for v in old_plain.values()
    )
    new = active_key(data)
    leak_guard.register(new)
    stored = stored_values(data / "db" / "prod.db")
    where = [w for w, p in old_plain.items() if p is not None]
    if node_cipher.node_available():
        assert node_cipher.decrypt_all(new.reveal(), [stored[w] or "" for w in where]) == [
            old_plain[w] for w in where
        ]
    status = cli("status", "--data-dir", str(data), "--json", "--runtime", "none")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["key_fingerprint"] == new.fingerprint and st["key_check"] == "match"
    assert new.reveal() not in status.stdout
    assert cli("secrets", "verify", "--data-dir", str(data)).returncode == 0
    again = cli("secrets", "roll", "--yes", "--data-dir", str(data), "--json")
    assert again.returncode == 0 and not json.loads(again.stdout.splitlines()[-1])["rolled"]
    audit_after = cli("secrets", "audit", "--data-dir", str(data), "--json")
    assert audit_after.returncode == 0 and not json.loads(audit_after.stdout)["weak"]


def test_reencrypt_on_every_core_matches(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool path (forked workers, tiny batches so many cross the pipes) gives the same data."""
    monkeypatch.setattr(reencrypt, "POOL_FROM_ROWS", 0)
    new = new_key()
    leak_guard.register(new)
    conn = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
        counts = reencrypt.reencrypt(ctx, conn, analysis, new, batch=2, workers=2)
    finally:
        conn.close()
    assert sum(c.reencrypted for c in counts) == demo.value_count
    assert sum(c.text for c in counts) == sum(1 for raw in demo.as_is.values() if raw)
    assert assert_all_decrypt(demo, new) == demo.value_count
    assert _meta(demo)["key_check"] == new.check_value


def test_a_worker_failure_rolls_everything_back(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reencrypt, "POOL_FROM_ROWS", 0)
    conn = sqlite3.connect(demo.db_path)
    with conn:  # a later table's row holds a value under a key nobody knows
        conn.execute(
            'UPDATE "Certificate" SET "key" = ? WHERE rowid = 2',
            (roll_codec().encrypt(new_key(), "-----BEGIN EC PRIVATE KEY----- lost"),),
        )
    conn.close()
    before = _db_hash(demo)
    new = new_key()
    conn = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
        assert analysis.unknown.count == 1
        with pytest.raises(
            KeyProblem, match=r"Certificate\.key\.\w+ is under no proven key"
        ) as caught:
            reencrypt.reencrypt(ctx, conn, analysis, new, batch=1, workers=2)
    finally:
        conn.close()
    assert "secrets verify" in caught.value.hint  # the worker's hint came back intact
    assert _db_hash(demo) == before


@pytest.mark.parametrize("workers", [1, 2])
def test_a_row_stored_otherwise_than_checked_rolls_everything_back(
    ctx: Context,
    demo: DemoInstance,
    leak_guard: LeakGuard,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    """Each row is written only where it still holds the values that were read and checked: a
    write that lands on another row (here: the last update of a batch aimed at the first's row)
    is caught before COMMIT, and nothing changes."""
    monkeypatch.setattr(reencrypt, "POOL_FROM_ROWS", 0)
    real_replace = db.SQLiteConnection.replace

    def misplaced(
        self: db.SQLiteConnection, table: str, columns: list[str], rows: list[Any]
    ) -> int:
        if table == "Secret" and len(rows) > 1:
            # (row key, label, old..., new...): the last row's values, aimed at the first row
            rows = [*rows[:-1], (rows[0][0], *rows[-1][1:])]
        return real_replace(self, table, columns, rows)

    monkeypatch.setattr(db.SQLiteConnection, "replace", misplaced)
    before = _db_hash(demo)
    new = new_key()
    leak_guard.register(new)
    conn = ctx.store().connect()
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
        with pytest.raises(ChangeFailed, match="no longer held the values that were read"):
            reencrypt.reencrypt(ctx, conn, analysis, new, workers=workers)
    finally:
        conn.close()
    assert _db_hash(demo) == before


def test_a_killed_roll_leaves_no_worker_behind(demo: DemoInstance) -> None:
    """SIGKILL while the crypto workers are busy: they die with it (they would otherwise run on,
    holding the inherited lock descriptor), and SQLite rolls the transaction back."""
    code = (
        "import sys, time; from pathlib import Path; from coolify_migrate.stores import sqlite as db; from coolify_migrate.secrets import keys, reencrypt; "
        "from coolify_migrate.core.context import Context; from coolify_migrate.apps.coolify_v3.profile import new_key; "
        "from coolify_migrate.core.app import KeyCandidate; "
        "from coolify_migrate.core.secret import Secret; reencrypt.POOL_FROM_ROWS = 0; "
        "slow = reencrypt._batch; "
        "reencrypt._batch = lambda *a: (time.sleep(60), slow(*a))[1]; "
        "from coolify_migrate.stores.sqlite import SQLiteStore; "
        f"conn = SQLiteStore(Path({str(demo.db_path)!r})).connect(); "
        f"from coolify_migrate.apps.coolify_v3.profile import CoolifyV3; ctx = Context(profile=CoolifyV3(), data_dir=Path({str(demo.data_dir)!r})); "
        "key = KeyCandidate('k', Secret(sys.stdin.readline().strip())); "
        "a = keys.analyse(ctx, conn, [key], full=True); "
        "reencrypt.reencrypt(ctx, conn, a, new_key(), batch=1, workers=2)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write(demo.key.reveal() + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while len(_orphans(code)) < 3 and time.monotonic() < deadline:  # parent + 2 workers
            time.sleep(0.05)
        assert len(_orphans(code)) >= 3, "the workers did not start"
        time.sleep(0.2)  # the workers are inside their (slow) batches now
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 1
    while _orphans(code) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _orphans(code), "crypto workers outlived the killed roll"
    assert assert_all_decrypt(demo, demo.key) == demo.value_count  # rolled back by SQLite


def _orphans(code: str) -> list[int]:
    """Live (not zombie) processes running ``code``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if code in cmd and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def test_a_roll_never_changes_a_plaintext_not_even_its_whitespace(
    ctx: Context, demo: DemoInstance, leak_guard: LeakGuard
) -> None:
    # a value stored untrimmed (another app version, or a hand edit): v3's own roll trimmed it
    padded = "  keep my spaces\u3000"
    conn = sqlite3.connect(demo.db_path)
    conn.execute(
        'UPDATE "Secret" SET value = ? WHERE rowid = 1',
        (ctx.profile.codec.encrypt_exact(demo.key, padded),),
    )
    conn.commit()
    conn.close()
    result = keyops.roll_key(ctx, force=True)
    assert result.rolled
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    conn = sqlite3.connect(demo.db_path)
    stored = conn.execute('SELECT value FROM "Secret" WHERE rowid = 1').fetchone()[0]
    conn.close()
    assert ctx.profile.codec.decrypt_bytes(new, stored).decode() == padded


def test_a_table_of_long_values_goes_in_smaller_batches_every_row_once(
    ctx: Context, demo: DemoInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is in flight stays about ``TASK_BYTES`` of stored values: keys (kilobytes each) go a
    row or two per batch, short passwords many; each table's rows come once each, in order."""
    monkeypatch.setattr(reencrypt, "TASK_BYTES", 4096)
    monkeypatch.setattr(reencrypt, "PROBE_ROWS", 2)
    conn = ctx.store().connect(readonly=True)
    try:
        sizes = {}
        for table, column in (("SshKey", "privateKey"), ("Secret", "value")):
            batches = list(reencrypt._batches(conn, table, [column], "id", 50))
            every = [r for b in conn.rows(table, [column], id_column="id") for r in b]
            assert [r for b in batches for r in b] == every
            assert len(batches[0]) == 2 and len(every) > 4
            sizes[table] = {len(b) for b in batches[1:-1]} or {len(batches[-1])}
    finally:
        conn.close()
    assert sizes["SshKey"] == {1}, sizes  # about 3 KB a key: one per 4 KB batch
    assert min(sizes["Secret"]) > 10, sizes  # about 150 bytes a password
