"""The demo's rows written by a second process, so that making them and writing them (sealing
their ciphertexts, SQLite's inserts and index builds) run on two cores.

The writer is forked once the file holds its schema and no connection is open (none crosses the
fork): it inherits the tables' specs, the codec and the key (never pickled nor sent) and opens the
file itself. Batches (plain data: ``demo_writer.Batch``) reach it through a socket pair, one
``marshal`` message each (several times faster than pickle for them). A thread of the writer
takes them in as they come (reading a socket leaves the GIL free) and holds up to ``AHEAD``, so
neither side waits for the other while the two take turns on a busy machine; a send here waits
only when that many are waiting there. After the last batch the writer builds the indexes and
commits, sending a tick per table of the last batch, then "done".

The writer prints nothing. An error in it is sent back pickled and raised again here, the same
exception the in-process writer would have raised. If it dies (a signal, the OOM killer) its end
of the socket closes with it, so the next send or read here fails at once and raises
``ChangeFailed``: nothing waits on a dead writer. It ignores Ctrl-C and dies with this process
(``procs.die_with_parent``); on any failure here it is killed before the file is removed.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from coolify_migrate.apps.coolify_v3.demo_writer import Batch, RowWriter, TableSpec, open_build
from coolify_migrate.core import faults, procs
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

_ROWS, _LAST = b"r", b"l"  # from here: a batch, the last batch (then its marshal bytes)
AHEAD = 4  # batches received and waiting in the writer
_TICK, _DONE, _FAILED = b"t", b"d", b"f"  # from the writer: a table written, committed, failed


def can_fork() -> bool:
    import multiprocessing  # here: only a big demo pays for the import

    return "fork" in multiprocessing.get_all_start_methods()


class ForkedWriter:
    """``write`` and ``finish`` as ``RowWriter``'s, done by a forked process (see the module)."""

    def __init__(
        self, path: Path, specs: dict[str, TableSpec], codec: AesCtrJsonCodec, key: Secret
    ) -> None:
        import multiprocessing

        fork = multiprocessing.get_context("fork")
        self.chan, theirs = fork.Pipe()  # duplex: a socket pair
        args = (theirs, path, specs, codec, key, os.getpid())
        self.proc = fork.Process(target=_serve, args=args, name="demo-writer", daemon=True)
        self.proc.start()
        theirs.close()  # the writer's end lives in the writer alone: its death closes it

    def write(self, batch: Batch) -> None:
        self._send(_ROWS, batch)

    def finish(self, batch: Batch, tick: Callable[[], None]) -> None:
        """The last batch, then the indexes and the commit; returns once the writer has closed
        the file and exited."""
        self._send(_LAST, batch)
        while True:
            try:
                said = self.chan.recv_bytes()
            except (EOFError, OSError):
                raise self._failure() from None
            if said == _TICK:
                tick()
            elif said == _DONE:
                break
            else:
                raise self._failed(said)
        self.proc.join()
        self.chan.close()

    def abort(self) -> None:
        """Kill the writer, if it still runs, and reap it (a failure or a signal here)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.chan.close()

    def _send(self, kind: bytes, batch: Batch) -> None:
        data = kind + marshal.dumps(batch)
        try:
            self.chan.send_bytes(data)
        except OSError:  # the writer is gone: what it said before it went, or how it died
            raise self._failure() from None

    def _failure(self) -> BaseException:
        with contextlib.suppress(EOFError, OSError):
            if self.chan.poll(1):
                said = self.chan.recv_bytes()
                if said.startswith(_FAILED):
                    return self._failed(said)
        self.proc.join(timeout=5)
        code = self.proc.exitcode
        how = (
            f"was killed by {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        return ChangeFailed(
            f"the demo's writer process {how}: no instance was written",
            hint="run the command again; if it keeps failing, check the memory and disk space",
        )

    def _failed(self, said: bytes) -> BaseException:
        """The writer's exception, as it was raised there, once the writer has exited."""
        self.proc.join(timeout=5)
        return _error(said)


def _error(said: bytes) -> BaseException:
    try:
        err = pickle.loads(said[len(_FAILED) :])
    except Exception:  # an exception that does not unpickle (its own __init__ arguments)
        err = None
    if not isinstance(err, BaseException):
        return ChangeFailed("the demo's writer process failed: no instance was written")
    return err


def _serve(
    chan: Connection,
    path: Path,
    specs: dict[str, TableSpec],
    codec: AesCtrJsonCodec,
    key: Secret,
    parent: int,
) -> None:
    """The writer process: batches in, rows out, until the last; never returns (``os._exit``:
    none of the parent's exit handlers runs here, no traceback is printed)."""
    code = 1
    try:
        procs.die_with_parent(parent)
        conn = open_build(path)
        try:
            conn.execute("BEGIN")
            writer = RowWriter(conn, specs, codec, key)
            received: queue.Queue[bytes | BaseException] = queue.Queue(AHEAD)
            threading.Thread(target=_receive, args=(chan, received), daemon=True).start()
            while True:
                data = received.get()
                if isinstance(data, BaseException):
                    raise data
                batch = marshal.loads(memoryview(data)[1:])
                faults.checkpoint("demo:writer-batch")
                if data[:1] == _LAST:
                    writer.finish(batch, lambda: chan.send_bytes(_TICK))
                    break
                writer.write(batch)
        finally:
            conn.close()
        chan.send_bytes(_DONE)
        code = 0
    except BaseException as err:  # to the parent, which raises it; EOFError: the parent is gone
        with contextlib.suppress(BaseException):
            chan.send_bytes(_FAILED + _pickled(err))
    finally:
        os._exit(code)


def _receive(chan: Connection, received: queue.Queue[bytes | BaseException]) -> None:
    """The writer's thread that takes the batches in (ends with the last, or passes on the error
    that ended it: EOFError when this process's parent is gone)."""
    try:
        while True:
            data = chan.recv_bytes()
            received.put(data)
            if data[:1] == _LAST:
                return
    except BaseException as err:
        received.put(err)


def _pickled(err: BaseException) -> bytes:
    try:
        return pickle.dumps(err, pickle.HIGHEST_PROTOCOL)
    except Exception:  # an attribute that does not pickle: its type and message only
        said: Any = RuntimeError(f"{type(err).__name__}: {err}")
        return pickle.dumps(said, pickle.HIGHEST_PROTOCOL)
