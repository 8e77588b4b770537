"""How fast does `secrets audit` search date-seeded keys, per core, against a bare hashlib loop?

Prints candidates per second for: a bare ``hashlib.sha256`` loop over ``b"<ms>\\n"`` (the floor
any Python search pays), the audit's search in one process, and the audit's search on every
core (total and per core); then the wall time to prove a key whose install time is hours away
from the evidence. Asserts nothing. Usage: ``python benchmarks/bench_audit.py [--millions N]``.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps.coolify_v3 import seed_search
from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.context import Context
from coolify_migrate.core.output import Null
from coolify_migrate.secrets import audit

START = 1_689_674_942_980
ABSENT = bytes(12)  # a digest prefix no candidate has: every candidate is tried


def bare(n: int) -> float:
    sha = hashlib.sha256
    t = time.perf_counter()
    for ms in range(START, START + n):
        sha(b"%d\n" % ms).digest()
    return n / (time.perf_counter() - t)


def searched(n: int, workers: int) -> float:
    half = n // 2  # a window of +/- half around one centre: n + 1 candidates
    t = time.perf_counter()
    result = seed_search.search(ABSENT, [START + half], half, workers=workers, out=Null())
    took = time.perf_counter() - t
    assert result.seed_ms is None
    return result.searched / took


def prove(hours: float) -> tuple[float, int]:
    """A demo whose .env and database say "installed now", but the key is ``hours`` older."""
    with tempfile.TemporaryDirectory() as tmp:
        at = int(time.time() * 1000 - hours * 3_600_000)
        create(Path(tmp) / "inst", version="3.12.32", installed_at_ms=at, rows=1)
        now = time.time()
        os.utime(Path(tmp) / "inst" / ".env", (now, now))
        conn = sqlite3.connect(Path(tmp) / "inst" / "db" / "prod.db")
        with conn:  # the demo dates its first rows to the install: make them say "now" too
            conn.execute('UPDATE "Setting" SET "createdAt" = ?', (int(now * 1000),))
            conn.execute('UPDATE "User" SET "createdAt" = ?', (int(now * 1000),))
        conn.close()
        ctx = Context(profile=CoolifyV3(), data_dir=Path(tmp) / "inst")
        t = time.perf_counter()
        report = audit.audit(ctx, window_s=(hours + 1) * 3600)
        took = time.perf_counter() - t
        assert report.seed_ms == at, report.as_dict()
        return took, report.searched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--millions", type=float, default=8.0, help="candidates per measurement")
    args = parser.parse_args()
    n = int(args.millions * 1_000_000)
    cores = os.cpu_count() or 1

    floor = bare(n)
    one = searched(n, 1)
    every = searched(n * cores, cores)
    print(f"bare hashlib.sha256 loop, 1 process:  {floor / 1e6:6.2f} M candidates/s   1.00x")
    print(
        f"audit search, 1 process:              {one / 1e6:6.2f} M candidates/s   "
        f"{one / floor:.2f}x of bare"
    )
    print(
        f"audit search, {cores} processes:            {every / 1e6:6.2f} M candidates/s   "
        f"{every / cores / 1e6:.2f} M/s per core = {every / cores / floor:.2f}x of bare per core"
    )
    day = 2 * 86_400_000
    print(
        f"a +/-24 h window around one piece of evidence ({day / 1e6:.0f} M candidates): "
        f"{day / every:.0f} s on {cores} cores"
    )
    took, tried = prove(6)
    print(
        f"proving a key made 6 h before the evidence: {took:.1f} s, {tried / 1e6:.1f} M candidates"
    )


if __name__ == "__main__":
    main()
