"""How the demo's rows are held and written: every encrypted field recorded as it is put, its
ciphertext made in a batch (one AES call for many values), rows inserted a batch at a time in the
order they were made, the schema's defaults filling the columns a row leaves out.

``Builder`` collects the rows and hands them over a batch at a time (``take``, a ``Batch``): the
plaintexts waiting for their ciphertext, and each table's INSERT parameters, where a ciphertext
not made yet is the number of its plaintext in that list (rows sharing a ciphertext share the
number). ``RowWriter`` encrypts the plaintexts, puts each ciphertext in its place and inserts the
rows into an open database, here or in the writer process (``demo_forked_writer``): a batch is
plain data (str, int, None, lists and tuples), cheap to send there."""

from __future__ import annotations

import operator
import random
import sqlite3
from collections.abc import Callable, Mapping
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from coolify_migrate.apps.coolify_v3.demo_random import RandomValues
from coolify_migrate.apps.coolify_v3.demo_schema import INDEXES
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec, js_trim


def _encrypted_by_table() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for col in CoolifyV3.encrypted_columns:
        found[col.table] = (*found.get(col.table, ()), col.column)
    return found


ENCRYPTED = _encrypted_by_table()
# Plain columns that hold a copy of a ciphertext (migrateServicesToNewTemplate's
# EMAIL_SMTP_PASSWORD setting): written as its text once sealed, not counted as a value.
COPIES_CIPHERTEXT = {"ServiceSetting": ("value",)}


class Cipher:
    """A ciphertext to be stored: the plaintext the app would show (already trimmed), and its
    number in its batch. The ciphertexts of a batch are made together when it is written
    (``RowWriter``: one ``encrypt_many``), maybe in the writer process, so none is ever read
    here; a value needed as text before then is encrypted on its own (``Builder.encrypt_now``).
    Rows sharing a ciphertext (a preview secret, a copied service secret) hold the same one."""

    __slots__ = ("at", "plain")

    def __init__(self, plain: str, at: int) -> None:
        self.plain = plain
        self.at = at


class Sealer:
    """The plaintexts waiting for their ciphertext, numbered in their batch."""

    def __init__(self, codec: AesCtrJsonCodec, key: Secret) -> None:
        self.codec = codec
        self.key = key
        self.waiting: list[Cipher] = []

    def cipher(self, plain: str) -> Cipher:
        made = Cipher(plain, len(self.waiting))
        self.waiting.append(made)
        return made

    def take(self) -> list[Cipher]:
        waiting, self.waiting = self.waiting, []
        return waiting


class AsIs(NamedTuple):
    """Stored text of an encrypted field that is not ciphertext."""

    text: str


# What a row gives for an encrypted column: plaintext to encrypt now (str), a ciphertext made
# earlier (Cipher, copied verbatim), stored text that is not ciphertext (AsIs), or NULL (None).
Stored = Cipher | AsIs | None
Field = str | Stored
_NONE: Mapping[str, Stored] = MappingProxyType({})  # what a table with no encrypted field stores


def _default(raw: str | None) -> object:
    """A column's schema default as Python stores it; CURRENT_TIMESTAMP is never relied on."""
    if raw is None or raw.upper() == "CURRENT_TIMESTAMP":
        return None
    if raw in ("false", "true"):
        return int(raw == "true")
    if raw.startswith("'"):
        return raw[1:-1]
    return int(raw)


