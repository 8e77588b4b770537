"""Copy bytes from one descriptor to another and hash them on the way, in one read of each.

The kernel copies when it can (``copy_file_range``, tried first): the bytes never pass through
this process, and a thread hashes the source's bytes (``hash_range``) while the kernel copies
them. The caller pins the source (``sqlite_copy``'s snapshot: no writer can change the file
while it is held), so the bytes hashed are the bytes copied. Measured on the 2-core machine,
1.2 GiB copied, hashed and fsynced: 1.15-1.27 s, against 2.36-2.65 s through this process, and
about 1 CPU-second less (docs/performance.md, "Fourth round"). On a file system with shared
extents (btrfs, XFS) the kernel may clone the file instead: such a backup guards against what an
upgrade changes, as every backup here is meant to, but shares its blocks with the database, so
it is no guard against the disk failing (copies kept on another disk are).

Where the kernel cannot copy between the two files (another file system on an old kernel, a
sandbox that forbids the call), the copy goes through this process: the calling thread reads a
chunk and writes it, and a second thread hashes the chunk while the next one is read and
written (``hashlib`` lets go of the GIL on buffers this size, and so do ``read`` and
``write``). That digest is of the very bytes handed to ``write``. Chunks are 256 KiB from a
small ring of reused buffers: a 1 MiB buffer made the loop twice as slow (it no longer fits the
core's cache) and fresh ``bytes`` per chunk cost page faults (docs/performance.md, "Backups").

Either way a third thread writes the copy back to disk as it grows (``fdatasync`` after every
64 MiB), so the caller's final ``fsync`` finds little left to write: measured on the 2-core
machine under load, that took about a second off a 1.1 GiB copy (2.9 s -> 1.9-2.2 s, median
of 3).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from errno import EINVAL, ENOSYS, EOPNOTSUPP, EPERM, EXDEV

CHUNK = 256 << 10
RING = 8
FLUSH_EVERY = 64 << 20
KERNEL_CHUNK = 16 << 20  # bytes per copy_file_range call: progress and Ctrl-C between calls
# what copy_file_range answers when it cannot copy between these two files at all
_NO_KERNEL_COPY = frozenset({EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EPERM})


def copy_hashed(src: int, dest: int, length: int, read: Callable[[int], None] | None = None) -> str:
    """Copy ``length`` bytes from offset 0 of ``src`` to ``dest`` (written from its current
    offset); the SHA-256 (hex) of those bytes. ``read`` is told each chunk's size, from the
    calling thread. The caller still fsyncs ``dest``, and keeps ``src`` from changing while
    it is copied. Raises ``OSError`` (``ENOSPC`` on a full disk) and ``EOFError`` when the
    source ends early."""
    if hasattr(os, "copy_file_range"):
        digest = _kernel_copy(src, dest, length, read)
        if digest is not None:
            return digest
    return _copy_here(src, dest, length, read)


def _kernel_copy(
    src: int, dest: int, length: int, read: Callable[[int], None] | None
) -> str | None:
    """``copy_hashed`` by ``copy_file_range``, the source hashed beside it; None, with nothing
    written, when the kernel cannot copy between these files."""
    stop = threading.Event()
    hashed: list[str] = []
    failed: list[BaseException] = []
    flush = threading.Event()

    def hash_source() -> None:
        try:
            hashed.append(hash_range(src, length, stop))
        except BaseException as err:  # handed to the caller below
            failed.append(err)

    def write_back() -> None:
        try:
            while flush.wait() and not stop.is_set():
                flush.clear()
                os.fdatasync(dest)
        except BaseException as err:
            failed.append(err)

    offset = 0
    try:
        first = os.copy_file_range(src, dest, min(KERNEL_CHUNK, length), 0)
    except OSError as err:
        if err.errno in _NO_KERNEL_COPY:
            return None
        raise
    workers = [
        threading.Thread(target=hash_source, name="backup-hash", daemon=True),
        threading.Thread(target=write_back, name="backup-flush", daemon=True),
    ]
    for worker in workers:
        worker.start()
    try:
        n, unflushed = first, 0
        while True:
            if n == 0 and offset < length:
                raise EOFError(f"the source ended at byte {offset} of {length}")
            offset += n
            unflushed += n
            if read is not None:
                read(n)
            if unflushed >= FLUSH_EVERY:
                unflushed = 0
                flush.set()
            if offset >= length or failed:
                break
            n = os.copy_file_range(src, dest, min(KERNEL_CHUNK, length - offset), offset)
    finally:
        if offset < length:
            stop.set()  # the copy failed: its hash need not finish
        workers[0].join()
        stop.set()
        flush.set()
        workers[1].join()
    if failed:
        raise failed[0]
    return hashed[0]


def _copy_here(src: int, dest: int, length: int, read: Callable[[int], None] | None) -> str:
    """``copy_hashed`` through this process: read, written, and hashed by a second thread."""
    digest = hashlib.sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(bytearray(CHUNK))
    failed: list[BaseException] = []
    flush, done = threading.Event(), threading.Event()

    def hash_chunks() -> None:
        try:
            while (item := full.get()) is not None:
                buf, n = item
                digest.update(memoryview(buf)[:n])
                free.put(buf)
        except BaseException as err:  # handed to the caller below
            failed.append(err)
            free.put(bytearray(CHUNK))  # never leave the reader waiting for a buffer

    def write_back() -> None:
        try:
            while flush.wait() and not done.is_set():
                flush.clear()
                os.fdatasync(dest)
        except BaseException as err:
            failed.append(err)

    workers = [
        threading.Thread(target=hash_chunks, name="backup-hash", daemon=True),
        threading.Thread(target=write_back, name="backup-flush", daemon=True),
    ]
    for worker in workers:
        worker.start()
    offset = unflushed = 0
    try:
        while offset < length and not failed:
            buf = free.get()
            n = os.preadv(src, [memoryview(buf)[: min(CHUNK, length - offset)]], offset)
            if n == 0:
                raise EOFError(f"the source ended at byte {offset} of {length}")
            _write_all(dest, memoryview(buf)[:n])
            full.put((buf, n))
            offset += n
            unflushed += n
            if unflushed >= FLUSH_EVERY:
                unflushed = 0
                flush.set()
            if read is not None:
                read(n)
    finally:
        full.put(None)
        done.set()
        flush.set()
        for worker in workers:
            worker.join()
    if failed:
        raise failed[0]
    return digest.hexdigest()


def hash_range(src: int, length: int, stop: threading.Event | None = None) -> str:
    """The SHA-256 (hex) of the first ``length`` bytes of ``src``, read as ``copy_hashed`` reads
    them; ``EOFError`` when the source ends early. ``stop`` set: it ends early, its answer of no
    use (``copy_hashed``'s copy failed)."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    offset = 0
    while offset < length and not (stop is not None and stop.is_set()):
        n = os.preadv(src, [memoryview(buf)[: min(CHUNK, length - offset)]], offset)
        if n == 0:
            raise EOFError(f"the source ended at byte {offset} of {length}")
        digest.update(memoryview(buf)[:n])
        offset += n
    return digest.hexdigest()


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
