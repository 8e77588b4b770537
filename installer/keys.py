"""Which key actually encrypts the data, and does every value decrypt under it.

A Coolify v3 value decrypted with the wrong key is garbage, not an error, so the tool must never
trust a key because it "worked". Two kinds of proof, in this order:

1. the key-check value the tool stores in the database whenever it sets a key (``installer.db``):
   the candidate whose HMAC matches it is the key, and no other;
2. where no check value exists yet (a legacy instance), strict plausibility of **every**
   decrypted value: valid UTF-8, printable, and PEM/OpenSSH structure for private-key columns.
   Exactly one candidate must pass; none or several is refused, with nothing changed.

An authenticated codec (Fernet) needs no plausibility: a wrong key fails to decrypt.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer import db
from installer.context import Context
from installer.crypto.codecs import DecryptError, decrypt_text
from installer.envfile import EnvFile
from installer.errors import KeyProblem
from installer.keyring import Keyring
from installer.profiles import EncryptedColumn, KeyCandidate
from installer.secret import Secret

BATCH = 2000
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\n[A-Za-z0-9+/=\n\r:,\- ]+-----END \1-----", re.DOTALL
)
_GARBAGE_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def plausible(column: EncryptedColumn, text: str) -> bool:
    if _CONTROL.search(text) or not (text.isprintable() or _printable_multiline(text)):
        return False
    if column.pem:
        return _PEM.fullmatch(text.strip()) is not None
    return True


def _printable_multiline(text: str) -> bool:
    # str methods first, not a per-character loop: this runs for every PEM value of a roll
    if text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable():
        return True
    # Real text may hold separators (U+00A0, U+3000) or format characters (the zero-width joiner
    # of emoji sequences) that isprintable() rejects; garbage shows up as control, surrogate,
    # private-use or unassigned code points (or fails UTF-8 decoding before this).
    return all(
        unicodedata.category(ch) not in _GARBAGE_CATEGORIES for ch in text if ch not in "\n\r\t"
    )


def iter_values(
    conn: sqlite3.Connection, column: EncryptedColumn, *, batch: int = BATCH
) -> Iterator[list[tuple[int, str | None]]]:
    """Stream (rowid, stored value) in batches, by rowid, so memory stays flat."""
    if not db.table_exists(conn, column.table):
        return
    last = -(2**63)
    sql = (
        f'SELECT rowid, "{column.column}" FROM "{column.table}" '
        "WHERE rowid > ? ORDER BY rowid LIMIT ?"
    )
    while True:
        rows = conn.execute(sql, (last, batch)).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def candidates(ctx: Context, env: EnvFile) -> list[KeyCandidate]:
    found = list(ctx.profile.key_candidates(env))
    for entry in Keyring(ctx).entries:
        if all(entry.key != c.key for c in found):
            found.append(KeyCandidate(f"keyring ({entry.status})", entry.key))
    for c in found:
        ctx.redactor.add(c.key)
    return found


@dataclass
class Verdict:
    key: Secret | None
    source: str | None
    method: str  # "key-check", "plausibility", "no-data"
    tried: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.key.fingerprint if self.key else None,
            "source": self.source,
            "method": self.method,
            "candidates": self.tried,
        }


def _check_candidate(ctx: Context, conn: sqlite3.Connection, key: Secret) -> tuple[bool, int]:
    """(every value plausible, values checked); stops at the first implausible value."""
    codec = ctx.profile.codec
    checked = 0
    for column in ctx.profile.encrypted_columns:
        for rows in iter_values(conn, column):
            for _, stored in rows:
                if stored is None or stored == "":
                    continue
                try:
                    text = decrypt_text(codec, key, stored)
                except DecryptError:
                    return False, checked
                if not codec.authenticated and not plausible(column, text):
                    return False, checked
                checked += 1
    return True, checked


def identify(ctx: Context, conn: sqlite3.Connection, cands: list[KeyCandidate]) -> Verdict:
    """Decide which candidate encrypts the database, or raise KeyProblem (nothing changed)."""
    recorded = db.read_meta(conn).get("key_check")
    if recorded:
        for c in cands:
            if c.key.check_value == recorded:
                return Verdict(
                    c.key,
                    c.source,
                    "key-check",
                    [
                        {
                            "source": c.source,
                            "fingerprint": c.key.fingerprint,
                            "result": "key-check match",
                        }
                    ],
                )
        raise KeyProblem(
            f"the database was encrypted with key {recorded[:16]}, which this instance no longer knows",
            hint="put that key back in .env (or the keyring) - 'backup list' shows which backups use which key",
            needed=recorded[:16],
        )
    tried: list[dict[str, Any]] = []
    passing: list[KeyCandidate] = []
    any_data = False
    for c in cands:
        ok, checked = _check_candidate(ctx, conn, c.key)
        any_data = any_data or checked > 0 or not ok
        tried.append(
            {
                "source": c.source,
                "fingerprint": c.key.fingerprint,
                "result": "decrypts every value" if ok else f"fails after {checked} values",
            }
        )
        if ok:
            passing.append(c)
    if not any_data:
        first = cands[0] if cands else None
        return Verdict(
            first.key if first else None, first.source if first else None, "no-data", tried
        )
    if len(passing) == 1:
        return Verdict(passing[0].key, passing[0].source, "plausibility", tried)
    if not passing:
        raise KeyProblem(
            "no known key decrypts the data ("
            + ", ".join(f"{t['source']}: {t['result']}" for t in tried)
            + ")",
            hint="add the right key to .env as COOLIFY_SECRET_KEY_OLD_<ms>=..., or restore a backup",
        )
    raise KeyProblem(
        "more than one key decrypts the data plausibly: "
        + ", ".join(f"{c.source} ({c.key.fingerprint})" for c in passing),
        hint="remove the keys that are not in use from .env, or pass --key-source",
    )


def live_key(ctx: Context, conn: sqlite3.Connection, env: EnvFile) -> Verdict:
    return identify(ctx, conn, candidates(ctx, env))


@dataclass
class ColumnCount:
    column: str
    ok: int = 0
    failed: int = 0
    null: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "ok": self.ok, "failed": self.failed, "null": self.null}


def verify_all(ctx: Context, conn: sqlite3.Connection, key: Secret) -> list[ColumnCount]:
    """Decrypt every value under ``key``; count per column (never stops early)."""
    codec = ctx.profile.codec
    counts: list[ColumnCount] = []
    for column in ctx.profile.encrypted_columns:
        count = ColumnCount(column.label)
        for rows in iter_values(conn, column):
            for _, stored in rows:
                if stored is None or stored == "":
                    count.null += 1
                    continue
                try:
                    text = decrypt_text(codec, key, stored)
                    good = codec.authenticated or plausible(column, text)
                except DecryptError:
                    good = False
                if good:
                    count.ok += 1
                else:
                    count.failed += 1
        counts.append(count)
    return counts


def undecryptable(ctx: Context, db_path: Path, key: Secret) -> int:
    """How many values of the database at ``db_path`` do not decrypt under ``key``. Read-only."""
    conn = db.connect(db_path, readonly=True)
    try:
        return sum(c.failed for c in verify_all(ctx, conn, key))
    finally:
        conn.close()


def check_state(recorded: str | None, key: Secret) -> str:
    """``match``/``mismatch`` of the key-check value stored in the database, or ``not recorded``."""
    if not recorded:
        return "not recorded"
    return "match" if recorded == key.check_value else "mismatch"
