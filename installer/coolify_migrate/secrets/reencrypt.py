"""Re-encrypting every encrypted value in one verified transaction.

The roll's heart: one ``BEGIN IMMEDIATE`` .. ``COMMIT`` over all fields, so no value is ever left
under a key the roll meant to retire. Rows stream in batches by rowid (memory stays flat at any
size). Each ciphertext value is decrypted with the key ``coolify_migrate.secrets.keys`` attributed it to (the
field's own key first: an instance can hold several), and its exact bytes are encrypted under the
new key: AES-CTR is exact for any bytes, so no plaintext ever changes, not even its white space.
Each new value is decrypted again and compared before it is written (encrypted by OpenSSL's CTR
mode, decrypted by this project's own CTR over AES-ECB: two implementations check each other),
and each row is written only where it still holds exactly the values that were read and checked
(compare and set, ``Connection.replace``): a write meant for one row cannot land on another.
Values that are not ciphertext, NULL or empty stay
byte-identical. A ciphertext value that no proven key reads stops the roll (the transaction rolls
back): the caller refuses such instances before it starts, unless the operator named the value
to be left (``Context.leave``): it is then counted, named and left byte-identical. The key-check
value of the new key (and the caller's version record) commit in the same transaction.

On a large database the crypto work runs on every core: the codec and the keys reach forked
worker processes as inherited module state (a key is never pickled nor sent through a pipe);
workers receive stored values and return new ones, while this process alone reads and writes
SQLite, inside the one transaction.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import add, countOf
from typing import Any

from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.core.workers import Workers
from coolify_migrate.crypto.codecs import Codec
from coolify_migrate.secrets import attribution, keys, values
from coolify_migrate.secrets.evidence import established, utf8_bits
from coolify_migrate.secrets.keys import Analysis

BATCH = 2000
POOL_FROM_ROWS = 20_000  # below this a pool costs more than it saves
# Rows per task sent to a worker. Fewer, larger tasks cost this process less; each in flight
# costs memory. For 1M values (docs/performance.md): 500 rows 14.7 s, 1000 rows 12.2 s and
# 87 + 60 MB per worker peak, 2000 rows 11.9 s and 121 + 92 MB per worker.
POOL_TASK = 1000
# ... and about this many bytes of stored values per batch: 1000 rows of keys or certificates
# (4 KB each) made the peak 20-25 MB higher than 1000 rows of passwords (docs/performance.md).
TASK_BYTES = 512 * 1024
PROBE_ROWS = 100  # the first rows of a table, read to measure its values


@dataclass
class ColumnRoll:
    column: str
    values: int = 0  # ciphertext values
    empty: int = 0  # NULL or '': left as they are
    text: int = 0  # not ciphertext: left byte-identical
    reencrypted: int = 0
    left: int = 0  # under no known key, left as the operator asked
    absent: bool = False  # the database has no such table or column (an older schema)
    from_keys: dict[str, int] = field(default_factory=dict)  # old key fingerprint -> values
    text_labels: list[str] = field(default_factory=list)  # the first few not-ciphertext values

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "absent": self.absent,
            "values": self.values,
            "empty": self.empty,
            "not_ciphertext": self.text,
            "reencrypted": self.reencrypted,
            "left_as_asked": self.left,
            "from_keys": dict(self.from_keys),
        }


def planned(ctx: Context, analysis: Analysis) -> list[ColumnRoll]:
    """What a roll would do, field by field, from a full analysis (``--dry-run``)."""
    out = []
    for column in ctx.profile.encrypted_columns:
        count = analysis.counts.get(column.label, keys.FieldCount(column.label, absent=True))
        out.append(
            ColumnRoll(
                column.label,
                values=count.cipher,
                empty=count.empty + count.null,
                text=count.text,
                reencrypted=sum(count.by_key.values()),
                left=count.left,
                absent=count.absent,
                from_keys=dict(count.by_key),
            )
        )
    return out


def not_ciphertext(counts: list[ColumnRoll]) -> values.Named:
    """The values the pass found not to be ciphertext (left byte-identical), named."""
    named = values.Named(sum(c.text for c in counts))
    named.labels = [label for c in counts for label in c.text_labels][: values.NAMED_MAX]
    return named


@dataclass
class Unproven:
    """Values no key of the analysis reads, each attributed to the first other candidate key
    that decodes it. A roll that started from a sample analysis meets them in its own pass;
    before COMMIT every such key must be established by its values alone, by the same rule
    as ``keys`` (evidence over the values no proven key read), else the roll rolls back."""

    informative: int = 0  # such values with content, under a codec without authentication
    bits: dict[str, float] = field(default_factory=dict)  # key fingerprint -> evidence
    decoded: dict[str, int] = field(default_factory=dict)
    authentic: set[str] = field(default_factory=set)
    labels: dict[str, list[str]] = field(default_factory=dict)

    def add(self, other: Unproven) -> None:
        self.informative += other.informative
        for fp, n in other.decoded.items():
            self.decoded[fp] = self.decoded.get(fp, 0) + n
            self.bits[fp] = self.bits.get(fp, 0.0) + other.bits.get(fp, 0.0)
            seen = self.labels.setdefault(fp, [])
            seen.extend(other.labels.get(fp, [])[: 3 - len(seen)])
        self.authentic |= other.authentic

    def check(self) -> None:
        for fp, n in self.decoded.items():
            if fp in self.authentic or established(self.bits[fp], n, self.informative):
                continue
            raise KeyProblem(
                f"{n} encrypted values are under no proven key ({', '.join(self.labels[fp])}): "
                "another key, or values that do not decrypt to text (damaged); the transaction "
                "was rolled back, nothing was changed",
                hint="run 'coolify-migrate secrets verify'; give their key with --key-file FILE; "
                "'secrets repair' handles values a re-roll garbled",
            )


# a batch's changes: the indexes of the rows that changed, and each one's new values
_Updates = tuple[list[int], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class _Job:
    """What every batch needs: inherited by the forked workers, never sent to them."""

    codecs: keys.FieldCodecs
    order: dict[str, tuple[Secret, ...]]  # per field, the keys the analysis proved
    others: tuple[Secret, ...]  # the other candidates, for values none of those reads
    new: Secret
    leave: frozenset[str] = frozenset()


def reencrypt(
    ctx: Context,
    conn: Connection,
    analysis: Analysis,
    new: Secret,
    *,
    meta: dict[str, str] | None = None,
    batch: int = BATCH,
    workers: int | None = None,
) -> list[ColumnRoll]:
    """Re-encrypt every ciphertext value to ``new`` in ONE transaction; all or nothing.

    Table by table, all of a row's encrypted columns in one UPDATE: SQLite rewrites the whole
    row record on any update, so a pass per column would rewrite wide rows several times.
    """
    found = analysis.fields
    total = sum(conn.count(t) for t in found.by_table())  # b-tree walks, never the values
    # In values, as the summary counts them, when a full analysis counted them; after a sample
    # only the rows are known before the pass (counting the values would cost a pass of its own).
    if analysis.full:
        bar = ctx.out.progress("re-encrypting", analysis.cipher_values, "values")
    else:
        bar = ctx.out.progress("re-encrypting", total, "rows")
    counts = {c.label: ColumnRoll(c.label) for c in ctx.profile.encrypted_columns}
    for column in found.absent:
        counts[column.label].absent = True
    cores = (os.cpu_count() or 1) if workers is None else workers
    codecs = keys.FieldCodecs(ctx.profile)
    proven = set(analysis.keys)
    others = tuple(st.cand.key for st in analysis.stats if st.cand not in proven)
    job = _Job(codecs, analysis.order, others, new, ctx.leave)
    crypto = Workers(_one, job, cores if total >= POOL_FROM_ROWS else 1, died=_worker_died)
    unproven = Unproven()

    def in_place(why: str) -> None:  # the backup just taken could not be lent: said, not hidden
        ctx.out.info(f"re-encrypting in place, under the journal: {why}")

    # The pool forks before BEGIN: no child ever shares an open transaction. SQLite: the
    # transaction may run in the backup just taken, exchanged with the database as its commit
    # (``Connection.rewriting``: no journal, the untouched database is the undo).
    try:
        with crypto, conn.rewriting(in_place) as target, target.transaction("roll"):
            for table, columns in found.by_table().items():
                names = [c.column for c in columns]
                per_read = batch if crypto.workers == 1 else min(batch, POOL_TASK)
                batches = _batches(target, table, names, ctx.profile.id_column, per_read)
                sent: deque[list[Any]] = deque()  # the batches in flight, in order
                for read, (where, fresh), done, met in crypto.map(_sending(columns, batches, sent)):
                    rows = sent.popleft()  # results come back in the order sent
                    _add(counts, done)
                    unproven.add(met)
                    bar.advance(
                        sum(c.reencrypted + c.left for c in done.values())
                        if analysis.full
                        else read
                    )
                    if where and target.replace(table, names, _held(rows, where, fresh)) != len(
                        where
                    ):
                        raise ChangeFailed(
                            f"{table}: a row no longer held the values that were read and "
                            "checked; the transaction was rolled back, nothing was changed",
                            hint="another process may be writing to the database: stop the "
                            "app, try again",
                        )
            bar.close()
            unproven.check()
            target.write_meta(key_check=new.check_value, **(meta or {}))
    finally:
        bar.close()
    return list(counts.values())


def _batches(
    conn: Connection, table: str, names: list[str], id_column: str, most: int
) -> Iterator[list[Any]]:
    """The table's rows in batches of at most ``most`` rows and about ``TASK_BYTES`` of stored
    values: a table of long values (keys, certificates) gets smaller batches, so what is in
    flight at once stays small whatever the values' size. The first rows (``PROBE_ROWS``, at
    most ``most``) measure the table's values and form its first batch."""
    first = min(PROBE_ROWS, most)
    probe = [r for b in conn.rows(table, names, id_column=id_column, limit=first) for r in b]
    if not probe:
        return
    yield probe
    size = sum(len(v) for row in probe for v in row[2:] if isinstance(v, str | bytes))
    rows = max(1, min(most, TASK_BYTES * len(probe) // max(size, 1)))
    yield from conn.rows(table, names, id_column=id_column, batch=rows, after=probe[-1][0])


def _sending(
    columns: list[EncryptedColumn], batches: Iterator[list[Any]], sent: deque[list[Any]]
) -> Iterator[tuple[list[EncryptedColumn], list[Any]]]:
    for rows in batches:
        sent.append(rows)
        yield columns, rows


def _held(rows: list[Any], where: list[int], fresh: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each changed row as read, its new values after it, for ``Connection.replace``: the old
    values are the ones read, kept here while the batch was away (the workers send back only
    what is new). Built in C (a tuple concatenation per row, no Python code per row)."""
    return list(map(add, map(rows.__getitem__, where), fresh))


def _add(counts: dict[str, ColumnRoll], done: dict[str, ColumnRoll]) -> None:
    for label, c in done.items():
        mine = counts[label]
        mine.left += c.left
        mine.values += c.values
        mine.empty += c.empty
        mine.text += c.text
        mine.reencrypted += c.reencrypted
        mine.text_labels.extend(c.text_labels[: values.NAMED_MAX - len(mine.text_labels)])
        for fp, n in c.from_keys.items():
            mine.from_keys[fp] = mine.from_keys.get(fp, 0) + n


def _batch(
    job: _Job,
    columns: list[EncryptedColumn],
    rows: list[tuple[Any, ...]],
    counts: dict[str, ColumnRoll],
    unproven: Unproven,
) -> _Updates:
    """The indexes in the batch of the rows holding ciphertext, and their new values (all of
    the row's fields, in order), each new value checked (``_held`` puts them after the row as
    read). Field by field over the whole
    batch: each value is parsed once and decrypted once under the key it is attributed to
    (``attribution.attribute``), the batch is encrypted under ``new`` in one call, and each new value
    is decrypted again and compared with the old bytes before anything is written."""
    fresh_rows = [list(row[2:]) for row in rows]
    changed = [False] * len(rows)
    for i, column in enumerate(columns):
        count = counts[column.label]
        codec = job.codecs.of(column.label)
        where: list[int] = []
        items: list[tuple[bytes, bytes]] = []
        column_values = [row[2 + i] for row in rows]
        for r, (stored, parts) in enumerate(
            zip(column_values, codec.parts_many(column_values), strict=True)
        ):
            if parts is not None:
                where.append(r)
                items.append(parts)
            elif stored is None or stored == "":
                count.empty += 1
            else:
                count.text += 1  # not ciphertext: left byte-identical
                if len(count.text_labels) < values.NAMED_MAX:
                    count.text_labels.append(values.label(column, rows[r][1]))
        found = attribution.attribute(codec, job.order.get(column.label, ()), items)
        _second_look(job, codec, column, rows, where, items, found, unproven)
        targets = [r for r, (_, raw) in zip(where, found, strict=True) if raw is not None]
        raws = [raw for _, raw in found if raw is not None]
        count.left += len(where) - len(targets)  # byte-identical, as asked (``_second_look``)
        olds = [old for old, _ in found]
        for key in (*job.order.get(column.label, ()), *job.others):
            n = countOf(olds, key)  # by identity first, in C: no key is hashed per value
            if n:
                count.from_keys[key.fingerprint] = count.from_keys.get(key.fingerprint, 0) + n
        fresh = codec.encrypt_raw_many(job.new, raws)
        back = codec.decrypt_many(job.new, [p or (b"", b"") for p in codec.parts_many(fresh)])
        if back != raws:
            r = next(t for t, raw, again in zip(targets, raws, back, strict=True) if again != raw)
            raise ChangeFailed(
                f"{values.label(column, rows[r][1])}: the new value does not decrypt back to "
                "the same bytes; the transaction was rolled back"
            )
        for r, value in zip(targets, fresh, strict=True):
            fresh_rows[r][i] = value
            changed[r] = True
        count.values += len(targets)
        count.reencrypted += len(targets)
    where = [r for r in range(len(rows)) if changed[r]]
    return where, [tuple(fresh_rows[r]) for r in where]


def _second_look(
    job: _Job,
    codec: Codec,
    column: EncryptedColumn,
    rows: list[tuple[Any, ...]],
    where: list[int],
    items: list[tuple[bytes, bytes]],
    found: list[tuple[Secret | None, bytes | None]],
    unproven: Unproven,
) -> None:
    """Values no proven key read: tried under the other candidates (``Unproven`` decides at the
    end whether those keys are proven); one no key decodes stops the roll, unless the operator
    named it to be left (it stays (None, None) in ``found``)."""
    missed = [k for k, (old, _) in enumerate(found) if old is None]
    if not missed:
        return
    again = attribution.attribute(codec, job.others, [items[k] for k in missed])
    for k, (key, raw) in zip(missed, again, strict=True):
        content = items[k][1]
        if content and not codec.authenticated:
            unproven.informative += 1
        if key is not None:
            fp = key.fingerprint
            found[k] = (key, raw)
            unproven.decoded[fp] = unproven.decoded.get(fp, 0) + 1
            if codec.authenticated:
                unproven.authentic.add(fp)
            elif content:
                unproven.bits[fp] = unproven.bits.get(fp, 0.0) + utf8_bits(len(content))
            seen = unproven.labels.setdefault(fp, [])
            if len(seen) < 3:
                seen.append(values.label(column, rows[where[k]][1]))
            continue
        if values.label(column, rows[where[k]][1]) in job.leave:
            continue
        raise KeyProblem(
            f"{values.label(column, rows[where[k]][1])} is under no proven key; nothing was changed",
            hint="run 'coolify-migrate secrets verify'; 'secrets repair' handles values "
            "a re-roll garbled",
        )


# -- the crypto work, in this process or on every core (``core.workers``) ----------------------

_Rows = list[tuple[Any, ...]]
# rows read, updates, counts, values under other candidates
_Done = tuple[int, _Updates, dict[str, ColumnRoll], Unproven]


def _one(job: _Job, task: tuple[list[EncryptedColumn], _Rows]) -> _Done:
    columns, rows = task
    counts = {c.label: ColumnRoll(c.label) for c in columns}
    unproven = Unproven()
    updates = _batch(job, columns, rows, counts, unproven)
    return len(rows), updates, counts, unproven


def _worker_died() -> ChangeFailed:
    return ChangeFailed(
        "a re-encryption worker process died; the transaction was rolled back, nothing was changed",
        hint="run the command again; see the system log if a worker was killed",
    )
