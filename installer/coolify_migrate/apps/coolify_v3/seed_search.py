"""The search that proves a key date-seeded: every millisecond around the install-time evidence.

Chunks are planned in rings outward from each piece of evidence (nearest first: the key was made
seconds before the ``.env`` was written), overlapping windows are searched once, and the chunks run
on every core (``core.workers``), in order: once a chunk holds the seed, no further chunk is
started and the few in flight end within about a second each.
"""

from __future__ import annotations

from dataclasses import dataclass

from coolify_migrate.apps.coolify_v3 import legacy_key
from coolify_migrate.core.errors import Refused
from coolify_migrate.core.output import Output, Progress
from coolify_migrate.core.workers import Workers

FIRST_CHUNK = 1 << 16  # the nearest rings are small, so a key made seconds away is found at once
MAX_CHUNK = 1 << 21  # about one second of one core; the unit of work handed to a worker


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


def _scan_chunk(task: tuple[bytes, int, int]) -> tuple[int | None, int]:
    """(the seed if this chunk holds it, how many candidates were tried)."""
    prefix, lo, hi = task
    found = legacy_key.scan(prefix, lo, hi)
    return found, (hi - lo if found is None else found - lo + 1)


def _scan(job: None, task: tuple[bytes, int, int]) -> tuple[int | None, int]:
    return _scan_chunk(task)


def _worker_died() -> Refused:
    return Refused(
        "a seed search worker process died; nothing was changed",
        hint="run the command again; see the system log if a worker was killed",
    )


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
    searched = 0
    tasks = ((prefix, lo, hi) for lo, hi in chunks)
    with Workers(_scan, None, workers, died=_worker_died) as pool:
        for found, n in pool.map(tasks):
            searched += n
            bar.advance(n)
            if found is not None:  # leaving the pool: no further chunk starts
                return SearchResult(found, searched)
    return SearchResult(None, searched)
