"""Re-encrypting every encrypted column in one verified transaction, and ``secrets verify``.

The roll's heart: one ``BEGIN IMMEDIATE`` .. ``COMMIT`` over all columns, so the database is under
the old key or the new one, never both. Rows stream in batches by rowid (memory stays flat at any
size); each value is decrypted with the old key (and must look like real plaintext: v3 has no MAC,
so a wrong key would silently turn data into garbage), encrypted with the new key, and the new
value decrypted again and compared before it is written. The key-check value of the new key (and
the caller's version record) commit in the same transaction.

On a large database the crypto work runs on every core: the codec and both keys reach forked
worker processes as inherited module state (a key is never pickled nor sent through a pipe);
workers receive stored values and return new ones, while this process alone reads and writes
SQLite, inside the one transaction.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from installer import db, instance, keys, procs
from installer.context import Context
from installer.crypto.codecs import Codec, DecryptError, decrypt_text
from installer.errors import ChangeFailed, KeyProblem, MigrateError
from installer.profiles import EncryptedColumn
from installer.secret import Secret

BATCH = 2000
POOL_FROM_ROWS = 20_000  # below this a pool costs more than it saves
POOL_TASK = 500  # rows per task sent to a worker: small, so little is in flight at once


@dataclass
class ColumnRoll:
    column: str
    values: int = 0  # encrypted values (not NULL, not '')
    empty: int = 0  # NULL or '': left as they are
    reencrypted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "values": self.values,
            "empty": self.empty,
            "reencrypted": self.reencrypted,
        }


def count_values(ctx: Context, conn: sqlite3.Connection) -> list[ColumnRoll]:
    """Per column: how many values a roll would re-encrypt. One cheap query per column."""
    counts = []
    for column in ctx.profile.encrypted_columns:
        count = ColumnRoll(column.label)
        if db.table_exists(conn, column.table):
            total, filled = conn.execute(
                f'SELECT count(*), count(NULLIF("{column.column}", \'\')) FROM "{column.table}"'
            ).fetchone()
            count.values, count.empty = filled, total - filled
        counts.append(count)
    return counts


def reencrypt(
    ctx: Context,
    conn: sqlite3.Connection,
    old: Secret,
    new: Secret,
    *,
    meta: dict[str, str] | None = None,
    batch: int = BATCH,
    workers: int | None = None,
) -> list[ColumnRoll]:
    """Re-encrypt every value from ``old`` to ``new`` in ONE transaction; all or nothing.

    Table by table, all of a row's encrypted columns in one UPDATE: SQLite rewrites the whole
    row record on any update, so a pass per column would rewrite wide rows several times.
    """
    total = _rows_total(ctx, conn)
    bar = ctx.out.progress("re-encrypting", total)
    counts = {c.label: ColumnRoll(c.label) for c in ctx.profile.encrypted_columns}
    cores = (os.cpu_count() or 1) if workers is None else workers
    crypto = _Crypto(ctx.profile.codec, old, new, cores if total >= POOL_FROM_ROWS else 1)
    try:  # the pool forks before BEGIN: no child ever shares an open transaction
        with crypto, db.transaction(conn, name="roll"):
            for table, columns in _by_table(ctx.profile.encrypted_columns).items():
                if not db.table_exists(conn, table):
                    continue
                names = ", ".join(f'"{c.column}"' for c in columns)
                sets = ", ".join(f'"{c.column}" = ?' for c in columns)
                update = f'UPDATE "{table}" SET {sets} WHERE rowid = ?'
                per_read = batch if crypto.workers == 1 else min(batch, POOL_TASK)
                batches = _iter_rows(conn, table, names, per_read)
                for rows_seen, updates, done in crypto.run(columns, batches):
                    _add(counts, done)
                    bar.advance(rows_seen)
                    if updates:
                        written = conn.executemany(update, updates).rowcount
                        if written != len(updates):
                            raise ChangeFailed(
                                f"{table}: {written} of {len(updates)} rows "
                                "updated; the transaction was rolled back"
                            )
            db.write_meta(conn, key_check=new.check_value, **(meta or {}))
    except sqlite3.Error as err:
        raise ChangeFailed(f"re-encryption failed and was rolled back: {err}") from err
    finally:
        bar.close()
    return list(counts.values())


def _add(counts: dict[str, ColumnRoll], done: dict[str, ColumnRoll]) -> None:
    for label, c in done.items():
        counts[label].values += c.values
        counts[label].empty += c.empty
        counts[label].reencrypted += c.reencrypted


def _by_table(columns: tuple[EncryptedColumn, ...]) -> dict[str, list[EncryptedColumn]]:
    grouped: dict[str, list[EncryptedColumn]] = {}
    for column in columns:
        grouped.setdefault(column.table, []).append(column)
    return grouped


def _iter_rows(
    conn: sqlite3.Connection, table: str, names: str, batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    """(rowid, *values) in batches by rowid: memory stays flat whatever the table's size."""
    sql = f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    last = -(2**63)
    while rows := conn.execute(sql, (last, batch)).fetchall():
        yield rows
        last = rows[-1][0]


