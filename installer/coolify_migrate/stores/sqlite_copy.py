"""Copy a live SQLite database consistently and exactly, and check a copy without touching it.

The copy goes through SQLite's online backup API in **one** step (``pages=-1``) inside a read
transaction: it holds every row committed before it started and nothing half-written, even while
the app writes in WAL mode (a step-wise copy restarts whenever another connection writes; a plain
``cp`` misses what still sits in the ``-wal`` file).

The backup API writes a few header fields of its own: the file change counter, the schema cookie
and the "version-valid-for" number (bytes 24-27, 40-43 and 92-99). They are put back to the
source's values, so the copy of a database with no uncheckpointed WAL frames (any database whose
app is stopped) is the source file byte for byte, and restoring it gives back exactly the file
that was saved. Under a live WAL writer the copy is the same page image, and only the change
counter (which no reader of a closed file uses) may be older.

When the database file alone holds the snapshot (rollback-journal mode, which is what Prisma gives
Coolify's ``prod.db``, or WAL mode once a checkpoint has brought the file up to the snapshot),
``copy_sealed`` copies the file's bytes instead, in one pass: hashed as they are written,
``quick_check``ed on the snapshot's own connection meanwhile, then fsynced. That is the exact
file, at about the cost of a plain copy; the backup API stays the way for everything else.
``check_in_place`` checks and hashes the same bytes without copying them (an upgrade does it
before the app stops), so that ``copy_sealed`` need not check a copy that its SHA-256 proves to
be those bytes.

Copies are opened ``immutable``: read-only, no locks, and, unlike a plain read-only connection,
never leaving ``-wal``/``-shm`` files behind beside a backup that carries the WAL flag.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

from coolify_migrate.core import durable
from coolify_migrate.core.errors import DatabaseBusy, DatabaseError
from coolify_migrate.stores import hashed_copy
from coolify_migrate.stores import sqlite as db
from coolify_migrate.stores.sqlite import open_snapshot

MAGIC = b"SQLite format 3\x00"
HEADER_LEN = 100
_CHUNK = 4 << 20
_ATTEMPTS = 3  # snapshots tried before a WAL database is left to the backup API


def snapshot_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` into the existing empty file ``dest``; raises sqlite3.Error or OSError.

    ``dest`` is written without a journal and without syncs: it is a temporary file that the
    caller fsyncs once and throws away on any failure.
    """
    # Opened before the connection and closed after it: closing any descriptor of a file drops
    # every POSIX lock this process holds on it, the snapshot's SHARED lock included, and a
    # writer could then change pages while they are copied.
    kept = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        src = db.connect(source)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the snapshot
            cookie = int(src.execute("PRAGMA schema_version").fetchone()[0])
            raw = os.pread(kept, HEADER_LEN, 0)
            out = sqlite3.connect(dest, isolation_level=None)
            try:
                out.execute("PRAGMA journal_mode=OFF")
                out.execute("PRAGMA synchronous=OFF")
                src.backup(out, pages=-1)
            finally:
                out.close()
            src.execute("ROLLBACK")
        finally:
            src.close()
    finally:
        os.close(kept)
    if raw.startswith(MAGIC) and len(raw) == HEADER_LEN:
        _restore_header_fields(dest, raw, cookie)


