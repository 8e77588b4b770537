"""PostgreSQL behind ``core.store``: a real server (Redash keeps its data in one).

- Rows are keyed by the table's ``id`` column (Redash's tables all have an integer one), batches
  by ``WHERE id > last ORDER BY id``. A ``bytea`` column's value comes back as ASCII text (a
  Fernet token is ASCII) and is written back as bytes; bytes that are not ASCII come back as
  ``bytes``, which no codec reads as ciphertext.
- Every change happens inside one explicit transaction that also carries the tool's record
  (table ``_coolify_migrate``), so a change and its record commit together or not at all.
- A backup is a logical dump in ``pg_dump``'s custom format, made by the server's own tools of
  its own major version, where the server runs (a ``Runner``: here, or in its container). Its
  SHA-256 is taken from the file once ``pg_dump`` is done (written to a file, ``pg_dump -Fc``
  seeks back to fill in its table of contents, so the bytes are final only at the end); its
  integrity is ``pg_restore --list`` reading it back.
- A restore loads the dump into a fresh database beside the live one and swaps the two by name
  only when it loaded cleanly; the replaced database is dropped afterwards. Nothing may be
  connected to the live database at that moment (the app is stopped by then).

Passwords never reach a command line: the tools get them through ``PGPASSWORD`` in their
environment, and ``where`` names server and database only.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

from coolify_migrate.core import faults
from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.errors import ChangeFailed, DatabaseError
from coolify_migrate.core.output import Null, Output
from coolify_migrate.core.store import META_TABLE, Dumped, Fields, Row, Sibling
from coolify_migrate.stores.pg_server import LocalRunner, Runner, Server, driver

_CHUNK = 1 << 20
_RESTORE_ARGS = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresConnection:
    """``core.store.Connection`` on one PostgreSQL database; rows are keyed by ``id``."""

    def __init__(self, raw: Any, *, readonly: bool) -> None:
        self.raw = raw
        self.readonly = readonly
        self._types: dict[str, dict[str, str]] = {}
        self._in_tx = False

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        try:
            return self.raw.execute(sql, params)
        except driver().Error as err:
            if self._in_tx:
                raise
            raise DatabaseError(f"cannot read the database: {str(err).splitlines()[0]}") from err

    def _column_types(self, table: str) -> dict[str, str]:
        if table not in self._types:
            rows = self._run(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (table,),
            ).fetchall()
            self._types[table] = {name: kind for name, kind in rows}
        return self._types[table]

    def _out(self, table: str, columns: list[str], row: tuple[Any, ...], skip: int) -> Row:
        types = self._column_types(table)
        values = list(row)
        for i, name in enumerate(columns):
            value = values[skip + i]
            if types.get(name) == "bytea" and value is not None:
                raw = bytes(value)
                try:
                    values[skip + i] = raw.decode("ascii")
                except UnicodeDecodeError:
                    values[skip + i] = raw  # not a token: no codec reads it as ciphertext
        return tuple(values)

    def fields(self, declared: tuple[EncryptedColumn, ...]) -> Fields:
        present: list[EncryptedColumn] = []
        absent: list[EncryptedColumn] = []
        for column in declared:
            (present if column.column in self.columns(column.table) else absent).append(column)
        return Fields(tuple(present), tuple(absent))

    def columns(self, table: str) -> set[str]:
        return set(self._column_types(table))

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
        key = _q(id_column)
        head = f"SELECT {key}, {key}, {names} FROM {_q(table)}"
        last, taken = after, 0
        while limit is None or taken < limit:
            size = batch if limit is None else min(batch, limit - taken)
            if last is None:
                got = self._run(f"{head} ORDER BY {key} LIMIT %s", (size,)).fetchall()
            else:
                got = self._run(
                    f"{head} WHERE {key} > %s ORDER BY {key} LIMIT %s", (last, size)
                ).fetchall()
            if not got:
                return
            yield [self._out(table, columns, r, 2) for r in got]
            taken += len(got)
            last = got[-1][0]

    def by_id(self, table: str, columns: list[str], id_column: str = "id") -> dict[Any, Row]:
        have = self.columns(table)
        if id_column not in have:
            return {}
        picks = ", ".join(_q(c) if c in have else "NULL" for c in columns)
        got = self._run(f"SELECT {_q(id_column)}, {picks} FROM {_q(table)}").fetchall()
        return {r[0]: self._out(table, columns, r, 1)[1:] for r in got}

    def count(self, table: str) -> int:
        return int(self._run(f"SELECT count(*) FROM {_q(table)}").fetchone()[0])

    def last_key(self, table: str) -> Any:
        return self._run(f'SELECT max("id") FROM {_q(table)}').fetchone()[0]

    def digest(self, table: str, column: str, upto: Any) -> str:
        h = hashlib.sha256()
        if upto is None:
            return h.hexdigest()
        rows = self._run(
            f'SELECT "id", {_q(column)} FROM {_q(table)} WHERE "id" <= %s ORDER BY "id"', (upto,)
        )
        for key, value in rows:
            shown = bytes(value).hex() if isinstance(value, bytes | memoryview) else value
            h.update(f"{key}\0{shown}\0".encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def update(self, table: str, columns: list[str], rows: list[Row]) -> int:
        if not self._in_tx:
            raise RuntimeError("update needs an open transaction")
        types = self._column_types(table)
        sets = ", ".join(f"{_q(c)} = %s" for c in columns)
        done = 0
        with self.raw.cursor() as cur:
            for row in rows:
                values = self._typed(types, columns, row[:-1])
                cur.execute(f'UPDATE {_q(table)} SET {sets} WHERE "id" = %s', (*values, row[-1]))
                done += cur.rowcount
        return done

    def replace(self, table: str, columns: list[str], rows: list[Row]) -> int:
        if not self._in_tx:
            raise RuntimeError("replace needs an open transaction")
        types, n = self._column_types(table), len(columns)
        sets = ", ".join(f"{_q(c)} = %s" for c in columns)
        held = " AND ".join(f"{_q(c)} IS NOT DISTINCT FROM %s" for c in columns)
        sql = f'UPDATE {_q(table)} SET {sets} WHERE "id" = %s AND {held}'
        done = 0
        with self.raw.cursor() as cur:
            for row in rows:
                old, new = (
                    self._typed(types, columns, row[2 : 2 + n]),
                    self._typed(types, columns, row[2 + n :]),
                )
                cur.execute(sql, (*new, row[0], *old))
                done += cur.rowcount
        return done

    @staticmethod
    def _typed(types: dict[str, str], columns: list[str], values: Row) -> list[Any]:
        """Text bound for a bytea column becomes its ASCII bytes (a token read as text)."""
        return [
            v.encode("ascii") if types.get(c) == "bytea" and isinstance(v, str) else v
            for c, v in zip(columns, values, strict=True)
        ]

    def rewriting(
        self, in_place: Callable[[str], None] | None = None
    ) -> AbstractContextManager[PostgresConnection]:
        """This connection: the server's own transaction is the only way in."""
        return nullcontext(self)

    @contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        """One transaction; a failure inside rolls it back and becomes ``ChangeFailed``."""
        if self.readonly:
            raise RuntimeError("a read-only connection cannot change anything")
        psycopg = driver()
        self._in_tx = True
        try:
            with self.raw.transaction():
                yield
                if name:
                    faults.checkpoint(f"{name}:before-commit")
        except psycopg.Error as err:
            raise ChangeFailed(
                f"the change failed and was rolled back: {str(err).splitlines()[0]}"
            ) from err
        finally:
            self._in_tx = False
        if name:
            faults.checkpoint(f"{name}:committed")

    def read_meta(self) -> dict[str, str]:
        exists = self._run("SELECT to_regclass(%s)", (_q(META_TABLE),)).fetchone()[0]
        if exists is None:
            return {}
        return {k: v for k, v in self._run(f"SELECT key, value FROM {_q(META_TABLE)}")}

    def write_meta(self, **values: str) -> None:
        if not self._in_tx:
            raise RuntimeError("write_meta needs an open transaction")
        self.raw.execute(
            f"CREATE TABLE IF NOT EXISTS {_q(META_TABLE)} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        for key, value in values.items():
            self.raw.execute(
                f"INSERT INTO {_q(META_TABLE)} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def scalar(self, sql: str) -> Any:
        row = self._run(sql).fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """For an app's own steps: SQL in PostgreSQL's dialect, inside ``transaction``."""
        return self.raw.execute(sql, params)

    def close(self) -> None:
        self.raw.close()


class PostgresStore:
    """``core.store.Store`` for one database on a PostgreSQL server."""

    kind = "postgres"
    path: Path | None = None

    def __init__(
        self, server: Server, *, runner: Runner | None = None, backup_dir: Path | None = None
    ) -> None:
        self.server = server
        self._runner = runner
        self._backup_dir = backup_dir

    @property
    def where(self) -> str:
        return self.server.where

    def _connect(self, server: Server) -> Any:
        psycopg = driver()
        try:
            return psycopg.connect(autocommit=True, connect_timeout=15, **server.kwargs())
        except psycopg.Error as err:
            raise DatabaseError(
                f"cannot connect to {server.where}: {str(err).splitlines()[0]}",
                hint="check that the database server runs and the connection settings",
            ) from err

    def _admin_server(self) -> Server:
        """Where to run CREATE/RENAME/DROP DATABASE from: a session must not sit in the database
        it renames, and Redash's own database is the one called ``postgres``."""
        return self.server.with_database(
            "template1" if self.server.database == "postgres" else "postgres"
        )

    def major(self) -> int:
        conn = self._connect(self.server)
        try:
            return int(conn.info.server_version) // 10000
        finally:
            conn.close()

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = LocalRunner(self.major())
        return self._runner

    def exists(self) -> bool:
        admin = self._connect(self._admin_server())
        try:
            row = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.server.database,)
            ).fetchone()
            return row is not None
        finally:
            admin.close()

    def size(self) -> int:
        conn = self._connect(self.server)
        try:
            return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
        finally:
            conn.close()

    def connect(self, *, readonly: bool = False) -> PostgresConnection:
        raw = self._connect(self.server)
        if readonly:
            raw.execute("SET default_transaction_read_only = on")
        return PostgresConnection(raw, readonly=readonly)

    def snapshot(self, path: Path | None = None) -> PostgresConnection:
        if path is not None:
            raise DatabaseError(
                f"{path.name} is a dump: it is read by restoring it, not opened in place"
            )
        return self.connect(readonly=True)

    def siblings(self) -> list[Sibling]:
        return []  # a server keeps no copies beside a database

    # -- backup and restore -------------------------------------------------------------------

    def backup_location(self) -> tuple[Path, str]:
        """``<dir>/<database>.pgdump_<ms>``; the directory is made (0700) when missing."""
        if self._backup_dir is None:
            raise DatabaseError(
                f"no backup directory is set for {self.where}",
                hint="the app names one (Redash: <install dir>/backups)",
            )
        self._backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._backup_dir, f"{self.server.database}.pgdump"

    def check_copy(self, path: Path, *, full: bool = False) -> str:
        return self._listable(path)

    def backup(self, dest: Path, out: Output | None = None) -> Dumped:
        """``pg_dump -Fc`` into ``dest``, then hashed and read back whole."""
        out = out or Null()
        digest, size = hashlib.sha256(), 0
        bar = out.progress("dumping the database", None, "bytes")
        try:
            with open(dest, "wb") as fh:
                proc = self._dump_into(fh)
            bar.advance(dest.stat().st_size if dest.exists() else 0)
        finally:
            bar.close()
        if proc.returncode != 0:
            dest.unlink(missing_ok=True)
            raise DatabaseError(f"pg_dump failed: {_first_line(proc.stderr)}")
        bar = out.progress("checking and hashing the dump", dest.stat().st_size, "bytes")
        try:
            with open(dest, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    bar.advance(len(chunk))
                os.fsync(fh.fileno())
            return Dumped(size, digest.hexdigest(), self._listable(dest))
        finally:
            bar.close()

    def _dump_into(self, out: IO[bytes]) -> subprocess.CompletedProcess[bytes]:
        args = ["--format=custom", "--no-owner", "--no-privileges", "--compress=6"]
        return self.runner.run("pg_dump", args, self.server.tool_env(), stdout=out)

    def _listable(self, dump: Path) -> str:
        with open(dump, "rb") as fh:
            proc = self.runner.run("pg_restore", ["--list"], self.server.tool_env(), stdin=fh)
        return "ok" if proc.returncode == 0 else f"unreadable dump: {_first_line(proc.stderr)}"

    def restore(self, src: Path) -> None:
        """Load ``src`` into a fresh database; swap it in by name only if it loaded cleanly."""
        verdict = self._listable(src)
        if verdict != "ok":
            raise DatabaseError(f"{src.name}: {verdict}")
        name = self.server.database
        fresh = f"{name}_restoring_{int(time.time() * 1000)}"
        admin = self._connect(self._admin_server())
        try:
            admin.execute(f"CREATE DATABASE {_q(fresh)}")
            try:
                target = self.server.with_database(fresh)
                with open(src, "rb") as fh:
                    proc = self.runner.run(
                        "pg_restore",
                        [*_RESTORE_ARGS, f"--dbname={fresh}"],
                        target.tool_env(),
                        stdin=fh,
                    )
                if proc.returncode != 0:
                    raise DatabaseError(
                        f"{src.name} did not load cleanly: {_first_line(proc.stderr)}; the "
                        "live database was not touched"
                    )
                self._swap(admin, name, fresh)
            except BaseException as err:
                admin.execute(f"DROP DATABASE IF EXISTS {_q(fresh)}")
                if isinstance(err, driver().Error):
                    raise DatabaseError(
                        f"restoring {src.name} into {self.where} failed: "
                        f"{_first_line(str(err))}; the live database was not touched"
                    ) from err
                raise
        finally:
            admin.close()

    def _swap(self, admin: Any, name: str, fresh: str) -> None:
        replaced = f"{name}_replaced_{int(time.time() * 1000)}"
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(f"ALTER DATABASE {_q(name)} RENAME TO {_q(replaced)}")
        try:
            admin.execute(f"ALTER DATABASE {_q(fresh)} RENAME TO {_q(name)}")
        except BaseException:
            admin.execute(f"ALTER DATABASE {_q(replaced)} RENAME TO {_q(name)}")
            raise
        admin.execute(f"DROP DATABASE IF EXISTS {_q(replaced)}")

    def integrity(self) -> str:
        """Every table read whole (a damaged page fails the scan)."""
        conn = self.connect(readonly=True)
        try:
            tables = conn.raw.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchall()
            for (table,) in tables:
                conn.raw.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()
            return "ok"
        except driver().Error as err:
            return f"unreadable: {_first_line(str(err))}"
        finally:
            conn.close()


def _first_line(text: bytes | str | None) -> str:
    if not text:
        return "no message"
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return (shown.strip().splitlines() or ["no message"])[-1][:300]
