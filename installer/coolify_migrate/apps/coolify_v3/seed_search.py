"""The search that proves a key date-seeded: every millisecond around the install-time evidence.

Chunks are planned in rings outward from each piece of evidence (nearest first: the key was made
seconds before the ``.env`` was written), overlapping windows are searched once, and the chunks run
on every core; the first worker to find the seed stops the others.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from typing import Any

from coolify_migrate.apps.coolify_v3 import legacy_key
from coolify_migrate.core import procs
from coolify_migrate.core.output import Output, Progress

FIRST_CHUNK = 1 << 16  # the nearest rings are small, so a key made seconds away is found at once
MAX_CHUNK = 1 << 21  # about one second of one core; the unit of work handed to a worker
_STOP_EVERY = 1 << 16  # a worker checks the stop flag this often (tens of milliseconds)


@dataclass(frozen=True)
class SearchResult:
    seed_ms: int | None
    searched: int


class _Covered:
    """Disjoint sorted [lo, hi) spans already scheduled: overlapping windows are searched once."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def take(self, lo: int, hi: int) -> list[tuple[int, int]]:
        free: list[tuple[int, int]] = []
        cur = lo
        for s, e in self.spans:
            if s >= hi:
                break
            if e > cur:
                if s > cur:
                    free.append((cur, s))
                cur = e
        if cur < hi:
            free.append((cur, hi))
        merged: list[tuple[int, int]] = []
        for s, e in sorted(self.spans + free):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.spans = merged
        return free


def plan_chunks(centres: list[int], window_ms: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges of candidate ms, in rings outward from every centre, nearest first."""
    covered = _Covered()
    # per centre: [next after, next before, lowest, highest + 1]
    state = [[c, c, max(0, c - window_ms), c + window_ms + 1] for c in dict.fromkeys(centres)]
    chunks: list[tuple[int, int]] = []
    size = FIRST_CHUNK
    while any(st[0] < st[3] or st[1] > st[2] for st in state):
        for st in state:
            if st[0] < st[3]:
                end = min(st[0] + size, st[3])
                chunks.extend(covered.take(st[0], end))
                st[0] = end
            if st[1] > st[2]:
                start = max(st[1] - size, st[2])
                chunks.extend(covered.take(start, st[1]))
                st[1] = start
        size = min(size * 2, MAX_CHUNK)
    return [c for c in chunks if c[1] > c[0]]


_stop_flag: Any = None  # set in each worker process by _init_worker


def _init_worker(stop: Any, parent: int) -> None:
    global _stop_flag
    _stop_flag = stop
    procs.die_with_parent(parent)


def _scan_chunk(task: tuple[bytes, int, int]) -> tuple[int | None, int]:
    prefix, lo, hi = task
    for start in range(lo, hi, _STOP_EVERY):
        if _stop_flag is not None and _stop_flag.is_set():
            return None, start - lo
        found = legacy_key.scan(prefix, start, min(start + _STOP_EVERY, hi))
        if found is not None:
            return found, found - lo + 1
    return None, hi - lo


def search(
    prefix: bytes, centres: list[int], window_ms: int, *, workers: int, out: Output
) -> SearchResult:
    """Find the ms whose date-seeded key has this digest prefix, or prove none in the windows."""
    chunks = plan_chunks(centres, window_ms)
    total = sum(hi - lo for lo, hi in chunks)
    bar = out.progress("searching date-seeded keys", total, "seeds")
    try:
        if workers <= 1 or total <= MAX_CHUNK:
            searched = 0
            for lo, hi in chunks:
                found, n = _scan_chunk((prefix, lo, hi))
                searched += n
                bar.advance(n)
                if found is not None:
                    return SearchResult(found, searched)
            return SearchResult(None, searched)
        return _search_pool(prefix, chunks, workers, bar)
    finally:
        bar.close()


def _search_pool(
    prefix: bytes, chunks: list[tuple[int, int]], workers: int, bar: Progress
) -> SearchResult:
    methods = multiprocessing.get_all_start_methods()
    mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    stop = mp.Event()
    searched = 0
    # Leaving the with-block terminates the pool: once one worker finds the key, all stop.
    with mp.Pool(workers, initializer=_init_worker, initargs=(stop, os.getpid())) as pool:
        for found, n in pool.imap_unordered(_scan_chunk, [(prefix, lo, hi) for lo, hi in chunks]):
            searched += n
            bar.advance(n)
            if found is not None:
                stop.set()
                return SearchResult(found, searched)
    return SearchResult(None, searched)