def _rows_total(ctx: Context, conn: sqlite3.Connection) -> int:
    """Rows to visit, for progress: count(*) walks the b-tree only, never the large values."""
    tables = [t for t in _by_table(ctx.profile.encrypted_columns) if db.table_exists(conn, t)]
    return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)


def _batch(
    codec: Codec,
    columns: list[EncryptedColumn],
    rows: list[tuple[Any, ...]],
    old: Secret,
    new: Secret,
    counts: dict[str, ColumnRoll],
) -> list[tuple[Any, ...]]:
    """(new values..., rowid) for every row with a secret, each new value checked before use."""
    check_plaintext = not codec.authenticated
    updates: list[tuple[Any, ...]] = []
    for row in rows:
        rowid, fresh_row, changed = row[0], list(row[1:]), False
        for i, column in enumerate(columns):
            stored = fresh_row[i]
            count = counts[column.label]
            if stored is None or stored == "":
                count.empty += 1  # NULL and '' hold no secret and stay as they are
                continue
            try:
                plain = decrypt_text(codec, old, stored)
            except DecryptError as err:
                raise KeyProblem(
                    f"{column.label} rowid {rowid} does not decrypt under the data "
                    f"key ({err}); nothing was changed"
                ) from err
            if check_plaintext and not keys.plausible(column, plain):
                raise KeyProblem(
                    f"{column.label} rowid {rowid} decrypts to garbage under the "
                    "data key; nothing was changed",
                    hint="run 'coolify-migrate secrets verify' and 'secrets audit'",
                )
            fresh = codec.encrypt_exact(new, plain)  # never trim: the plaintext must not change
            if decrypt_text(codec, new, fresh) != plain:
                raise ChangeFailed(
                    f"{column.label} rowid {rowid}: the new value does not "
                    "decrypt back to the old plaintext; the transaction was "
                    "rolled back"
                )
            fresh_row[i], changed = fresh, True
            count.values += 1
            count.reencrypted += 1
        if changed:
            updates.append((*fresh_row, rowid))
    return updates


# -- the crypto work, in this process or on every core ------------------------------------------

_job: tuple[Codec, Secret, Secret] | None = None  # set before the pool forks; inherited, not sent
_Rows = list[tuple[Any, ...]]
_Done = tuple[int, list[tuple[Any, ...]], dict[str, ColumnRoll]]
_Failure = tuple[str, str, str]  # error class name, message, hint


def _init_worker(parent: int) -> None:
    procs.die_with_parent(parent)


