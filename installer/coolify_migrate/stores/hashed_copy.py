"""Copy bytes from one descriptor to another and hash them on the way, in one read.

The calling thread reads a chunk and writes it; a second thread hashes the chunk while the next
one is read and written (``hashlib`` lets go of the GIL on buffers this size, and so do ``read``
and ``write``), so the copy costs about the slower of the two instead of their sum when a core
is free. The digest is of the very bytes handed to ``write``: nothing is read twice.

A third thread writes the copy back to disk as it grows (``fdatasync`` after every 64 MiB), so
the caller's final ``fsync`` finds little left to write: measured on the 2-core machine under
load, that took about a second off a 1.1 GiB copy (2.9 s -> 1.9-2.2 s, median of 3).

Chunks are 256 KiB from a small ring of reused buffers: measured on the 2-core machine, a
1 MiB buffer made the read/write loop twice as slow (it no longer fits the core's cache) and
fresh ``bytes`` per chunk cost page faults (docs/performance.md, "Backups").
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable

CHUNK = 256 << 10
RING = 8
FLUSH_EVERY = 64 << 20


def copy_hashed(src: int, dest: int, length: int, read: Callable[[int], None] | None = None) -> str:
    """Copy ``length`` bytes from offset 0 of ``src`` to ``dest`` (written from its current
    offset); the SHA-256 (hex) of those bytes. ``read`` is told each chunk's size, from the
    calling thread. The caller still fsyncs ``dest``. Raises ``OSError`` (``ENOSPC`` on a full
    disk) and ``EOFError`` when the source ends early."""
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


def hash_range(src: int, length: int) -> str:
    """The SHA-256 (hex) of the first ``length`` bytes of ``src``, read as ``copy_hashed`` reads
    them; ``EOFError`` when the source ends early."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    offset = 0
    while offset < length:
        n = os.preadv(src, [memoryview(buf)[: min(CHUNK, length - offset)]], offset)
        if n == 0:
            raise EOFError(f"the source ended at byte {offset} of {length}")
        digest.update(memoryview(buf)[:n])
        offset += n
    return digest.hexdigest()


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
