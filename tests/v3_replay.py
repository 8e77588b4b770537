"""Coolify v3's start-up key roll (3.12.33's seed script), replayed on a real database file.

The crypto is Node's own (``tests/node/v3cipher.js``, op ``v3roll``: ``encrypt(decrypt(v, old),
new)`` with v3's exact decrypt/encrypt semantics), not this project's code: the states the tests
build are the ones the app itself would have left. The database side follows what the seed script
did: ``cp prod.db prod.db_[<tag>_]<ms>`` first, then every value of the 16 fields it knew, in one
transaction, each updated row getting a fresh ``updatedAt`` (Prisma's ``@updatedAt``); a value for
which ``encrypt`` returned nothing is left as it is.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import node_cipher
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.crypto.codecs import js_trim

ROLLED = [c for c in CoolifyV3.encrypted_columns if not c.missed_by_app_roll]


def roll(db_path: Path, old: str, new: str, *, at_ms: int, tag: str | None = "3.12.33") -> Path:
    """One start of a 3.12.33+ container whose KEY is ``old`` and BETTER ``new``; returns the
    copy it made first."""
    copy = db_path.with_name(f"{db_path.name}_{tag}_{at_ms}" if tag else f"{db_path.name}_{at_ms}")
    shutil.copyfile(db_path, copy)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        work: list[tuple[str, str, int, str | None]] = []
        for col in ROLLED:
            for rowid, value in conn.execute(f'SELECT rowid, "{col.column}" FROM "{col.table}"'):
                work.append((col.table, col.column, rowid, value))
        results = node_cipher.v3_roll_all(old, new, [w[3] for w in work]) if work else []
        conn.execute("BEGIN IMMEDIATE")
        for (table, column, rowid, _), fresh in zip(work, results, strict=True):
            if fresh is None:
                continue
            conn.execute(
                f'UPDATE "{table}" SET "{column}" = ?, "updatedAt" = ? WHERE rowid = ?',
                (fresh, at_ms + 500, rowid),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return copy


def app_env(key: str, old: str, at_ms: int) -> str:
    """The container's /app/.env after a roll: KEY = BETTER = the new key, the old one kept."""
    return (
        f"COOLIFY_SECRET_KEY={key}\nCOOLIFY_SECRET_KEY_BETTER={key}\n"
        f"COOLIFY_SECRET_KEY_OLD_{at_ms}={old}\n"
    )


def account(demo: DemoInstance) -> None:
    """What a correct roll did to the fixture's expectations: a value of the 16 fields that was
    not ciphertext (but not empty) was encrypted as it was, trimmed (v3's decrypt handed back
    the stored text, its encrypt trimmed and encrypted it)."""
    rolled = {(c.table, c.column) for c in ROLLED}
    for where, raw in list(demo.as_is.items()):
        if (where[0], where[1]) in rolled and raw and js_trim(raw):
            del demo.as_is[where]
            demo.plaintexts[where] = js_trim(raw)
