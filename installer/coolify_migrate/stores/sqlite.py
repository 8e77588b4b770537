"""SQLite access: the Store interface (``SQLiteStore``, ``SQLiteConnection``) over the file-level
functions of ``coolify_migrate.stores.sqlite_file`` (re-exported here): explicit transactions,
read-only opens, and the tool's own record table (how connections run and where the record lives:
that module's docstring).
"""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar, cast

from coolify_migrate.core import durable
from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.errors import ChangeFailed, DatabaseError
from coolify_migrate.core.output import Null, Output, Progress
from coolify_migrate.core.store import Dumped, Fields, Row, Sibling
from coolify_migrate.stores.sqlite_file import (  # the file-level functions, re-exported
    HEADER as HEADER,
)
from coolify_migrate.stores.sqlite_file import (
    LOCK_WAIT as LOCK_WAIT,
)
from coolify_migrate.stores.sqlite_file import (
    busy as busy,
)
from coolify_migrate.stores.sqlite_file import (
    check_looks_like_sqlite as check_looks_like_sqlite,
)
from coolify_migrate.stores.sqlite_file import (
    check_unlocked as check_unlocked,
)
from coolify_migrate.stores.sqlite_file import (
    connect as connect,
)
from coolify_migrate.stores.sqlite_file import (
    holders as holders,
)
from coolify_migrate.stores.sqlite_file import (
    lock_wait as lock_wait,
)
from coolify_migrate.stores.sqlite_file import (
    open_snapshot as open_snapshot,
)
from coolify_migrate.stores.sqlite_file import (
    read_meta as read_meta,
)
from coolify_migrate.stores.sqlite_file import (
    read_meta_file as read_meta_file,
)
from coolify_migrate.stores.sqlite_file import (
    table_exists as table_exists,
)
from coolify_migrate.stores.sqlite_file import (
    transaction as transaction,
)
from coolify_migrate.stores.sqlite_file import (
    write_meta as write_meta,
)

# -- the Store interface (coolify_migrate.core.store) ----------------------------------------


_F = TypeVar("_F", bound=Callable[..., Any])


def _reading(method: _F) -> _F:
    """SQLite's errors while reading become ``DatabaseError`` (a refusal: nothing changed)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as err:
            raise DatabaseError(f"cannot read the database: {err}") from err

    return cast(_F, wrapper)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_blobs(columns: list[str], blobs: set[str], values: tuple[Any, ...]) -> list[Any]:
    return [
        v.encode("ascii") if c in blobs and isinstance(v, str) else v
        for c, v in zip(columns, values, strict=True)
    ]


@contextmanager
def changing() -> Iterator[None]:
    """SQLite's errors in a change become ``ChangeFailed`` (a full disk says so)."""
    try:
        yield
    except sqlite3.Error as err:
        full = getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        raise ChangeFailed(
            f"the change failed and was rolled back: {'the disk is full' if full else err}",
            hint="free some disk space" if full else None,
        ) from err