def copy_sealed(
    source: Path,
    dest: Path,
    read: Callable[[int], None] | None = None,
    checked: str | None = None,
) -> tuple[str, str] | None:
    """(quick_check verdict, SHA-256) of a copy of ``source`` written into ``dest`` (the
    caller's empty claim, else a new file, 0600) in one pass and fsynced; None, with nothing
    written, when the database file does not hold the snapshot on its own (the caller then uses
    ``snapshot_copy``).

    The snapshot's read transaction is held from before the file is looked at until the last
    byte is copied: in rollback-journal mode its SHARED lock keeps every writer off the file; in
    WAL mode its read mark keeps every checkpoint from writing a frame newer than the snapshot
    into the file. ``quick_check`` runs on that same connection while the bytes are copied, so
    its verdict is about exactly the bytes hashed. ``read`` is told each chunk's size.

    ``checked`` is the SHA-256 of bytes that already passed ``quick_check`` (``check_in_place``,
    while the app still ran). Then no check runs beside the copy: when the copy's SHA-256 is
    that one, the copy is those very bytes and their verdict is its own; when it is not (a write
    since, or damage), ``quick_check`` runs on the snapshot after the copy, still before any
    verdict is given.
    """
    with _pinned(source) as pinned:
        if pinned is None:
            return None
        src, kept, length = pinned
        if checked is not None:
            digest = _copy_to(kept, dest, length, read)
            verdict = "ok" if digest == checked else _verdict(src, "quick_check")
            return verdict, digest
        with ThreadPoolExecutor(max_workers=1) as pool:
            during = pool.submit(_verdict, src, "quick_check")
            try:
                digest = _copy_to(kept, dest, length, read)
            except BaseException:
                src.interrupt()  # the copy failed: its check need not finish
                raise
            finally:
                wait([during])  # the connection is closed only once its check is done
        return during.result(), digest


def check_in_place(
    source: Path, within: Callable[[sqlite3.Connection], None] | None = None
) -> tuple[str, str] | None:
    """(quick_check verdict, SHA-256) of the database file's bytes as they are now, both taken
    in one read snapshot (the app may be running: in rollback-journal mode its writers wait
    for the snapshot, as they do for a backup); None when the file does not hold the snapshot.
    The digest is of exactly the bytes ``copy_sealed`` would copy from the same snapshot, so a
    copy with that digest is those bytes, checked. ``within`` is given the snapshot's
    connection once the check passed, while the file is still being hashed: what it reads is
    of the same bytes."""
    with _pinned(source) as pinned:
        if pinned is None:
            return None
        src, kept, length = pinned

        def check() -> str:
            verdict = _verdict(src, "quick_check")
            if verdict == "ok" and within is not None:
                within(src)
            return verdict

        with ThreadPoolExecutor(max_workers=1) as pool:
            during = pool.submit(check)
            try:
                digest = hashed_copy.hash_range(kept, length)
            except BaseException:
                src.interrupt()
                raise
            finally:
                wait([during])
        return during.result(), digest


@contextmanager
def _pinned(source: Path) -> Iterator[tuple[sqlite3.Connection, int, int] | None]:
    """(connection holding the snapshot, a descriptor of the file, the snapshot's length) while
    the file's first that many bytes are the snapshot; None when they are not."""
    kept = os.open(source, os.O_RDONLY | os.O_CLOEXEC)  # held: see snapshot_copy
    try:
        src = db.connect(source, shared=True)
        try:
            for attempt in range(_ATTEMPTS):  # a WAL writer may commit between pin and check
                if attempt:
                    src.execute("ROLLBACK")
                    time.sleep(0.01 * attempt)
                src.execute("BEGIN")
                src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the snapshot
                length = _file_holds_snapshot(src, source, kept)
                if length is not None:
                    yield src, kept, length
                    return
            yield None
        finally:
            src.close()  # ends the read transaction
    finally:
        os.close(kept)


def _copy_to(kept: int, dest: Path, length: int, read: Callable[[int], None] | None) -> str:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(dest, flags, 0o600)
    try:
        digest = hashed_copy.copy_hashed(kept, out, length, read)
        os.fsync(out)
    finally:
        os.close(out)
    return digest


def _file_holds_snapshot(src: sqlite3.Connection, source: Path, kept: int) -> int | None:
    """The snapshot's size in bytes when the file's first that many bytes are the snapshot and
    stay so while ``src`` holds its read transaction; else None."""
    page_size = int(src.execute("PRAGMA page_size").fetchone()[0])
    length = page_size * int(src.execute("PRAGMA page_count").fetchone()[0])
    wal = str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
    if wal and not _backfilled(source):
        return None
    if os.fstat(kept).st_size != length or os.pread(kept, len(MAGIC), 0) != MAGIC:
        return None  # trailing bytes, or a file SQLite would not open: the backup API decides
    return length


