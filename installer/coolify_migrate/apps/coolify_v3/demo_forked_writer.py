"""The demo's rows written by a second process, so that making them and writing them (sealing
their ciphertexts, SQLite's inserts and index builds) run on two cores.

The writer is forked once the file holds its schema and no connection is open (none crosses the
fork): it inherits the tables' specs, the codec and the key (never pickled nor sent) and opens the
file itself. Batches (plain data: ``demo_writer.Batch``) reach it through a socket pair, one
``marshal`` message each (several times faster than pickle for them). A thread of the writer
takes each message in with one call that holds no GIL while it waits (``MSG_WAITALL``; a loop of
small reads would wait for the GIL at each, and the sender with it) and holds up to ``AHEAD``,
so neither side waits for the other while the two take turns on a busy machine; a send here
waits only when that many are waiting there. After the last batch the writer builds the indexes and
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
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coolify_migrate.apps.coolify_v3.demo_writer import Batch, RowWriter, TableSpec, open_build
from coolify_migrate.core import faults, procs
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

_ROWS, _LAST = b"r", b"l"  # from here: a batch, the last batch (then its marshal bytes)
# The writer's page cache: the command beside it holds about 30 MB (PSS) the in-process build
# does not, so its cache is smaller than the in-process one's 64 MiB
WRITER_CACHE_KIB = 49152
AHEAD = 2  # batches received and waiting in the writer (about 4 MB each at 64 units)
_TICK, _DONE, _FAILED = b"t", b"d", b"f"  # from the writer: a table written, committed, failed


class _Channel:
    """Messages over a stream socket: an 8-byte length, then the bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, *parts: bytes) -> None:
        self.sock.sendall(sum(map(len, parts)).to_bytes(8, "big"))
        for part in parts:
            self.sock.sendall(part)

    def recv(self) -> bytearray:
        """The next message; EOFError once the other end is closed."""
        return self._exactly(int.from_bytes(self._exactly(8), "big"))

    def ready(self, timeout: float) -> bool:
        return bool(select.select([self.sock], [], [], timeout)[0])

    def _exactly(self, size: int) -> bytearray:
        got, buf = 0, bytearray(size)
        view = memoryview(buf)
        while got < size:
            n = self.sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
            if not n:
                raise EOFError
            got += n
        return buf

    def close(self) -> None:
        self.sock.close()


# A writer costs about a fifth more CPU time in all (the rows are marshalled, sent and read
# back, the ciphertexts put in their places): it pays only with a core of its own. Measured at
# 1M values on 2 cores (docs/performance.md, "Demo fixtures"): forked 17.6 s against 20.7 s in
# process with the second core free; forked 29.0 s against 23.7 s at load 2.7, slower at 3.8-4.9
# too. So: a writer while the rest of the machine uses less than the cores less one and a half.
#
# What the rest of the machine uses is measured now, over a fifth of a second in which this
# process sleeps (/proc/stat's CPU times: all but idle and I/O wait), not read from the 1-minute
# load average as the rule first did: that average still holds the work of the last minute, a
# benchmark's own floors for one, and kept the writer off on an idle machine (demo 2.43-2.53x its
# floor in process, 1.97x with the writer; docs/performance.md, "Fourth round"). A count of the
# tasks runnable at a few instants (``procs_running``) was tried first: on the idle machine it
# read 0.2-2.0 from one sample to the next (kernel threads writing back). Where there is no
# /proc/stat the load average decides.
_SPARE = 0.5
_WINDOW_S = 0.2


def can_fork() -> bool:
    """Whether a writer process can be forked here and has a core to run on: fork is there, and
    what the rest of the machine uses now leaves a core free beside this process."""
    import multiprocessing  # here: only a big demo pays for the import

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return False
    busy = busy_cores()
    if busy is not None:
        return busy < (cores or 1) - 1 - _SPARE
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known here: a second core is taken to be free
        return True
    return load < (cores or 1) - _SPARE


