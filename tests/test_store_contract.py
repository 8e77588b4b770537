"""One contract for every store (``coolify_migrate.core.store``): SQLite files and a real
PostgreSQL server pass the same tests. Each store gets the same small schema: a text field
(Coolify's way), a ``bytea`` field (Redash's way), and a table the declared fields name but the
database does not have (an older schema)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.errors import ChangeFailed, DatabaseError, MigrateError
from coolify_migrate.core.store import Store
from coolify_migrate.stores.pg_server import Server
from coolify_migrate.stores.postgres import PostgresStore
from coolify_migrate.stores.sqlite import SQLiteStore

DECLARED = (
    EncryptedColumn("Secret", "value"),
    EncryptedColumn("data_sources", "encrypted_options"),
    EncryptedColumn("Gone", "password"),
)
ROWS = 25
NOT_ASCII = b"\xff\xfe not a token"


def _secret(i: int) -> str:
    return f"secret-{i:03d}"


def _token(i: int) -> str:
    return f"gAAAAA-token-{i:03d}"


SQLITE_SCHEMA = """
CREATE TABLE "Secret" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT, "value" TEXT NOT NULL);
CREATE TABLE "data_sources" ("id" INTEGER PRIMARY KEY, "name" TEXT, "encrypted_options" BLOB);
"""
PG_SCHEMA = """
CREATE TABLE "Secret" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT, "value" TEXT NOT NULL);
CREATE TABLE "data_sources" ("id" SERIAL PRIMARY KEY, "name" TEXT, "encrypted_options" BYTEA);
"""


def _fill_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_SCHEMA)
    for i in range(ROWS):
        conn.execute('INSERT INTO "Secret" VALUES (?, ?, ?)', (f"id{i:03d}", f"n{i}", _secret(i)))
        conn.execute(
            'INSERT INTO "data_sources" VALUES (?, ?, ?)', (i + 1, f"d{i}", _token(i).encode())
        )
    conn.execute('INSERT INTO "data_sources" VALUES (?, ?, ?)', (ROWS + 1, "odd", NOT_ASCII))
    conn.commit()
    conn.close()


def _fill_pg(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(PG_SCHEMA)
        for i in range(ROWS):
            conn.execute(
                'INSERT INTO "Secret" VALUES (%s, %s, %s)', (f"id{i:03d}", f"n{i}", _secret(i))
            )
            conn.execute(
                'INSERT INTO "data_sources" (id, name, encrypted_options) VALUES (%s, %s, %s)',
                (i + 1, f"d{i}", _token(i).encode()),
            )
        conn.execute(
            'INSERT INTO "data_sources" (id, name, encrypted_options) VALUES (%s, %s, %s)',
            (ROWS + 1, "odd", NOT_ASCII),
        )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        path = tmp_path / "db" / "prod.db"
        path.parent.mkdir()
        _fill_sqlite(path)
        yield SQLiteStore(path)
        return
    conninfo = request.getfixturevalue("pg_database")
    _fill_pg(conninfo)
    yield PostgresStore(Server.parse(conninfo))


def _key(store: Store, table: str, row_id: Any) -> Any:
    """The row key the store addresses the row with ``id`` = ``row_id`` by."""
    conn = store.connect(readonly=True)
    try:
        return next(r[0] for b in conn.rows(table, ["id"]) for r in b if r[1] == row_id)
    finally:
        conn.close()


def _all(store: Store, table: str, column: str) -> list[Any]:
    conn = store.connect(readonly=True)
    try:
        return [r[2] for batch in conn.rows(table, [column], batch=7) for r in batch]
    finally:
        conn.close()


def test_fields_present_and_absent(store: Store) -> None:
    conn = store.connect(readonly=True)
    try:
        found = conn.fields(DECLARED)
    finally:
        conn.close()
    assert [c.label for c in found.present] == ["Secret.value", "data_sources.encrypted_options"]
    assert [c.label for c in found.absent] == ["Gone.password"]
    assert set(found.by_table()) == {"Secret", "data_sources"}


def test_rows_stream_in_key_order_with_text_for_tokens_and_bytes_for_the_rest(
    store: Store,
) -> None:
    conn = store.connect(readonly=True)
    try:
        batches = list(conn.rows("Secret", ["value", "name"], batch=7))
        assert [len(b) for b in batches] == [7, 7, 7, 4]
        flat = [r for b in batches for r in b]
        assert [r[1] for r in flat] == [f"id{i:03d}" for i in range(ROWS)]
        assert [r[2] for r in flat] == [_secret(i) for i in range(ROWS)]
        assert [r[3] for r in flat] == [f"n{i}" for i in range(ROWS)]
        limited = [r for b in conn.rows("Secret", ["value"], batch=4, limit=6) for r in b]
        assert len(limited) == 6
        tokens = [r[2] for b in conn.rows("data_sources", ["encrypted_options"]) for r in b]
        assert tokens[:ROWS] == [_token(i) for i in range(ROWS)]
        assert tokens[ROWS] == NOT_ASCII  # not ASCII: handed over as bytes
        assert conn.count("Secret") == ROWS and conn.count("data_sources") == ROWS + 1
        assert conn.by_id("Secret", ["value", "missing"])["id003"] == (_secret(3), None)
        assert conn.scalar('SELECT count(*) FROM "Secret"') == ROWS
    finally:
        conn.close()


def test_a_transaction_commits_changes_and_the_record_together(store: Store) -> None:
    conn = store.connect()
    try:
        rows = [r for b in conn.rows("data_sources", ["encrypted_options"]) for r in b]
        with conn.transaction("contract"):
            written = conn.update(
                "data_sources",
                ["encrypted_options"],
                [(f"gAAAAA-new-{r[1]}", r[0]) for r in rows[:3]],
            )
            conn.write_meta(key_check="abc", version="1.2.3")
        assert written == 3
    finally:
        conn.close()
    after = _all(store, "data_sources", "encrypted_options")
    assert after[:3] == [f"gAAAAA-new-{i}" for i in (1, 2, 3)]
    assert after[3:ROWS] == [_token(i) for i in range(3, ROWS)]
    conn = store.connect(readonly=True)
    try:
        assert conn.read_meta() == {"key_check": "abc", "version": "1.2.3"}
    finally:
        conn.close()


def test_replace_writes_only_rows_that_still_hold_the_old_values(store: Store) -> None:
    """Compare and set: a row whose values differ from the ones given as old is not written, and
    the count says so; NULL equals NULL; bytea/BLOB tokens compare as the text they were read as."""
    conn = store.connect()
    try:
        rows = [r for b in conn.rows("data_sources", ["encrypted_options", "name"]) for r in b]
        (k0, l0, t0, n0), (k1, l1, _, n1), (k2, l2, t2, n2) = rows[:3]
        with conn.transaction("contract"):
            written = conn.replace(  # (row key, label, old values..., new values...)
                "data_sources",
                ["encrypted_options", "name"],
                [
                    (k0, l0, t0, n0, "gAAAAA-a", "a"),  # holds (t0, n0): written
                    (k1, l1, t2, n1, "gAAAAA-b", "b"),  # another row's token: not written
                    (k2, l2, t2, n2, "gAAAAA-c", None),
                ],
            )
            assert written == 2
            assert conn.replace("data_sources", ["name"], [(k2, l2, None, "again")]) == 1
        with pytest.raises(RuntimeError):  # writes happen inside a transaction only
            conn.replace("data_sources", ["name"], [(k0, l0, "a", "x")])
    finally:
        conn.close()
    after = _all(store, "data_sources", "encrypted_options")
    assert after[:3] == ["gAAAAA-a", _token(1), "gAAAAA-c"]
    assert _all(store, "data_sources", "name")[:3] == ["a", "d1", "again"]


def test_a_failure_inside_the_transaction_changes_nothing(store: Store) -> None:
    before = _all(store, "Secret", "value")
    conn = store.connect()
    try:
        rows = [r for b in conn.rows("Secret", ["value"]) for r in b]
        with pytest.raises(RuntimeError, match="boom"), conn.transaction("contract"):
            conn.update("Secret", ["value"], [("changed", r[0]) for r in rows])
            conn.write_meta(key_check="never")
            raise RuntimeError("boom")
        assert conn.read_meta() == {}
        with pytest.raises(RuntimeError):  # writes happen inside a transaction only
            conn.update("Secret", ["value"], [("x", rows[0][0])])
    finally:
        conn.close()
    assert _all(store, "Secret", "value") == before


def test_a_database_error_inside_the_transaction_is_a_change_that_failed(store: Store) -> None:
    conn = store.connect()
    try:
        with pytest.raises(ChangeFailed), conn.transaction("contract"):
            conn.execute('UPDATE "Secret" SET "no_such_column" = 1')
    finally:
        conn.close()


def test_the_digest_sees_a_changed_value_and_not_a_new_row(store: Store) -> None:
    conn = store.connect()
    try:
        last = conn.last_key("data_sources")
        first = conn.digest("data_sources", "encrypted_options", last)
        assert conn.digest("data_sources", "encrypted_options", last) == first
        with conn.transaction():
            conn.execute(
                "INSERT INTO \"data_sources\" (id, name) VALUES (100, 'later')"
                if store.kind == "postgres"
                else 'INSERT INTO "data_sources" (id, name) VALUES (100, "later")'
            )
        assert conn.digest("data_sources", "encrypted_options", last) == first
        with conn.transaction():
            conn.update("data_sources", ["encrypted_options"], [("gAAAAA-changed", 2)])
        assert conn.digest("data_sources", "encrypted_options", last) != first
    finally:
        conn.close()


def test_backup_checksum_restore_and_integrity(store: Store, tmp_path: Path) -> None:
    assert store.integrity() == "ok" and store.exists() and store.size() > 0
    dump = tmp_path / "backup.bin"
    made = store.backup(dump)
    assert made.integrity == "ok"
    assert made.size == dump.stat().st_size
    assert made.sha256 == hashlib.sha256(dump.read_bytes()).hexdigest()
    before = _all(store, "Secret", "value")
    conn = store.connect()
    try:
        assert _all(store, "Secret", "value")[0] == _secret(0)
        with conn.transaction():
            conn.update("Secret", ["value"], [("overwritten", _key(store, "Secret", "id000"))])
            conn.write_meta(version="9.9.9")
    finally:
        conn.close()
    store.restore(dump)
    assert _all(store, "Secret", "value") == before
    assert _all(store, "data_sources", "encrypted_options")[ROWS] == NOT_ASCII
    conn = store.connect(readonly=True)
    try:
        assert conn.read_meta() == {}
    finally:
        conn.close()


def test_a_damaged_backup_is_refused_and_the_data_stay(store: Store, tmp_path: Path) -> None:
    dump = tmp_path / "backup.bin"
    store.backup(dump)
    raw = dump.read_bytes()
    dump.write_bytes(b"\0" * 100 + raw[100 : len(raw) // 2])  # header gone, truncated
    conn = store.connect()
    try:
        with conn.transaction():
            conn.update("Secret", ["value"], [("kept", _key(store, "Secret", "id001"))])
    finally:
        conn.close()
    with pytest.raises(MigrateError):
        store.restore(dump)
    assert _all(store, "Secret", "value")[1] == "kept"


def test_a_read_only_connection_never_writes(store: Store) -> None:
    conn = store.connect(readonly=True)
    try:
        with pytest.raises((ChangeFailed, RuntimeError, DatabaseError)), conn.transaction():
            conn.write_meta(version="1")
    finally:
        conn.close()
