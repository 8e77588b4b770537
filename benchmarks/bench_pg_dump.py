"""How long does the tool's PostgreSQL backup take next to the server's own ``pg_dump -Fc``?

Fills a scratch database (``bench_dump``, dropped at the end) on the server named by
``--conninfo`` (default: ``$COOLIFY_MIGRATE_TEST_PG``, the private cluster of
``scripts/pg-rig.sh start``) with about ``--size-mb`` of rows shaped like Redash's (an id and a
text of base64-like ciphertext), then measures in the same run, alternating:

- the floor: ``pg_dump -Fc`` of that database into a file, as a user would type it (the same
  client the store uses), and the same followed by an fsync;
- ``PostgresStore.backup`` (the dump, its SHA-256, fsync, and ``pg_restore --list`` to show
  the dump reads back), each round as a ratio to that round's floor; the median is held
  against the goal (at most 1.3x) and the verdict printed from the measured numbers.

Prints the figures (``--json`` for one JSON object); asserts nothing.
Usage: ``python benchmarks/bench_pg_dump.py [--size-mb N] [--rounds N] [--json]``.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.stores.pg_server import Server, driver
from coolify_migrate.stores.postgres import PostgresStore

NAME = "bench_dump"
GOAL = 1.3


def fill(admin: Server, size_mb: int) -> Server:
    psycopg = driver()
    with psycopg.connect(**admin.kwargs(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME}")
        conn.execute(f"CREATE DATABASE {NAME}")
    target = admin.with_database(NAME)
    rows = size_mb * (1 << 20) // 280
    with psycopg.connect(**target.kwargs(), autocommit=True) as conn:
        conn.execute("CREATE TABLE secrets (id bigint PRIMARY KEY, value text NOT NULL)")
        conn.execute(
            "INSERT INTO secrets SELECT g, encode(decode(md5(g::text) || md5((g * 7)::text)"
            " || md5((g * 13)::text) || md5((g * 31)::text) || md5((g * 61)::text), 'hex'),"
            " 'base64') || repeat(md5((g * 3)::text), 4) FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE secrets")
    return target


def plain_dump(store: PostgresStore, dest: Path) -> tuple[float, float]:
    """Seconds of ``pg_dump -Fc`` into ``dest`` (what a user types), and of that plus an fsync."""
    started = time.perf_counter()
    with open(dest, "wb") as fh:
        proc = store.runner.run("pg_dump", ["--format=custom"], store.server.tool_env(), stdout=fh)
        dumped = time.perf_counter() - started
        os.fsync(fh.fileno())
    if proc.returncode != 0:
        raise SystemExit(f"pg_dump failed: {proc.stderr.decode(errors='replace')[:300]}")
    return dumped, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conninfo", default=os.environ.get("COOLIFY_MIGRATE_TEST_PG"))
    parser.add_argument("--size-mb", type=int, default=300, help="table data to fill in")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.conninfo:
        raise SystemExit('no server: eval "$(bash scripts/pg-rig.sh start)" or --conninfo')
    admin = Server.parse(args.conninfo)
    started = time.perf_counter()
    target = fill(admin, args.size_mb)
    print(f"filled {NAME} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    store = PostgresStore(target)
    rounds: list[dict[str, float]] = []
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-dump-") as tmp:
            plain, ours = Path(tmp) / "plain.dump", Path(tmp) / "ours.dump"
            plain_dump(store, plain)  # warm the server's cache
            for _ in range(args.rounds):
                plain.unlink(missing_ok=True)
                dump_s, dump_fsync_s = plain_dump(store, plain)
                ours.unlink(missing_ok=True)
                t = time.perf_counter()
                made = store.backup(ours)
                ours_s = time.perf_counter() - t
                if made.integrity != "ok":
                    raise SystemExit(f"the store's dump does not read back: {made.integrity}")
                rounds.append(
                    {
                        "pg_dump": dump_s,
                        "pg_dump_fsync": dump_fsync_s,
                        "store_backup": ours_s,
                        "ratio": ours_s / dump_s,
                        "pg_dump_mb": plain.stat().st_size / (1 << 20),
                        "ours_mb": made.size / (1 << 20),
                    }
                )
                print(
                    f"round {len(rounds)}: pg_dump {dump_s:.2f} s (+fsync {dump_fsync_s:.2f} s),"
                    f" store backup {ours_s:.2f} s = {ours_s / dump_s:.2f}x",
                    file=sys.stderr,
                )
    finally:
        psycopg = driver()
        with psycopg.connect(**admin.kwargs(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {NAME}")
    load_after = os.getloadavg()
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    report = {
        "table_mb": args.size_mb,
        "rounds": len(rounds),
        "median": {k: round(v, 3) for k, v in med.items()},
        "ratio_to_pg_dump": round(med["ratio"], 2),
        "ratio_to_pg_dump_fsync": round(med["store_backup"] / med["pg_dump_fsync"], 2),
        "goal": GOAL,
        "goal_met": med["ratio"] <= GOAL,
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "cores": os.cpu_count(),
        "all_rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"database: about {args.size_mb} MiB of rows; median of {len(rounds)} rounds; load "
        f"average {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} cores\n"
        f"  pg_dump -Fc into a file (the floor): {med['pg_dump']:.3f} s "
        f"({med['pg_dump_mb']:.0f} MiB dump); + fsync {med['pg_dump_fsync']:.3f} s\n"
        f"  PostgresStore.backup: {med['store_backup']:.3f} s ({med['ours_mb']:.0f} MiB) = "
        f"{report['ratio_to_pg_dump']}x the floor, median of the rounds (goal <= {GOAL}x: "
        f"{'MET' if report['goal_met'] else 'NOT MET'}); "
        f"{report['ratio_to_pg_dump_fsync']}x pg_dump + fsync"
    )


if __name__ == "__main__":
    main()
