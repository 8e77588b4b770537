"""Assertions shared by the tests: every value decrypts to its original plaintext, under one key."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

CODEC = AesCtrJsonCodec()


def stored_values(db_path: Path) -> dict[tuple[str, str, str], str | None]:
    from coolify_migrate.apps import get_profile

    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out: dict[tuple[str, str, str], str | None] = {}
        for col in get_profile().encrypted_columns:
            names = {r[1] for r in conn.execute(f'PRAGMA table_info("{col.table}")')}
            if col.column not in names:
                continue  # an older schema: the field is absent
            for row_id, value in conn.execute(f'SELECT id, "{col.column}" FROM "{col.table}"'):
                out[(col.table, col.column, row_id)] = value
        return out
    finally:
        conn.close()


def assert_all_decrypt(demo: DemoInstance, key: Secret, db_path: Path | None = None) -> int:
    """Every fixture value decrypts under ``key`` to its original plaintext, and every value that
    is not ciphertext is byte-identical; returns the count of ciphertext values checked."""
    stored = stored_values(db_path or demo.db_path)
    as_is: dict[tuple[str, str, str], str] = getattr(demo, "as_is", {})
    assert set(stored) == set(demo.plaintexts) | set(as_is), "rows appeared or vanished"
    for where, raw in as_is.items():
        assert stored[where] == raw, f"{where} is not ciphertext and must stay byte-identical"
    checked = 0
    for where, plain in demo.plaintexts.items():
        value = stored[where]
        if plain is None:
            assert value is None, f"{where} should be NULL"
            continue
        assert value is not None
        got = CODEC.decrypt_bytes(key, value).decode("utf-8", errors="replace")
        assert got == plain, f"{where} does not decrypt to its plaintext"
        checked += 1
    return checked


def active_key(data_dir: Path) -> Secret:
    env = EnvFile.load(data_dir / ".env")
    value = env.get("COOLIFY_SECRET_KEY_BETTER") or env.get("COOLIFY_SECRET_KEY")
    assert value
    return Secret(value)


def file_hashes(data_dir: Path) -> dict[str, str]:
    """The instance's own files (.env and the live database), not backups or tool state."""
    out = {}
    for rel in (".env", "db/prod.db"):
        p = data_dir / rel
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "missing"
    for extra in ("db/prod.db-wal", "db/prod.db-journal"):
        if (data_dir / extra).exists() and (data_dir / extra).stat().st_size:
            out[extra] = "present"
    return out