class SQLiteConnection:
    """``core.store.Connection`` over one SQLite file; rows are keyed by ``rowid``."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path | None = None) -> None:
        self.raw, self.path = conn, path
        self._blobs: dict[str, set[str]] = {}

    def _blob_columns(self, table: str) -> set[str]:
        """Columns declared BLOB (a bytea's counterpart): values come back as ASCII text."""
        if table not in self._blobs:
            self._blobs[table] = {
                row[1]
                for row in self.raw.execute(f"PRAGMA table_info({_q(table)})")
                if str(row[2]).upper() == "BLOB"
            }
        return self._blobs[table]

    def _out(self, row: tuple[Any, ...]) -> Row:
        """Bytes that are ASCII become text (a token); others stay bytes (never ciphertext)."""
        if bytes not in map(type, row):  # the common case, tested without a Python loop
            return row
        out = []
        for value in row:
            if isinstance(value, bytes):
                with suppress(UnicodeDecodeError):
                    value = value.decode("ascii")
            out.append(value)
        return tuple(out)

    @_reading
    def fields(self, declared: tuple[EncryptedColumn, ...]) -> Fields:
        seen: dict[str, set[str]] = {}
        present: list[EncryptedColumn] = []
        absent: list[EncryptedColumn] = []
        for column in declared:
            if column.table not in seen:
                seen[column.table] = self.columns(column.table)
            (present if column.column in seen[column.table] else absent).append(column)
        return Fields(tuple(present), tuple(absent))

    @_reading
    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.raw.execute(f"PRAGMA table_info({_q(table)})")}

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
        names = ", ".join(_q(c) for c in columns)
        ident = _q(id_column) if id_column in self.columns(table) else "rowid"
        sql = (
            f"SELECT rowid, {ident}, {names} FROM {_q(table)} "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        last, taken = (-(2**63) if after is None else after), 0
        while limit is None or taken < limit:
            size = batch if limit is None else min(batch, limit - taken)
            try:
                got = self.raw.execute(sql, (last, size)).fetchall()
            except sqlite3.DatabaseError as err:
                raise DatabaseError(f"cannot read {table}: {err}") from err
            if not got:
                return
            if bytes in set(map(type, chain.from_iterable(got))):  # one C loop over the batch
                got = [self._out(r) for r in got]
            yield got
            taken += len(got)
            last = got[-1][0]

    @_reading
    def by_id(self, table: str, columns: list[str], id_column: str = "id") -> dict[Any, Row]:
        have = self.columns(table)
        if id_column not in have:
            return {}
        picks = ", ".join(_q(c) if c in have else "NULL" for c in columns)
        return {
            row[0]: self._out(tuple(row[1:]))
            for row in self.raw.execute(f"SELECT {_q(id_column)}, {picks} FROM {_q(table)}")
        }

    @_reading
    def count(self, table: str) -> int:
        return int(self.raw.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0])

    @_reading
    def last_key(self, table: str) -> Any:
        return self.raw.execute(f"SELECT max(rowid) FROM {_q(table)}").fetchone()[0] or 0

    @_reading
    def digest(self, table: str, column: str, upto: Any) -> str:
        import hashlib  # OpenSSL loads with it: not a cost of every command that opens the store

        h = hashlib.sha256()
        rows = self.raw.execute(
            f"SELECT rowid, {_q(column)} FROM {_q(table)} WHERE rowid <= ? ORDER BY rowid",
            (upto or 0,),
        )
        for key, value in rows:
            h.update(f"{key}\0{value}\0".encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def update(self, table: str, columns: list[str], rows: list[Row]) -> int:
        if not self.raw.in_transaction:
            raise RuntimeError("update needs an open transaction")
        sets = ", ".join(f"{_q(c)} = ?" for c in columns)
        blobs = self._blob_columns(table)
        if blobs & set(columns):
            rows = [(*_as_blobs(columns, blobs, r[:-1]), r[-1]) for r in rows]
        done: int = self.raw.executemany(
            f"UPDATE {_q(table)} SET {sets} WHERE rowid = ?", rows
        ).rowcount
        return done

    def replace(self, table: str, columns: list[str], rows: list[Row]) -> int:
        if not self.raw.in_transaction:
            raise RuntimeError("replace needs an open transaction")
        # Numbered parameters bind the caller's tuples as they are: ?1 the row key, ?2 its label
        # (bound, unused), then the old values, then the new ones.
        n, blobs = len(columns), self._blob_columns(table)
        sets = ", ".join(f"{_q(c)} = ?{3 + n + i}" for i, c in enumerate(columns))
        held = " AND ".join(f"{_q(c)} IS ?{3 + i}" for i, c in enumerate(columns))  # IS: NULL
        if blobs & set(columns):
            rows = [
                (
                    *r[:2],
                    *_as_blobs(columns, blobs, r[2 : 2 + n]),
                    *_as_blobs(columns, blobs, r[2 + n :]),
                )
                for r in rows
            ]
        done: int = self.raw.executemany(
            f"UPDATE {_q(table)} SET {sets} WHERE rowid = ?1 AND {held}", rows
        ).rowcount
        return done

    @contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        """SQLite's own errors inside it become ``ChangeFailed``: nothing was changed."""
        with changing(), transaction(self.raw, name=name):
            yield

    def rewriting(
        self, in_place: Callable[[str], None] | None = None
    ) -> AbstractContextManager[SQLiteConnection]:
        """The backup this process has just sealed of this database, whose transaction
        commits by trading names with it, or this connection
        (``coolify_migrate.stores.sqlite_swap``)."""
        from coolify_migrate.stores import sqlite_swap

        return sqlite_swap.lend(self, in_place)

    @_reading
    def read_meta(self) -> dict[str, str]:
        return read_meta(self.raw)

    def write_meta(self, **values: str) -> None:
        write_meta(self.raw, **values)

    @_reading
    def scalar(self, sql: str) -> Any:
        row = self.raw.execute(sql).fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """For an app's own steps: SQL in SQLite's dialect, inside ``transaction``."""
        return self.raw.execute(sql, params)

    def close(self) -> None:
        self.raw.close()


class SQLiteStore:
    """``core.store.Store`` for one SQLite file (Coolify v3's ``prod.db``)."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.is_file()

    def size(self) -> int:
        """The file and its WAL: what a consistent copy may take."""
        total = self.path.stat().st_size
        wal = self.path.with_name(self.path.name + "-wal")
        return total + (wal.stat().st_size if wal.exists() else 0)

    def siblings(self) -> list[Sibling]:
        """Every backup-shaped regular file beside the database, oldest first."""
        from coolify_migrate.stores import names

        try:
            entries = os.listdir(self.path.parent)
        except OSError:
            return []
        found = []
        for name in entries:
            parsed = names.parse(self.path.name, name)
            path = self.path.parent / name
            if parsed is None or path.is_symlink() or not path.is_file():
                continue
            found.append(Sibling(name, path, parsed.time_ms))
        return sorted(found, key=lambda c: (c.time_ms, c.name))

    def connect(self, *, readonly: bool = False) -> SQLiteConnection:
        if not readonly:  # a backup lent to a roll that did not finish is put back first
            self.settle()
        return SQLiteConnection(connect(self.path, readonly=readonly), path=self.path)

    def settle(self) -> None:
        """What a key roll that changed a backup copy left unfinished (a kill, a power cut) is
        finished: the copy is a backup again (``coolify_migrate.stores.sqlite_swap``)."""
        from coolify_migrate.stores import sqlite_swap

        sqlite_swap.settle(self.path)

    def snapshot(self, path: Path | None = None) -> SQLiteConnection:
        """A read-only connection to a copy nobody writes (a backup; the file of a stopped app)."""
        where = path or self.path
        try:
            return SQLiteConnection(open_snapshot(where))
        except sqlite3.DatabaseError as err:
            raise DatabaseError(f"{where.name} is not a readable SQLite database: {err}") from err

    def backup_location(self) -> tuple[Path, str]:
        return self.path.parent, self.path.name

    def check_copy(self, path: Path, *, full: bool = False) -> str:
        from coolify_migrate.stores import sqlite_copy

        return sqlite_copy.integrity(path, full=full)

    def check_in_place(
        self, within: Callable[[SQLiteConnection], None] | None = None
    ) -> tuple[str, str] | None:
        """(quick_check verdict, SHA-256) of the file's bytes as they are now, in one read
        snapshot; None when the file alone does not hold it (``sqlite_copy.check_in_place``).
        ``within`` reads that same snapshot once the check passed."""
        from coolify_migrate.stores import sqlite_copy

        def reading(raw: sqlite3.Connection) -> None:
            if within is not None:
                within(SQLiteConnection(raw))

        try:
            return sqlite_copy.check_in_place(self.path, reading if within else None)
        except sqlite3.Error as err:
            raise DatabaseError(f"cannot check {self.path}: {err}") from err

    def backup(
        self, dest: Path, out: Output | None = None, *, checked: str | None = None
    ) -> Dumped:
        """The file's bytes copied, hashed and checked in one pass when the file holds the
        snapshot; else SQLite's backup API in one step, then checked, hashed and fsynced
        (``sqlite_copy``). ``checked``: the SHA-256 of bytes that already passed the check
        (``check_in_place``), so the one pass need not check again what it proves identical.
        A full disk raises ``OSError(ENOSPC)``; other SQLite errors ``DatabaseError``."""
        from coolify_migrate.stores import sqlite_copy

        out = out or Null()
        bars: list[Progress] = []  # shown once the one pass starts copying (it may not)

        def copied(n: int) -> None:
            if not bars:
                bars.append(out.progress("copying the database", self.size(), "bytes"))
            bars[0].advance(n)

        try:
            sealed = sqlite_copy.copy_sealed(self.path, dest, copied, checked)
        except sqlite3.Error as err:
            raise DatabaseError(f"cannot copy {self.path}: {err}") from err
        finally:
            for bar in bars:
                bar.close()
        if sealed is not None:
            return Dumped(dest.stat().st_size, sealed[1], sealed[0])
        bar = out.progress("copying the database", self.size(), "bytes")
        try:
            sqlite_copy.snapshot_copy(self.path, dest)
            bar.advance(dest.stat().st_size)  # one step: SQLite reports nothing inside it
        except sqlite3.Error as err:
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise OSError(errno.ENOSPC, "database or disk is full") from err
            raise DatabaseError(f"cannot copy {self.path}: {err}") from err
        finally:
            bar.close()
        size = dest.stat().st_size
        bar = out.progress("checking and hashing the copy", size, "bytes")
        try:
            checked, digest = sqlite_copy.seal(dest, bar.advance)
        finally:
            bar.close()
        return Dumped(size, digest, checked)

    def restore(self, src: Path) -> None:
        """The backup file atomically replaces the database; stale -wal/-shm go first."""
        from coolify_migrate.stores import sqlite_copy

        self.settle()  # the backup may be out on loan to a roll that did not finish
        verdict = sqlite_copy.integrity(src)
        if verdict != "ok":
            raise DatabaseError(f"{src.name} fails its integrity check: {verdict}")
        check_unlocked(self.path)  # never replace the file under a process that holds it
        tmp = sqlite_copy.stage(src, self.path)  # 0600: it holds encrypted data
        for suffix in ("-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, self.path)
        durable.fsync_dir(self.path.parent)

    def check_ready(self, declared: tuple[EncryptedColumn, ...]) -> None:
        """Before a change: the file is SQLite, holds at least one of the app's tables, and no
        other process holds it locked (``DatabaseError``/``DatabaseBusy``, nothing changed)."""
        check_looks_like_sqlite(self.path)
        tables = {c.table for c in declared}
        if tables:
            conn = connect(self.path, readonly=True)
            try:
                if not any(table_exists(conn, t) for t in tables):
                    raise DatabaseError(
                        f"{self.path} holds none of the app's tables ({', '.join(sorted(tables))})"
                    )
            finally:
                conn.close()
        check_unlocked(self.path)

    def integrity(self) -> str:
        from coolify_migrate.stores import sqlite_copy

        return sqlite_copy.integrity(self.path, full=True)
