"""The app's database, as the rest of the tool sees it: one interface, two implementations
(``coolify_migrate.stores``: SQLite files for Coolify, a PostgreSQL server for Redash).

What the tool asks of a database is small and the same for both: which of the app's encrypted
fields exist; the values of a table's fields streamed in batches by a stable row key; new values
written back; all of it inside ONE transaction that also carries the tool's own record (installed
version, key-check value, applied steps); a consistent backup with its checksum; a restore that
replaces the data only once the copy loaded cleanly; an integrity check. Values come back as
``str`` whatever the column type: a ``bytea`` column (Redash's Fernet tokens) is decoded as ASCII
and written back as bytes; a value that is not ASCII is handed over as ``bytes``, which no codec
reads as ciphertext, so it is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.output import Output

META_TABLE = "_coolify_migrate"


class Fields(NamedTuple):
    """The declared encrypted fields a database has, and those it does not (an older schema)."""

    present: tuple[EncryptedColumn, ...]
    absent: tuple[EncryptedColumn, ...]

    def by_table(self) -> dict[str, list[EncryptedColumn]]:
        grouped: dict[str, list[EncryptedColumn]] = {}
        for column in self.present:
            grouped.setdefault(column.table, []).append(column)
        return grouped


class Dumped(NamedTuple):
    """A backup the store wrote: its size and SHA-256 (hex), and its integrity verdict."""

    size: int
    sha256: str
    integrity: str  # "ok", or the first problem found


# A row as the store streams it: (row key, the app's id, value of each requested column...).
# The row key is what ``update`` addresses rows by (SQLite's rowid, PostgreSQL's primary key).
Row = tuple[Any, ...]


class Connection(Protocol):
    """An open connection; ``transaction`` is the only way anything is written."""

    def fields(self, declared: tuple[EncryptedColumn, ...]) -> Fields: ...

    def columns(self, table: str) -> set[str]: ...

    def rows(
        self,
        table: str,
        columns: list[str],
        *,
        id_column: str = "id",
        batch: int = 2000,
        limit: int | None = None,
        after: Any = None,
    ) -> Iterator[list[Row]]:
        """(row key, id, *values) in row-key order, ``batch`` rows at a time."""
        ...

    def by_id(self, table: str, columns: list[str], id_column: str = "id") -> dict[Any, Row]:
        """id -> (values...) of a whole table (small tables: used on copies)."""
        ...

    def count(self, table: str) -> int: ...

    def last_key(self, table: str) -> Any: ...

    def digest(self, table: str, column: str, upto: Any) -> str:
        """SHA-256 over (row key, value) of the rows up to ``upto``, in row-key order."""
        ...

    def update(self, table: str, columns: list[str], rows: list[Row]) -> int:
        """Write ``(value..., row key)`` tuples; inside ``transaction`` only. Rows written."""
        ...

    def replace(self, table: str, columns: list[str], rows: list[Row]) -> int:
        """Write each row's new values where the row still holds exactly its old values
        (compare and set); inside ``transaction`` only. A row is given as ``rows`` yields it
        with the new values after it: ``(row key, label, old value..., new value...)``, so the
        caller builds no tuple of its own. Rows written: fewer than given means some row did
        not hold what the caller read."""
        ...

    def transaction(self, name: str | None = None) -> AbstractContextManager[None]:
        """All or nothing; a named one passes the fault-injection checkpoints of its name."""
        ...

    def rewriting(
        self, in_place: Callable[[str], None] | None = None
    ) -> AbstractContextManager[Connection]:
        """For a change that rewrites most of the data (a key roll): a connection whose
        ``transaction`` is as all-or-nothing as this one's and cheaper (SQLite: the backup this
        process has just sealed, exchanged with the database as the commit); this connection
        when there is none. This connection is not used while the other one is. ``in_place``
        is told why, when there was such a copy and the change is made in place all the same."""
        ...

    def read_meta(self) -> dict[str, str]: ...

    def write_meta(self, **values: str) -> None:
        """The tool's record; inside the transaction of the change it describes."""
        ...

    def scalar(self, sql: str) -> Any:
        """The first column of the first row of an app-written read-only query, or None."""
        ...

    def close(self) -> None: ...


class Sibling(NamedTuple):
    """A copy of the database that sits beside it (the app's own pre-roll copies, an operator's
    manual copies, this tool's backups): what ``secrets repair`` searches, oldest first."""

    name: str
    path: Path
    time_ms: int


class Store(Protocol):
    kind: str  # "sqlite", "postgres"

    @property
    def path(self) -> Path | None:
        """The database file, when the store is one."""
        ...

    @property
    def where(self) -> str:
        """Where the data are, for messages (a path, or a server and database; no password)."""
        ...

    def exists(self) -> bool: ...

    def size(self) -> int:
        """Bytes the data take (what a backup needs room for)."""
        ...

    def connect(self, *, readonly: bool = False) -> Connection: ...

    def snapshot(self, path: Path | None = None) -> Connection:
        """Read-only, lock-free access to a copy nobody writes (a backup file, a sibling)."""
        ...

    def siblings(self) -> list[Sibling]:
        """Copies of the database beside it, oldest first (none for a server database)."""
        ...

    def backup_location(self) -> tuple[Path, str]:
        """Where backups go and the base of their names (``prod.db`` -> ``prod.db_<ms>``)."""
        ...

    def backup(self, dest: Path, out: Output | None = None) -> Dumped:
        """A consistent copy of everything in ``dest`` (a new file), checked; ``out`` shows the
        progress of the copy and of its check, in bytes."""
        ...

    def check_copy(self, path: Path, *, full: bool = False) -> str:
        """``ok`` or the first problem found reading a backup file back (read-only)."""
        ...

    def restore(self, src: Path) -> None:
        """Replace the data with those of a ``backup`` file, only once it loaded cleanly."""
        ...

    def integrity(self) -> str:
        """``ok`` or the first problem the database's own check reports."""
        ...
