"""Where a roll's CPU goes, value by value: each stage of a batch, in CPU microseconds per value.

    .venv/bin/python benchmarks/bench_roll_stages.py [--rows 2000] [--batch 1000] [--repeat 3]

Reads the values of a cached demo instance (``bench_reencrypt.py``'s, created once) in the
roll's own batches and times, in this one process with ``time.process_time`` (CPU time, so a
busy machine disturbs it less than wall time), each stage the roll's workers run on a batch:
parsing the stored values, decrypting them under the old key, encrypting under the new key,
parsing the new values and decrypting them again to check them, then the whole of
``reencrypt._batch`` (those stages plus its bookkeeping and the rows it returns),
and pickling a batch's rows and its updates (what travels between this process and a worker).
The floor beside them, from the same run: a bare loop, one ``decrypt`` and one ``encrypt`` per
value with the app's codec, the way the roll worked before batching. Each figure is the best of
``--repeat`` runs. Asserts nothing.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import gc
import pickle
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_reencrypt import demo_dir
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.secret import Secret
from coolify_migrate.secrets import keys, reencrypt

Batch = tuple[list[EncryptedColumn], list[tuple[Any, ...]]]


def read_key(inst: Path) -> Secret:
    for line in (inst / ".env").read_text().splitlines():
        if line.startswith("COOLIFY_SECRET_KEY="):
            return Secret(line.split("=", 1)[1])
    raise SystemExit(f"no COOLIFY_SECRET_KEY in {inst / '.env'}")


def batches(db_path: Path, profile: CoolifyV3, size: int) -> list[Batch]:
    """Every table's rows as the roll reads them: row key, id, the encrypted columns."""
    by_table: dict[str, list[EncryptedColumn]] = {}
    for column in profile.encrypted_columns:
        by_table.setdefault(column.table, []).append(column)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    out: list[Batch] = []
    try:
        for table, columns in by_table.items():
            names = ", ".join(f'"{c.column}"' for c in columns)
            rows = conn.execute(f'SELECT rowid, id, {names} FROM "{table}" ORDER BY rowid')
            while got := rows.fetchmany(size):
                out.append((columns, got))
    finally:
        conn.close()
    return out


def best(repeat: int, fn: Callable[[], object]) -> float:
    took = float("inf")
    for _ in range(repeat):
        gc.collect()
        begun = time.process_time()
        fn()
        took = min(took, time.process_time() - begun)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="demo units (~119 values each)")
    parser.add_argument("--batch", type=int, default=reencrypt.POOL_TASK, help="rows per batch")
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()

    inst = demo_dir(opts.rows)
    profile = CoolifyV3()
    codec = profile.codec
    old, new = read_key(inst), new_key()
    work = batches(inst / "db" / "prod.db", profile, opts.batch)
    codecs = keys.FieldCodecs(profile)
    job = reencrypt._Job(codecs, {c.label: (old,) for c in profile.encrypted_columns}, (), new)
    # per field and batch, as the roll groups them
    fields = [[row[2 + i] for row in rows] for columns, rows in work for i in range(len(columns))]
    parsed = [[p for p in codec.parts_many(values) if p is not None] for values in fields]
    count = sum(len(p) for p in parsed)
    plain = [[raw or b"" for raw in codec.decrypt_many(old, p)] for p in parsed]
    fresh = [codec.encrypt_raw_many(new, raws) for raws in plain]
    fresh_parts = [[p or (b"", b"") for p in codec.parts_many(f)] for f in fresh]
    stored = [v for values in fields for v in values if v and codec.parts(v) is not None]

    def whole() -> None:
        for columns, rows in work:
            counts = {c.label: reencrypt.ColumnRoll(c.label) for c in columns}
            reencrypt._batch(job, columns, rows, counts, reencrypt.Unproven())

    def bare() -> None:
        for value in stored:
            codec.encrypt_raw(new, codec.decrypt_bytes(old, value))

    updates = [reencrypt._batch(job, c, r, {x.label: reencrypt.ColumnRoll(x.label) for x in c},
                                reencrypt.Unproven()) for c, r in work]  # fmt: skip
    stages = [
        ("parse the stored values", lambda: [codec.parts_many(v) for v in fields]),
        ("decrypt (old key)", lambda: [codec.decrypt_many(old, p) for p in parsed]),
        ("encrypt (new key)", lambda: [codec.encrypt_raw_many(new, r) for r in plain]),
        ("parse the new values", lambda: [codec.parts_many(f) for f in fresh]),
        ("decrypt them to check", lambda: [codec.decrypt_many(new, p) for p in fresh_parts]),
        ("pickle + unpickle the rows", lambda: [pickle.loads(pickle.dumps(r)) for _, r in work]),
        ("pickle + unpickle the updates", lambda: [pickle.loads(pickle.dumps(u)) for u in updates]),
        ("reencrypt._batch, whole", whole),
        ("floor: bare decrypt + encrypt per value", bare),
    ]
    gc.freeze()  # as a worker does: what is made above is not walked by each collection
    print(f"{count:,} ciphertext values in {len(work)} batches of up to {opts.batch} rows")
    print(f"{'stage':<42} {'CPU us/value':>12} {'x floor':>8}")
    figures = [(name, best(opts.repeat, fn) / count * 1e6) for name, fn in stages]
    floor = figures[-1][1]
    for name, us in figures:
        print(f"{name:<42} {us:>12.2f} {us / floor:>7.2f}x")
    print(f"CPU time (time.process_time), best of {opts.repeat}, one process; the roll runs")
    print("``_batch`` on every core and the pickling on both ends of a pipe.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
