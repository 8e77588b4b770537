"""Backup files of an SQLite database: naming a copy, publishing it, checking it, staging it
for a restore. The copy itself is ``coolify_migrate.stores.sqlite_copy``'s (SQLite's own backup
API, exact bytes); this module gives it a name that never replaces another file: a copy is made
under a hidden name claimed with ``O_EXCL`` (``.<db>_<ms>.partial``), sealed (checked, hashed,
fsynced), then published under its final name with a hard link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coolify_migrate.core import durable, procs
from coolify_migrate.core.store import Store
from coolify_migrate.stores import names, sqlite_copy, sqlite_swap
from coolify_migrate.stores.sqlite import open_snapshot as open_snapshot
from coolify_migrate.stores.sqlite_copy import (
    integrity as integrity,
)
from coolify_migrate.stores.sqlite_copy import (
    seal as seal,
)
from coolify_migrate.stores.sqlite_copy import (
    sha256_file as sha256_file,
)
from coolify_migrate.stores.sqlite_copy import (
    snapshot_copy as snapshot_copy,
)

if TYPE_CHECKING:
    from coolify_migrate.backups import BackupInfo


def check(info: BackupInfo, *, full: bool = False, store: Store | None = None) -> dict[str, Any]:
    """Integrity (read back by ``store``, SQLite's check by default) plus, with a manifest, size
    and SHA-256. Read-only."""
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
        if checksum != "match" and sqlite_swap.on_loan(info.path):
            problems[-1] += (
                " (a key roll that was stopped had it on loan: the next command that may write, "
                "'coolify-migrate resume' for one, puts it back)"
            )
    # without a checksum to lean on, a manifest-less copy gets the thorough check
    thorough = full or not info.has_manifest
    verdict = (
        store.check_copy(info.path, full=thorough)
        if store is not None
        else integrity(info.path, full=thorough)
    )
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
    """Copy a backup to a hidden file beside the database, with the database's owner and a mode
    only its owner can read, fsynced: ready to be renamed over it atomically."""
    return sqlite_copy.stage(backup, db_path)


# -- naming and publishing a copy ------------------------------------------------------------


_CLAIM = ".claim-"  # a claim's name starts so: no partial's pattern matches it


def reserve(now_ms: Callable[[], int], directory: Path, base: str) -> tuple[int, Path, int]:
    """Claim ``<db>_<ms>``: its hidden partial file is created exclusively (never shared) and
    held with ``flock`` until the caller closes the returned descriptor, so that
    ``remove_partials`` tells a copy being written from one a killed run left."""
    ms = now_ms()
    while True:
        taken = any(
            (directory / n).exists()
            for n in (names.backup_name(base, ms), names.manifest_name(names.backup_name(base, ms)))
        )
        if not taken:
            partial = directory / names.partial_name(base, ms)
            fd = _claim(directory, partial)
            if fd is not None:
                return ms, partial, fd
        # the name exists: wait a millisecond (and move on even under a frozen test clock)
        time.sleep(0.001)
        ms = max(ms + 1, now_ms())


def _claim(directory: Path, partial: Path) -> int | None:
    """The partial file, created and locked in one step as others see it: a private claim file
    is locked first, then hard-linked to the partial's name (which fails if the name is taken).
    A backup running beside this one (``remove_partials``) never sees the partial unlocked."""
    claim = directory / f"{_CLAIM}{os.getpid()}-{threading.get_ident()}-{partial.name}"
    fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            os.link(claim, partial)
        except FileExistsError:
            os.close(fd)
            return None
        except OSError as err:  # a file system without hard links: the name alone, then the lock
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                os.close(fd)
                raise
            os.close(fd)
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                return None
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    finally:
        claim.unlink(missing_ok=True)


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


def remove_partials(directory: Path, base: str) -> list[str]:
    """Remove the hidden partial copies (and their SQLite companions) killed runs left beside the
    database; one still held by its writer (``reserve``) is left alone."""
    removed = []
    for path in directory.glob(f".{glob.escape(base)}_*{names.PARTIAL_SUFFIX}*"):
        if path.is_symlink() or not path.is_file():
            continue
        main = path.with_name(
            path.name[: path.name.index(names.PARTIAL_SUFFIX)] + names.PARTIAL_SUFFIX
        )
        if _being_written(main):
            continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    # an empty claim a run killed inside ``_claim`` left: its process is gone
    for path in directory.glob(f"{_CLAIM}*-.{glob.escape(base)}_*"):
        pid = path.name[len(_CLAIM) :].split("-", 1)[0]
        if pid.isdigit() and not procs.pid_alive(int(pid)) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        durable.fsync_dir(directory)
    return sorted(removed)


def _being_written(partial: Path) -> bool:
    try:
        fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # gone, or a companion whose main file is gone: a leftover
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
