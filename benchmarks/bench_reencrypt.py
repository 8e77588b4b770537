"""How fast is the roll's re-encryption, and does its memory stay flat?

Prints, for a demo instance of at least 1 million encrypted values (cached under ``.bench/``):

- the roll's re-encryption phase (one transaction, batches of 2000, every new value checked)
  as a ratio to a bare in-memory loop that decrypts and encrypts the same values with the same
  codec in the same run (goal: at most 2x);
- Redash's way (each table read whole, one UPDATE per row, a commit per table) as a peer ratio;
- peak RSS of a fresh process doing the re-encryption at 1M and 5M values (goal: flat, < 200 MB).

Asserts nothing. Usage: ``python benchmarks/bench_reencrypt.py [--skip-5m] [--rows N]``.
The 5M instance takes several minutes to create the first time.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps import get_profile
from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import decrypt_text
from coolify_migrate.secrets import (
    keys,
    reencrypt,
    roll,
)

BENCH = REPO / ".bench"
AT_MS = 1689674942980
# demo units (rows=N): about 119 ciphertext values each, in v3's real schema
ROWS_1M = 8_400
ROWS_5M = 42_000


def demo_dir(rows: int) -> Path:
    """A cached demo instance with ``rows`` rows per table, created once, in a child process
    (so this process stays small: a child's ru_maxrss starts from its parent's size)."""
    final = BENCH / f"demo-{rows}"
    if not (final / "ready").exists():
        subprocess.run([sys.executable, __file__, "--create", str(rows)], check=True)
    return final


def create_demo(rows: int) -> None:
    final = BENCH / f"demo-{rows}"
    tmp = BENCH / f"demo-{rows}.creating"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"creating a demo with {rows} rows per table (once; cached in {final}) ...", flush=True)
    t = time.perf_counter()
    made = create(tmp, version="3.12.32", installed_at_ms=AT_MS, rows=rows, seed=7)
    (tmp / "ready").write_text(str(made.value_count))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    print(f"  created in {time.perf_counter() - t:.0f} s", flush=True)


def fresh_copy(src: Path, name: str) -> Path:
    dst = BENCH / "work" / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def all_values(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    out: list[str] = []
    for col in get_profile().encrypted_columns:
        rows = conn.execute(f'SELECT "{col.column}" FROM "{col.table}"')
        out.extend(v for (v,) in rows if v and get_profile().codec.is_encrypted(v))
    conn.close()
    return out


def time_bare(db_path: Path, old: Secret, new: Secret) -> tuple[float, int]:
    codec = get_profile().codec
    values = all_values(db_path)
    gc.collect()
    t = time.perf_counter()
    out = [codec.encrypt_exact(new, decrypt_text(codec, old, v)) for v in values]
    took = time.perf_counter() - t
    n = len(out)
    del values, out
    gc.collect()
    return took, n


def time_roll_phase(inst: Path, old: Secret, new: Secret, workers: int | None) -> tuple[float, int]:
    ctx = Context(profile=CoolifyV3(), data_dir=inst)
    conn = ctx.store().connect()
    analysis = keys.analyse(ctx, conn, [KeyCandidate("old", old)], full=True)  # not timed here
    t = time.perf_counter()
    counts = reencrypt.reencrypt(ctx, conn, analysis, new, workers=workers)
    took = time.perf_counter() - t
    conn.close()
    return took, sum(c.reencrypted for c in counts)


def time_full_roll(inst: Path) -> float:
    """identify the key (plausibility of every value) + audit + transaction + .env; no backup."""

    class _Given:  # the engine passes its own backup; here none is taken
        name = "benchmark (no backup)"

    ctx = Context(profile=CoolifyV3(), data_dir=inst)
    t = time.perf_counter()
    roll.roll(ctx, force=True, backup=_Given())  # type: ignore[arg-type]
    return time.perf_counter() - t


def time_redash_way(inst: Path, old: Secret, new: Secret) -> tuple[float, int]:
    """As `manage database reencrypt` does it: read each table whole, UPDATE row by row,
    commit once per table."""
    codec = get_profile().codec
    by_table: dict[str, list[str]] = {}
    for col in get_profile().encrypted_columns:
        by_table.setdefault(col.table, []).append(col.column)
    conn = sqlite3.connect(inst / "db" / "prod.db")
    n = 0
    t = time.perf_counter()
    for table, cols in by_table.items():
        names = ", ".join(f'"{c}"' for c in cols)
        sets = ", ".join(f'"{c}" = ?' for c in cols)
        for row in conn.execute(f'SELECT "id", {names} FROM "{table}"').fetchall():
            fresh = []
            for v in row[1:]:
                cipher = bool(v) and codec.is_encrypted(v)
                fresh.append(codec.encrypt_exact(new, decrypt_text(codec, old, v)) if cipher else v)
                n += 1 if cipher else 0
            conn.execute(f'UPDATE "{table}" SET {sets} WHERE "id" = ?', (*fresh, row[0]))
        conn.commit()
    took = time.perf_counter() - t
    conn.close()
    return took, n


def child(inst: Path, workers: int) -> None:
    """Run in a fresh process: re-encrypt ``inst`` and report time and peak RSS."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    old, new = Secret(date_seeded_key(AT_MS)), new_key()
    took, n = time_roll_phase(inst, old, new, workers)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "values": n,
                "seconds": took,
                "start_mb": base / 1024,
                "peak_mb": peak / 1024,
                "worker_peak_mb": kids / 1024,
            }
        )
    )


