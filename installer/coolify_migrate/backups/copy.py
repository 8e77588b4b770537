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

Copies are opened ``immutable``: read-only, no locks, and, unlike a plain read-only connection,
never leaving ``-wal``/``-shm`` files behind beside a backup that carries the WAL flag.

A copy is made under a hidden name claimed with ``O_EXCL`` (``.<db>_<ms>.partial``), sealed
(checked, hashed, fsynced), then published under its final name with a hard link, which never
replaces an existing file: two runs in the same millisecond get two names, never one torn file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coolify_migrate.core import durable
from coolify_migrate.stores import names
from coolify_migrate.stores import sqlite as db
from coolify_migrate.stores.sqlite import open_snapshot as open_snapshot

if TYPE_CHECKING:
    from coolify_migrate.backups import BackupInfo

MAGIC = b"SQLite format 3\x00"
HEADER_LEN = 100
_CHUNK = 4 << 20


def snapshot_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` into the existing empty file ``dest``; raises sqlite3.Error or OSError.

    ``dest`` is written without a journal and without syncs: it is a temporary file that the
    caller fsyncs once and throws away on any failure.
    """
    src = db.connect(source)
    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the snapshot
        cookie = int(src.execute("PRAGMA schema_version").fetchone()[0])
        with open(source, "rb") as fh:
            raw = fh.read(HEADER_LEN)
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
    if raw.startswith(MAGIC) and len(raw) == HEADER_LEN:
        _restore_header_fields(dest, raw, cookie)


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
        pragma = "integrity_check" if full else "quick_check"
        rows = conn.execute(f"PRAGMA {pragma}(5)").fetchall()
    except sqlite3.DatabaseError as err:
        return f"malformed: {err}"
    finally:
        conn.close()
    found = [str(r[0]) for r in rows]
    return "ok" if found == ["ok"] else "; ".join(found)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check(info: BackupInfo, *, full: bool = False) -> dict[str, Any]:
    """Integrity plus, with a manifest, size and SHA-256. Read-only."""
    problems: list[str] = []
    if info.manifest_error:
        problems.append(info.manifest_error)
    checksum = "no manifest"
    if info.has_manifest and info.sha256:
        doc = durable.read_json(info.path.with_name(names.manifest_name(info.name)))
        actual = os.lstat(info.path).st_size
        if actual != doc["size"]:
            checksum = "size differs"
            problems.append(
                f"its size is {actual} bytes, the manifest says {doc['size']}: "
                "truncated or overwritten"
            )
        elif sha256_file(info.path) != info.sha256:
            checksum = "mismatch"
            problems.append(
                "its SHA-256 differs from the manifest's: the file was changed or corrupted"
            )
        else:
            checksum = "match"
    # without a checksum to lean on, a manifest-less copy gets the thorough check
    verdict = integrity(info.path, full=full or not info.has_manifest)
    if verdict != "ok":
        problems.append(f"integrity check failed: {verdict}")
    return {
        "name": info.name,
        "kind": info.kind,
        "ok": not problems,
        "checksum": checksum,
        "integrity": verdict,
        "size": info.size,
        "key_fingerprint": info.key_fingerprint,
        "key_known": info.key_known,
        "problems": problems,
    }


def stage(backup: Path, db_path: Path) -> Path:
    """Copy a backup to a hidden file beside the database, with the database's mode and owner,
    fsynced: ready to be renamed over it atomically (restore and the upgrade's revert)."""
    tmp = db_path.with_name(f".{db_path.name}.restoring")
    shutil.copyfile(backup, tmp)
    st = db_path.stat() if db_path.exists() else None
    os.chmod(tmp, st.st_mode & 0o7777 if st else 0o644)
    if st is not None and os.geteuid() == 0:
        os.chown(tmp, st.st_uid, st.st_gid)
    durable.fsync_file(tmp)
    return tmp


# -- naming and publishing a copy ------------------------------------------------------------


def reserve(now_ms: Callable[[], int], directory: Path, base: str) -> tuple[int, Path]:
    """Claim ``<db>_<ms>``: its hidden partial file is created exclusively (never shared)."""
    ms = now_ms()
    while True:
        taken = any(
            (directory / n).exists()
            for n in (names.backup_name(base, ms), names.manifest_name(names.backup_name(base, ms)))
        )
        if not taken:
            partial = directory / names.partial_name(base, ms)
            try:
                os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                return ms, partial
            except FileExistsError:
                pass
        # the name exists: wait a millisecond (and move on even under a frozen test clock)
        time.sleep(0.001)
        ms = max(ms + 1, now_ms())


def seal(partial: Path) -> tuple[str, str]:
    """Integrity check, SHA-256 and fsync, overlapped: each reads the same (cached) file."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = pool.submit(integrity, partial)
        synced = pool.submit(durable.fsync_file, partial)
        digest = sha256_file(partial)
        synced.result()
        return checked.result(), digest


def publish(partial: Path, directory: Path, base: str, ms: int) -> Path:
    """Give the sealed copy its name without ever replacing an existing file (link, then unlink)."""
    while True:
        final = directory / names.backup_name(base, ms)
        try:
            os.link(partial, final)
            break
        except FileExistsError:
            ms += 1
        except OSError as err:  # a file system without hard links
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) or final.exists():
                raise
            os.rename(partial, final)
            break
    partial.unlink(missing_ok=True)
    durable.fsync_dir(directory)
    return final


def discard(partial: Path, final: Path | None) -> None:
    for path in (
        partial,
        *(partial.with_name(partial.name + s) for s in ("-journal", "-wal", "-shm")),
    ):
        path.unlink(missing_ok=True)
    if final is not None:
        final.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # best effort: this runs while another error propagates
        durable.fsync_dir(partial.parent)