def _work(task: tuple[list[EncryptedColumn], _Rows]) -> tuple[_Done | None, _Failure | None]:
    columns, rows = task
    assert _job is not None
    codec, old, new = _job
    counts = {c.label: ColumnRoll(c.label) for c in columns}
    try:
        return (len(rows), _batch(codec, columns, rows, old, new, counts), counts), None
    except MigrateError as err:  # sent back as fields: the hint survives, no traceback travels
        return None, (type(err).__name__, err.message, err.hint)


class _Crypto:
    """Runs ``_batch`` here, or on ``workers`` forked processes with a bounded window of work."""

    def __init__(self, codec: Codec, old: Secret, new: Secret, workers: int) -> None:
        self.codec, self.old, self.new = codec, old, new
        fork = "fork" in multiprocessing.get_all_start_methods()
        self.workers = workers if fork and workers > 1 else 1
        self.pool: Any = None

    def __enter__(self) -> _Crypto:
        global _job
        if self.workers > 1:
            _job = (self.codec, self.old, self.new)
            mp = multiprocessing.get_context("fork")
            self.pool = mp.Pool(self.workers, initializer=_init_worker, initargs=(os.getpid(),))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _job
        _job = None
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def run(self, columns: list[EncryptedColumn], batches: Iterator[_Rows]) -> Iterator[_Done]:
        if self.pool is None:
            for rows in batches:
                counts = {c.label: ColumnRoll(c.label) for c in columns}
                updates = _batch(self.codec, columns, rows, self.old, self.new, counts)
                yield len(rows), updates, counts
            return
        pending: deque[Any] = deque()
        for rows in batches:
            pending.append(self.pool.apply_async(_work, ((columns, rows),)))
            if len(pending) >= 2 * self.workers:
                yield _result(pending.popleft().get())
        while pending:
            yield _result(pending.popleft().get())


def _result(got: tuple[_Done | None, _Failure | None]) -> _Done:
    done, failure = got
    if failure is not None:
        kind, message, hint = failure
        raise (KeyProblem if kind == "KeyProblem" else ChangeFailed)(message, hint=hint)
    assert done is not None
    return done


# -- secrets verify -----------------------------------------------------------------------------


@dataclass
class VerifyReport:
    key_source: str | None
    key_fingerprint: str | None
    key_check: str  # "match", "mismatch", "not recorded"
    counts: list[keys.ColumnCount] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.counts)

    @property
    def ok(self) -> bool:
        return self.key_fingerprint is not None and not self.failed and self.key_check != "mismatch"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key_source": self.key_source,
            "key_fingerprint": self.key_fingerprint,
            "key_check": self.key_check,
            "values": sum(c.ok + c.failed for c in self.counts),
            "failed": self.failed,
            "columns": [c.as_dict() for c in self.counts],
        }

    def lines(self) -> list[str]:
        out = [
            f"active key: {self.key_fingerprint or 'none'}"
            + (f" (from {self.key_source})" if self.key_source else ""),
            f"key check:  {self.key_check}",
        ]
        for c in self.counts:
            flag = "" if not c.failed else "  <- FAILED"
            out.append(
                f"  {c.column:<30} {c.ok:>8} ok {c.failed:>6} failed {c.null:>6} empty{flag}"
            )
        out.append(
            "verdict:    "
            + (
                "every value decrypts under the active key"
                if self.ok
                else f"NOT OK: {self.failed} values do not decrypt under the active key"
                + ("; the database records another key" if self.key_check == "mismatch" else "")
            )
        )
        return out


def verify(ctx: Context) -> VerifyReport:
    """Decrypt every value under the .env active key and count per column. Read-only."""
    env = instance.load_env(ctx)
    active = ctx.profile.active_key(env)
    conn = db.connect(instance.database_path(ctx), readonly=True)
    try:
        if active is None:
            return VerifyReport(None, None, "not recorded")
        ctx.redactor.add(active.key)
        check = keys.check_state(db.read_meta(conn).get("key_check"), active.key)
        return VerifyReport(
            active.source, active.key.fingerprint, check, keys.verify_all(ctx, conn, active.key)
        )
    finally:
        conn.close()
