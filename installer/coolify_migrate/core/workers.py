"""CPU work over batches, in this process or on every core, results in order.

The job (codecs, keys) reaches forked worker processes as inherited module state, set just
before they fork: a key is never pickled nor sent through a pipe. Workers receive batches and
return results; the caller alone touches the database. ``concurrent.futures`` rather than
``multiprocessing.Pool``: when a worker dies (a signal to the process group, the OOM killer)
the executor fails the pending tasks with ``BrokenProcessPool`` and cleans up, while ``Pool``
loses the task for good and its ``terminate`` can block forever on a queue lock the dead worker
held. Workers ignore Ctrl-C (``procs.die_with_parent``); on a signal or a failure in the caller
they are killed, never waited on.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Generic, TypeVar

from coolify_migrate.core import errors, procs
from coolify_migrate.core.errors import ChangeFailed, MigrateError

J = TypeVar("J")  # the job every batch needs
T = TypeVar("T")  # a batch
R = TypeVar("R")  # a batch's result

# (the function, its job): set before the pool forks; inherited, never sent
_state: tuple[Callable[[Any, Any], Any], Any] | None = None
_Failure = tuple[str, str, str | None]  # error class name, message, hint


# How much lower the workers' scheduling priority is than the caller's: the caller alone reads
# and writes the database, the serial part of the work, so it runs whenever it can and the
# workers take the CPU time left (on 2 cores, a caller and 2 workers would otherwise share them
# three ways, and the caller's part would take half as long again).
NICER = 5
# Batches in flight per worker: with 2 the caller waited 1.1-1.3 s for results over a 1M-value
# roll, with 4 0.6-0.9 s (docs/performance.md); each costs a batch's memory here and there.
WINDOW = 3
DEATH_POLL = 0.5  # seconds between looks at the workers while a result is awaited


def _init_worker(parent: int) -> None:
    procs.die_with_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(NICER)
    # What the worker inherited is never freed here: out of the collector's sight, it is not
    # walked by each full collection (nor its pages copied by the walk's writes).
    gc.freeze()


def _ready() -> None:
    """The first task: the executor has forked its workers once it ran."""


def _call(item: Any) -> tuple[Any, _Failure | None]:
    assert _state is not None
    fn, job = _state
    try:
        return fn(job, item), None
    except MigrateError as err:  # sent back as fields: the hint survives, no traceback travels
        return None, (type(err).__name__, err.message, err.hint)


class Workers(Generic[J, T, R]):
    """``fn(job, batch)`` over batches, here (``workers`` 1) or on forked processes with a
    bounded window of work in flight (``WINDOW`` batches per worker). ``died`` is the error raised when a
    worker dies; it says what was, or was not, changed."""

    def __init__(
        self, fn: Callable[[J, T], R], job: J, workers: int, *, died: Callable[[], MigrateError]
    ) -> None:
        self.fn, self.job, self.died = fn, job, died
        fork = "fork" in multiprocessing.get_all_start_methods()
        self.workers = workers if fork and workers > 1 else 1
        self.pool: ProcessPoolExecutor | None = None
        self.procs: list[Any] = []  # the worker processes, once forked

    def __enter__(self) -> Workers[J, T, R]:
        global _state
        if self.workers > 1:
            if _state is not None:  # the job is module state: one pool at a time
                raise RuntimeError("a worker pool is already running in this process")
            _state = (self.fn, self.job)
            try:
                self.pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_init_worker,
                    initargs=(os.getpid(),),
                )
                self._wait(self.pool.submit(_ready))  # every worker forks now (before a BEGIN)
                self.procs = list((getattr(self.pool, "_processes", None) or {}).values())
            except BaseException as err:  # no ``__exit__`` follows a failed ``__enter__``
                self.__exit__(type(err), err, err.__traceback__)
                raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _state
        _state = None
        if self.pool is None:
            return
        if kind is None:  # the tasks in flight are short: let them end, drop the rest
            self.pool.shutdown(wait=True, cancel_futures=True)
            return
        # A signal or a dead worker: never wait on a pool that may be wedged (a worker killed
        # while it held a queue's lock leaves the others blocked for good). The workers are
        # ended here; what they fed is undone by the caller.
        alive = list((getattr(self.pool, "_processes", None) or {}).values())
        # (taken before shutdown(), which drops the executor's references to both)
        writer = getattr(getattr(self.pool, "_result_queue", None), "_writer", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        for worker in alive:
            if worker.is_alive():
                worker.kill()
        for worker in alive:
            worker.join(timeout=5)
        # A worker killed while it wrote a result leaves half a message in the result pipe, and
        # the executor's thread waits in recv() for the rest; this process holds the pipe's
        # other write end, so no end of file ever comes, and the interpreter's exit joins that
        # thread for good. Closing that end gives it the end of file: it sees a broken pool.
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()

    def map(self, batches: Iterator[T]) -> Iterator[R]:
        if self.pool is None:
            for batch in batches:
                yield self.fn(self.job, batch)
            return
        pending: deque[Future[Any]] = deque()
        for batch in batches:
            try:  # a pool whose worker died refuses new work too
                pending.append(self.pool.submit(_call, batch))
            except BrokenProcessPool as err:
                raise self.died() from err
            if len(pending) >= WINDOW * self.workers:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def _result(self, task: Future[Any]) -> R:
        done, failure = self._wait(task)
        if failure is not None:
            kind, message, hint = failure
            found = getattr(errors, kind, None)
            cls = found if isinstance(found, type) and issubclass(found, MigrateError) else None
            raise (cls or ChangeFailed)(message, hint=hint)
        result: R = done
        return result

    def _wait(self, task: Future[Any]) -> Any:
        """The task's result; ``died()`` once a worker is gone. The executor notices a dead worker
        by itself, except one killed while it wrote a result: the executor's thread then waits
        for the rest of that message for good (see ``__exit__``), and so would this wait."""
        while True:
            try:
                return task.result(timeout=DEATH_POLL)
            except BrokenProcessPool as err:
                raise self.died() from err
            except TimeoutError:
                if any(worker.exitcode is not None for worker in self.procs):
                    raise self.died() from None
