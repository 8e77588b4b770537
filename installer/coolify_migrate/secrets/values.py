"""The encrypted values of an app's database: which fields exist, and what each stored value is.

Every field the profile declares is accounted for: a table or column an older database does not
have yet is reported as *absent*, never skipped in silence. Each stored value is one of:

- ``null`` (SQL NULL) or ``empty`` (the empty string, which some v3 code paths stored instead of
  ciphertext): no secret, left as it is;
- ``text``: something that is not the codec's ciphertext (text that is not JSON, or ciphertext
  followed by `` || ''`` as a GlitchTip migration stored it): counted and named by
  ``Table.column.id``, left byte-identical by every change, never blocking one;
- ``cipher``: the codec's own format; which key it is under is ``coolify_migrate.secrets.keys``'s business.

Values stream by rowid in batches, so memory stays flat at any size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.crypto.codecs import Codec

BATCH = 2000
NAMED_MAX = 50  # values named one by one in a report; the rest are counted


@dataclass(frozen=True)
class Fields:
    present: tuple[EncryptedColumn, ...]
    absent: tuple[EncryptedColumn, ...]

    def by_table(self) -> dict[str, list[EncryptedColumn]]:
        grouped: dict[str, list[EncryptedColumn]] = {}
        for column in self.present:
            grouped.setdefault(column.table, []).append(column)
        return grouped


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def fields(conn: sqlite3.Connection, declared: tuple[EncryptedColumn, ...]) -> Fields:
    """Split the declared fields into those this database has and those it does not (yet)."""
    seen: dict[str, set[str]] = {}
    present: list[EncryptedColumn] = []
    absent: list[EncryptedColumn] = []
    for column in declared:
        if column.table not in seen:
            seen[column.table] = table_columns(conn, column.table)
        (present if column.column in seen[column.table] else absent).append(column)
    return Fields(tuple(present), tuple(absent))


def kind(codec: Codec, stored: Any) -> str:
    if stored is None:
        return "null"
    if stored == "":
        return "empty"
    if not isinstance(stored, str) or not codec.is_encrypted(stored):
        return "text"
    return "cipher"


def iter_rows(
    conn: sqlite3.Connection,
    table: str,
    columns: list[EncryptedColumn],
    *,
    id_column: str = "id",
    batch: int = BATCH,
    limit: int | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """(rowid, id, *values) of ``table`` in batches by rowid; at most ``limit`` rows."""
    names = ", ".join(f'"{c.column}"' for c in columns)
    has_id = id_column in table_columns(conn, table)
    ident = f'"{id_column}"' if has_id else "rowid"
    sql = f'SELECT rowid, {ident}, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    last, taken = -(2**63), 0
    while limit is None or taken < limit:
        size = batch if limit is None else min(batch, limit - taken)
        rows = conn.execute(sql, (last, size)).fetchall()
        if not rows:
            return
        yield rows
        taken += len(rows)
        last = rows[-1][0]


def label(column: EncryptedColumn, row_id: Any) -> str:
    return f"{column.label}.{row_id}"


@dataclass
class Named:
    """A count with the first few ``Table.column.id`` labels, for reports."""

    count: int = 0
    labels: list[str] = field(default_factory=list)

    def add(self, where: str) -> None:
        self.count += 1
        if len(self.labels) < NAMED_MAX:
            self.labels.append(where)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "labels": list(self.labels)}

    def shown(self, n: int = 5) -> str:
        more = f" and {self.count - n} more" if self.count > n else ""
        return ", ".join(self.labels[:n]) + more