class TableSpec:
    """How one table's rows become INSERT parameters: the schema's defaults fill the columns a
    row leaves out, a ``Cipher`` becomes its number in its batch (``sealed`` puts its text
    there)."""

    def __init__(self, name: str, info: list[Any]) -> None:
        self.name = name
        self.columns = [c[1] for c in info]
        self.defaults = {c[1]: _default(c[4]) for c in info}
        self.booleans = {c[1] for c in info if c[2] == "BOOLEAN"}
        self.created = "createdAt" in self.defaults
        self.updated = "updatedAt" in self.defaults
        self.encrypted = ENCRYPTED.get(name, ())
        # columns that may hold a Cipher: the encrypted ones, and a setting that copies one
        self.ciphers = (*self.encrypted, *COPIES_CIPHERTEXT.get(name, ()))
        self.cipher_at = tuple(self.columns.index(c) for c in self.ciphers)
        self.set_defaults = {c: d for c, d in self.defaults.items() if d is not None}
        # a row that leaves its encrypted fields NULL and the rest to the schema
        self.unset = {**self.set_defaults, **dict.fromkeys(self.encrypted)}
        self.link = self.columns == ["A", "B"]  # a many-to-many link table: (a, b) tuples
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.insert = f'INSERT INTO "{name}" ({names}) VALUES ({marks})'
        # several rows per statement (fewer statement steps), within SQLite's oldest variable
        # limit (999)
        self.per_insert = max(1, min(32, 999 // len(self.columns)))
        self.insert_many = self.insert + f", ({marks})" * (self.per_insert - 1)
        if len(self.columns) < 2:  # itemgetter of one name gives the value, not a tuple
            raise ValueError(f"{name}: a table of one column is not supported")
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = operator.itemgetter(
            *self.columns
        )

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        defaults, width, ciphers = self.defaults, len(self.defaults), self.ciphers
        fulls = [{**defaults, **row} for row in rows]
        for full in fulls:
            if len(full) != width:
                raise ValueError(
                    f"{self.name} has no column {sorted(full.keys() - defaults.keys())}"
                )
            for col in ciphers:
                held = full[col]
                if held.__class__ is Cipher:
                    full[col] = held.at
        return list(map(self.values, fulls))

    def sealed(self, params: list[tuple[Any, ...]], texts: list[str]) -> list[tuple[Any, ...]]:
        """The rows with each ciphertext's number replaced by its text (an encrypted column
        holds text or NULL, never a number)."""
        at = self.cipher_at
        out = []
        for row in params:
            numbered = [i for i in at if row[i].__class__ is int]
            if numbered:
                fixed = list(row)
                for i in numbered:
                    fixed[i] = texts[fixed[i]]
                row = tuple(fixed)
            out.append(row)
        return out

    def inserts(self, params: list[tuple[Any, ...]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """The statements that insert these rows, in order."""
        step = self.per_insert
        whole = len(params) - len(params) % step
        out = []
        if whole:
            joined = [
                tuple(chain.from_iterable(params[i : i + step])) for i in range(0, whole, step)
            ]
            out.append((self.insert_many, joined))
        if whole < len(params):
            out.append((self.insert, params[whole:]))
        return out


def open_build(path: Path, cache_kib: int = 65536) -> sqlite3.Connection:
    """The new database file, opened to be built: a file nothing else reads, removed if the
    build fails, so no journal and no syncs; it is made durable once, complete, before it takes
    the database's name (``demo.create``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    # KiB: fewer spills of a big transaction. 16 MiB was no faster and lowered the peak RSS
    # at 1M values, but raised it at 5M (361 MB against 201: CREATE INDEX then sorts in
    # more, smaller runs, which SQLite maps in to merge them)
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    return conn


def table_specs(conn: sqlite3.Connection) -> dict[str, TableSpec]:
    """Every table of the open database, in the order they were created."""
    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
    return {
        table: TableSpec(table, conn.execute(f'PRAGMA table_info("{table}")').fetchall())
        for (table,) in names.fetchall()
    }


# What goes out at each write: the plaintexts waiting for their ciphertext, then each table's
# INSERT parameters in the tables' order (only the tables that have rows).
Batch = tuple[list[str], list[tuple[str, list[tuple[Any, ...]]]]]


class RowWriter:
    """Writes batches into an open database, inside the caller's transaction: seals their
    ciphertexts (one ``encrypt_many`` each), then inserts every table's rows in order."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        specs: dict[str, TableSpec],
        codec: AesCtrJsonCodec,
        key: Secret,
        *,
        indexes_first: bool = False,
    ) -> None:
        self.conn, self.specs, self.codec, self.key = conn, specs, codec, key
        self.indexes_built = indexes_first
        if indexes_first:  # kept up row by row: more work in all, none left for the end
            for index in INDEXES:
                conn.execute(index)

    def write(self, batch: Batch, tick: Callable[[], None] | None = None) -> None:
        plains, tables = batch
        texts = self.codec.encrypt_many(self.key, plains) if plains else []
        executemany, specs = self.conn.executemany, self.specs
        for table, params in tables:
            spec = specs[table]
            if spec.cipher_at and texts:
                params = spec.sealed(params, texts)
            for sql, many in spec.inserts(params):
                executemany(sql, many)
            if tick is not None:
                tick()

    def finish(self, batch: Batch, tick: Callable[[], None]) -> None:
        """The last batch, then the indexes (built once over the rows, not row by row) and the
        commit."""
        self.write(batch, tick)
        if not self.indexes_built:
            for index in INDEXES:
                self.conn.execute(index)
        self.conn.execute("COMMIT")

    def abort(self) -> None:
        """Nothing to stop: the caller closes the connection (which rolls back)."""


class Builder(RandomValues):
    """Collects rows per table, recording every encrypted field as it is put (its plaintext after
    v3's trim, or its stored text when that is not ciphertext); ``take`` hands over the rows
    collected so far and the values waiting for their ciphertext (a ``Batch``)."""

    def __init__(
        self,
        specs: dict[str, TableSpec],
        rng: random.Random,
        now: int,
        sealer: Sealer,
        plaintexts: dict[tuple[str, str, str], str | None],
        as_is: dict[tuple[str, str, str], str],
        *,
        record: bool = True,
    ) -> None:
        super().__init__(rng, now)
        self.sealer = sealer
        self.plaintexts = plaintexts
        self.as_is = as_is
        self.record = record  # False: only counted (a big instance's memory stays flat)
        self.count = 0  # ciphertexts stored, copies included
        self.specs = specs
        self.rows: dict[str, list[Any]] = {table: [] for table in specs}  # put, not taken yet
        self.as_tuples: set[str] = set()  # tables whose rows come whole (``declare``, ``add``)

    def encrypt(self, plain: str) -> Cipher:
        return self.sealer.cipher(js_trim(plain))

    def encrypt_now(self, plain: str) -> str:
        """A ciphertext needed as text while its row is made, made on its own."""
        return self.sealer.codec.encrypt(self.sealer.key, plain)

    # -- rows -------------------------------------------------------------------------------

    def put(
        self, table: str, row: dict[str, Any], *, updated: bool = False
    ) -> Mapping[str, Stored]:
        """Add a row; returns its encrypted fields as stored (Cipher / AsIs / None)."""
        spec = self.specs[table]
        if table in self.as_tuples:
            raise ValueError(f"{table}: its rows come whole (add)")
        if spec.created and "createdAt" not in row:
            row["createdAt"] = self.tick()
        if spec.updated and "updatedAt" not in row:
            later = self.between(60_000, 30 * 86_400_000) if updated else 0
            row["updatedAt"] = row["createdAt"] + later
        self.rows[table].append(row)
        if not spec.encrypted:
            return _NONE
        stored: dict[str, Stored] = {}
        row_id, keep = row["id"], self._keep
        for col in spec.encrypted:
            # KeyError: every encrypted field of every row is decided
            held = stored[col] = keep(table, col, row_id, row[col])
            row[col] = held.text if isinstance(held, AsIs) else held  # a Cipher: until taken
        return stored

    def _keep(self, table: str, col: str, row_id: str, value: Field) -> Stored:
        """An encrypted field as it is stored, recorded (a plaintext is to be encrypted)."""
        if isinstance(value, str):
            value = self.sealer.cipher(js_trim(value))
        if isinstance(value, Cipher):
            self.count += 1
            if self.record:
                self.plaintexts[(table, col, row_id)] = value.plain
        elif value is None:
            if self.record:
                self.plaintexts[(table, col, row_id)] = None
        elif self.record:
            self.as_is[(table, col, row_id)] = value.text
        return value

    def declare(self, table: str, columns: tuple[str, ...]) -> None:
        """Rows of this table come whole (``add``): a tuple of these columns, which must be all
        the table's, in its order. For the tables with the most rows: no dict per row, and no
        defaults to fill in."""
        spec = self.specs[table]
        if tuple(spec.columns) != columns or columns[0] != "id":
            raise ValueError(f"{table}: its columns are {spec.columns}, not {list(columns)}")
        self.as_tuples.add(table)

    def add(self, table: str, values: tuple[Any, ...]) -> Mapping[str, Stored]:
        """A row of a declared table (``declare``), every column's value in the table's order;
        returns its encrypted fields as stored, as ``put`` does. A ``Cipher`` becomes its number
        in its batch (the writer puts its text there)."""
        spec = self.specs[table]
        if not spec.encrypted:
            for i in spec.cipher_at:  # a plain column holding a copy of a ciphertext
                held = values[i]
                if held.__class__ is Cipher:
                    values = (*values[:i], held.at, *values[i + 1 :])
            self.rows[table].append(values)
            return _NONE
        row = list(values)
        stored: dict[str, Stored] = {}
        row_id, keep = row[0], self._keep
        for col, i in zip(spec.encrypted, spec.cipher_at, strict=False):
            held = stored[col] = keep(table, col, row_id, row[i])
            row[i] = held if held is None else held.at if isinstance(held, Cipher) else held.text
        self.rows[table].append(tuple(row))
        return stored

    def link(self, table: str, a: str, b: str) -> None:
        self.rows[table].append((a, b))

    def take(self) -> Batch:
        """The rows put since the last ``take`` and their waiting plaintexts; forgets them."""
        waiting = self.sealer.take()
        tables = []
        for table, rows in self.rows.items():
            if rows:
                spec = self.specs[table]
                whole = spec.link or table in self.as_tuples
                tables.append((table, rows if whole else spec.params(rows)))
                self.rows[table] = []
        return [c.plain for c in waiting], tables