def _backfilled(source: Path) -> bool:
    """A PASSIVE checkpoint (never waits, never blocks a writer) from a second connection, taken
    while this process's snapshot is held: did it leave no WAL frame outside the file?

    A checkpoint never writes a frame newer than a live reader's mark into the file, and never
    touches the file while a reader reads from it alone. So when every frame the WAL holds has
    been written back (``log == checkpointed``), the snapshot's last frame is that last frame,
    or the snapshot needed none: either way the file is the snapshot, and stays so until the
    snapshot ends. Anything else (a frame committed since, another checkpoint running) leaves
    the copy to the backup API. Closing this connection keeps the snapshot's locks: SQLite holds
    on to a descriptor of a file its process still has locked.
    """
    try:
        other = db.connect(source)
    except (DatabaseError, DatabaseBusy):
        return False
    try:
        busy, log, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error:
        return False
    finally:
        other.close()
    return int(busy) == 0 and int(log) >= 0 and int(log) == int(done)


def _restore_header_fields(dest: Path, raw: bytes, cookie: int) -> None:
    # Within the read transaction a rollback-mode file cannot change, and these counters are the
    # snapshot's; the schema cookie comes from the snapshot itself (it may live in the WAL).
    with open(dest, "r+b") as fh:
        fh.seek(24)
        fh.write(raw[24:28])
        fh.seek(40)
        fh.write(cookie.to_bytes(4, "big"))
        fh.seek(92)
        fh.write(raw[92:100])


def integrity(path: Path, *, full: bool = False) -> str:
    """``"ok"``, or the first problem found (``quick_check``; ``integrity_check`` when full)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_LEN)
    except OSError as err:
        return f"unreadable: {err.strerror}"
    if not head.startswith(MAGIC):
        return "not an SQLite database (bad header)"
    try:
        conn = open_snapshot(path)
    except sqlite3.DatabaseError as err:
        return f"cannot be opened: {err}"
    try:
        return _verdict(conn, "integrity_check" if full else "quick_check")
    finally:
        conn.close()


def _verdict(conn: sqlite3.Connection, pragma: str) -> str:
    try:
        rows = conn.execute(f"PRAGMA {pragma}(5)").fetchall()
    except sqlite3.DatabaseError as err:
        return f"malformed: {err}"
    found = [str(r[0]) for r in rows]
    return "ok" if found == ["ok"] else "; ".join(found)


def sha256_file(path: Path, read: Callable[[int], None] | None = None) -> str:
    """The file's SHA-256; ``read`` is told how many bytes each chunk had."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if read is not None:
                read(len(chunk))
    return digest.hexdigest()


def seal(partial: Path, read: Callable[[int], None] | None = None) -> tuple[str, str]:
    """Integrity check, SHA-256 and fsync, overlapped: each reads the same (cached) file."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = pool.submit(integrity, partial)
        synced = pool.submit(durable.fsync_file, partial)
        digest = sha256_file(partial, read)
        synced.result()
        return checked.result(), digest


def stage(source: Path, db_path: Path) -> Path:
    """Copy ``source`` to ``.<db>.restoring`` beside ``db_path``, fsynced, ready to be renamed
    over it: a fresh file (a link planted under that name is removed, never written through)
    with the database's owner and its mode minus group and other bits (0600 for a new one): it
    holds encrypted data."""
    tmp = db_path.with_name(f".{db_path.name}.restoring")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
            st = db_path.stat() if db_path.exists() else None
            os.fchmod(out.fileno(), private_mode(st.st_mode) if st else 0o600)
            if st is not None and os.geteuid() == 0:
                os.fchown(out.fileno(), st.st_uid, st.st_gid)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def private_mode(mode: int) -> int:
    """``mode`` without group and other bits: encrypted data is for its owner only."""
    return mode & 0o7700


def make_private(path: Path) -> int | None:
    """Take group and other bits off ``path`` (the live database, before a restore links or
    renames it aside); returns the mode it had when that changed it, else None."""
    mode = os.lstat(path).st_mode & 0o7777
    if mode == private_mode(mode):
        return None
    os.chmod(path, private_mode(mode))
    return mode