def peak_rss(src: Path, label: str, workers: int) -> str:
    inst = fresh_copy(src, f"rss-{label}")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(inst), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(inst, ignore_errors=True)
    r = json.loads(proc.stdout.splitlines()[-1])
    workers_note = f", largest worker {r['worker_peak_mb']:.0f} MB" if workers > 1 else ""
    return (
        f"peak RSS at {label} ({r['values']} values, {workers} process(es)): "
        f"{r['peak_mb']:.0f} MB{workers_note} (process start {r['start_mb']:.0f} MB; "
        f"{r['seconds']:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_1M, help="demo units for timing")
    parser.add_argument("--skip-5m", action="store_true", help="skip the 5M-value memory run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--create", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.create:
        create_demo(args.create)
        return
    if args.child:
        child(args.child, args.workers)
        return
    cores = os.cpu_count() or 1
    old = Secret(date_seeded_key(AT_MS))
    # memory first, while this process is small (a child's ru_maxrss starts from its parent's)
    memory: list[str] = []
    sizes = [("1M", ROWS_1M)] + ([] if args.skip_5m else [("5M", ROWS_5M)])
    for label, rows in sizes:
        for workers in sorted({1, cores}):
            memory.append(peak_rss(demo_dir(rows), label, workers))
    src = demo_dir(args.rows)
    size_mb = (src / "db" / "prod.db").stat().st_size / 1e6
    print(f"instance: {src} ({size_mb:.0f} MB database); {cores} cores")

    new = new_key()
    bare_s, n_bare = time_bare(src / "db" / "prod.db", old, new)
    rows: list[tuple[str, float, int]] = [("bare decrypt+encrypt loop, in memory", bare_s, n_bare)]
    inst = fresh_copy(src, "roll1")
    rows.append(("roll re-encryption phase, 1 process", *time_roll_phase(inst, old, new, 1)))
    if cores > 1:
        inst = fresh_copy(src, "rollN")
        rows.append(
            (f"roll re-encryption phase, {cores} workers", *time_roll_phase(inst, old, new, None))
        )
    inst = fresh_copy(src, "full")
    rows.append(("full roll: identify key + txn + .env", time_full_roll(inst), n_bare))
    inst = fresh_copy(src, "redash")
    rows.append(("Redash's way: row UPDATEs, commit/table", *time_redash_way(inst, old, new)))
    shutil.rmtree(BENCH / "work", ignore_errors=True)

    for what, seconds, n in rows:
        assert n == n_bare, (what, n, n_bare)
        print(f"{what:<42} {seconds:7.2f} s {n / seconds:9.0f} values/s  {seconds / bare_s:.2f}x")
    print("goal: the roll's phase at most 2x the bare loop")
    for line in memory:
        print(line)
    print("goal: flat from 1M to 5M, under 200 MB")


if __name__ == "__main__":
    main()
