"""Copy bytes from one descriptor to another and hash them on the way, in one read.

The calling thread reads a chunk and writes it; a second thread hashes the chunk while the next
one is read and written (``hashlib`` lets go of the GIL on buffers this size, and so do ``read``
and ``write``), so the copy costs about the slower of the two instead of their sum when a core
is free. The digest is of the very bytes handed to ``write``: nothing is read twice.

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


def copy_hashed(src: int, dest: int, length: int, read: Callable[[int], None] | None = None) -> str:
    """Copy ``length`` bytes from offset 0 of ``src`` to ``dest`` (written from its current
    offset); the SHA-256 (hex) of those bytes. ``read`` is told each chunk's size, from the
    calling thread. Raises ``OSError`` (``ENOSPC`` on a full disk) and ``EOFError`` when the
    source ends early."""
    digest = hashlib.sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(bytearray(CHUNK))
    failed: list[BaseException] = []

    def hash_chunks() -> None:
        try:
            while (item := full.get()) is not None:
                buf, n = item
                digest.update(memoryview(buf)[:n])
                free.put(buf)
        except BaseException as err:  # handed to the caller below
            failed.append(err)
            free.put(bytearray(CHUNK))  # never leave the reader waiting for a buffer

    hasher = threading.Thread(target=hash_chunks, name="backup-hash", daemon=True)
    hasher.start()
    offset = 0
    try:
        while offset < length and not failed:
            buf = free.get()
            n = os.preadv(src, [memoryview(buf)[: min(CHUNK, length - offset)]], offset)
            if n == 0:
                raise EOFError(f"the source ended at byte {offset} of {length}")
            _write_all(dest, memoryview(buf)[:n])
            full.put((buf, n))
            offset += n
            if read is not None:
                read(n)
    finally:
        full.put(None)
        hasher.join()
    if failed:
        raise failed[0]
    return digest.hexdigest()


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
