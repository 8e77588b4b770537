"""How the demo's rows are held and written: every encrypted field recorded as it is put, its
ciphertext made in a batch (one AES call for many values), rows inserted a batch at a time in the
order they were made, the schema's defaults filling the columns a row leaves out."""

from __future__ import annotations

import operator
import random
import sqlite3
from collections.abc import Callable
from itertools import chain
from typing import Any, NamedTuple

from coolify_migrate.apps.coolify_v3.demo_random import RandomValues
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.output import Progress
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
    """A stored ciphertext and the plaintext the app would show (already trimmed).

    Ciphertexts are made in batches (one AES call for many values, ``Sealer``): ``text`` is
    there once the batch it waits in is sealed, which reading it does if need be."""

    __slots__ = ("_sealer", "_text", "plain")

    def __init__(self, plain: str, sealer: Sealer) -> None:
        self.plain = plain
        self._text: str | None = None
        self._sealer = sealer

    @property
    def text(self) -> str:
        if self._text is None:
            self._sealer.seal()
        assert self._text is not None
        return self._text


class Sealer:
    """Values waiting for their ciphertext; ``seal`` encrypts them all in one call."""

    def __init__(self, codec: AesCtrJsonCodec, key: Secret) -> None:
        self.codec = codec
        self.key = key
        self.waiting: list[Cipher] = []

    def cipher(self, plain: str) -> Cipher:
        made = Cipher(plain, self)
        self.waiting.append(made)
        return made

    def seal(self) -> None:
        waiting, self.waiting = self.waiting, []
        texts = self.codec.encrypt_many(self.key, [c.plain for c in waiting])
        for made, text in zip(waiting, texts, strict=True):
            made._text = text


class AsIs(NamedTuple):
    """Stored text of an encrypted field that is not ciphertext."""

    text: str


# What a row gives for an encrypted column: plaintext to encrypt now (str), a ciphertext made
# earlier (Cipher, copied verbatim), stored text that is not ciphertext (AsIs), or NULL (None).
Stored = Cipher | AsIs | None
Field = str | Stored


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
    row leaves out, ciphertexts are read from their ``Cipher``."""

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
        self.set_defaults = {c: d for c, d in self.defaults.items() if d is not None}
        # a row that leaves its encrypted fields NULL and the rest to the schema
        self.unset = {**self.set_defaults, **dict.fromkeys(self.encrypted)}
        self.rows: list[dict[str, Any]] = []  # put, not written yet
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
                    full[col] = held._text  # sealed before rows are written
        return list(map(self.values, fulls))

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


class Builder(RandomValues):
    """Collects rows per table, recording every encrypted field as it is put (its plaintext after
    v3's trim, or its stored text when that is not ciphertext); ``write`` seals the waiting
    ciphertexts and inserts the rows collected so far."""

    def __init__(
        self,
        conn: sqlite3.Connection,
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
        self.specs: dict[str, TableSpec] = {}
        self.links: dict[str, list[tuple[str, str]]] = {}
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        for (table,) in names.fetchall():
            spec = TableSpec(table, conn.execute(f'PRAGMA table_info("{table}")').fetchall())
            self.specs[table] = spec
            if spec.columns == ["A", "B"]:  # a many-to-many link table
                self.links[table] = []

    def encrypt(self, plain: str) -> Cipher:
        return self.sealer.cipher(js_trim(plain))

    def encrypt_now(self, plain: str) -> str:
        """A ciphertext needed before its batch is sealed (reading a ``Cipher``'s text would seal
        the batch early), made on its own."""
        return self.sealer.codec.encrypt(self.sealer.key, plain)

    # -- rows -------------------------------------------------------------------------------

    def put(self, table: str, row: dict[str, Any], *, updated: bool = False) -> dict[str, Stored]:
        """Add a row; returns its encrypted fields as stored (Cipher / AsIs / None)."""
        spec = self.specs[table]
        if spec.created and "createdAt" not in row:
            row["createdAt"] = self.tick()
        if spec.updated and "updatedAt" not in row:
            later = self.between(60_000, 30 * 86_400_000) if updated else 0
            row["updatedAt"] = row["createdAt"] + later
        spec.rows.append(row)
        stored: dict[str, Stored] = {}
        if not spec.encrypted:
            return stored
        record, plaintexts = self.record, self.plaintexts
        for col in spec.encrypted:
            value: Field = row[col]  # KeyError: every encrypted field of every row is decided
            if isinstance(value, str):
                value = row[col] = self.sealer.cipher(js_trim(value))
            if isinstance(value, Cipher):  # its text once sealed (write reads it)
                self.count += 1
                if record:
                    plaintexts[(table, col, row["id"])] = value.plain
            elif value is None:
                if record:
                    plaintexts[(table, col, row["id"])] = None
            else:
                row[col] = value.text
                if record:
                    self.as_is[(table, col, row["id"])] = value.text
            stored[col] = value
        return stored

    def link(self, table: str, a: str, b: str) -> None:
        self.links[table].append((a, b))

    def write(self, conn: sqlite3.Connection, bar: Progress | None = None) -> None:
        """Insert the rows collected so far (sealing their ciphertexts) and forget them."""
        self.sealer.seal()
        for table, spec in self.specs.items():
            if bar is not None:
                bar.advance()
            rows = spec.rows
            links = self.links.get(table)
            if links:
                for sql, params in spec.inserts(links):
                    conn.executemany(sql, params)
                links.clear()
            if rows:
                for sql, params in spec.inserts(spec.params(rows)):
                    conn.executemany(sql, params)
                rows.clear()