def busy_cores(window: float = _WINDOW_S) -> float | None:
    """How many of the machine's cores' worth of CPU time the rest of the machine used over
    ``window`` seconds while this process slept (everything but idle and I/O wait, stolen time
    included: a hypervisor's other guests take it too); None where the kernel does not say."""
    first = _cpu_times()
    time.sleep(window)
    second = _cpu_times()
    if first is None or second is None:
        return None
    total = sum(second) - sum(first)
    if total <= 0:
        return None
    idle = (second[3] + second[4]) - (first[3] + first[4])  # idle, iowait
    return (total - idle) / total * (os.cpu_count() or 1)


def _cpu_times() -> list[int] | None:
    """The machine's CPU times (user nice system idle iowait irq softirq steal), in ticks."""
    try:
        with open("/proc/stat", "rb") as fh:
            head = fh.readline().split()
    except OSError:
        return None
    if len(head) < 9 or head[0] != b"cpu":
        return None
    try:
        return [int(x) for x in head[1:9]]
    except ValueError:
        return None


class ForkedWriter:
    """``write`` and ``finish`` as ``RowWriter``'s, done by a forked process (see the module)."""

    def __init__(
        self, path: Path, specs: dict[str, TableSpec], codec: AesCtrJsonCodec, key: Secret
    ) -> None:
        import multiprocessing

        fork = multiprocessing.get_context("fork")
        ours, theirs = socket.socketpair()
        self.chan = _Channel(ours)
        args = (_Channel(theirs), path, specs, codec, key, os.getpid())
        self.proc = fork.Process(target=_serve, args=args, name="demo-writer", daemon=True)
        try:
            self.proc.start()
        finally:
            theirs.close()  # the writer's end lives in the writer alone: its death closes it

    def write(self, batch: Batch) -> None:
        self._send(_ROWS, batch)

    def finish(self, batch: Batch, tick: Callable[[], None]) -> None:
        """The last batch, then the indexes and the commit; returns once the writer has closed
        the file and exited."""
        self._send(_LAST, batch)
        while True:
            try:
                said = self.chan.recv()
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
        data = marshal.dumps(batch)
        try:
            self.chan.send(kind, data)
        except OSError:  # the writer is gone: what it said before it went, or how it died
            raise self._failure() from None

    def _failure(self) -> BaseException:
        with contextlib.suppress(EOFError, OSError):
            if self.chan.ready(1):
                said = self.chan.recv()
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

    def _failed(self, said: bytearray) -> BaseException:
        """The writer's exception, as it was raised there, once the writer has exited."""
        self.proc.join(timeout=5)
        return _error(said)


def _error(said: bytearray) -> BaseException:
    try:
        err = pickle.loads(said[len(_FAILED) :])
    except Exception:  # an exception that does not unpickle (its own __init__ arguments)
        err = None
    if not isinstance(err, BaseException):
        return ChangeFailed("the demo's writer process failed: no instance was written")
    return err


def _serve(
    chan: _Channel,
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
        conn = open_build(path, WRITER_CACHE_KIB)
        try:
            conn.execute("BEGIN")
            # The indexes kept up row by row: their work moves from a tail after the last batch,
            # when the other process has nothing left to do (1.4-1.7 s at 1M values), into the
            # time both processes run; the sort of a late CREATE INDEX no longer sets the peak
            # memory either (docs/performance.md, "Fifth round")
            writer = RowWriter(conn, specs, codec, key, indexes_first=True)
            received: queue.Queue[bytearray | BaseException] = queue.Queue(AHEAD)
            threading.Thread(target=_receive, args=(chan, received), daemon=True).start()
            while True:
                data = received.get()
                if isinstance(data, BaseException):
                    raise data
                batch = marshal.loads(memoryview(data)[1:])
                faults.checkpoint("demo:writer-batch")
                if data[:1] == _LAST:
                    writer.finish(batch, lambda: chan.send(_TICK))
                    break
                writer.write(batch)
        finally:
            conn.close()
        chan.send(_DONE)
        code = 0
    except BaseException as err:  # to the parent, which raises it; EOFError: the parent is gone
        with contextlib.suppress(BaseException):
            chan.send(_FAILED, _pickled(err))
    finally:
        os._exit(code)


def _receive(chan: _Channel, received: queue.Queue[bytearray | BaseException]) -> None:
    """The writer's thread that takes the batches in (ends with the last, or passes on the error
    that ended it: EOFError when this process's parent is gone)."""
    try:
        while True:
            data = chan.recv()
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
