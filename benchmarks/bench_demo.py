"""How fast is ``coolify-migrate demo --rows N``, as a ratio to the bare encryption of its values?

    .venv/bin/python benchmarks/bench_demo.py [--rows 2000 8400] [--repeat 3]

For each size it runs the real command (``python -m coolify_migrate demo --rows N``, this
checkout's code, a fresh process: start-up and the once-per-process key pool included) and takes
its wall time and peak RSS. Then, in this process, it reads back every ciphertext the demo stored,
decrypts them (not timed) and times the floor: a bare loop that encrypts those same plaintexts,
one ``AesCtrJsonCodec.encrypt`` per value, under the same key. A value is counted as the demo
counts it (``encrypted values``); copies that share their twin's ciphertext are counted and
encrypted by the floor too. The bare loop takes the best of ``--repeat`` runs, the demo one run.

Prints a table: rows, values, demo s, bare s, ratio (goal: at most 2x), peak RSS, and a second
floor: the same values through ``encrypt_many`` (the batched path the demo itself uses), with the
demo's ratio to it. Asserts nothing.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec, decrypt_text

INSTALLED_AT = "2023-07-18T10:09:02Z"


def run_demo(data_dir: Path, rows: int) -> tuple[float, int, dict[str, object]]:
    """Wall seconds, peak RSS (KiB) and the JSON result of one ``demo`` command."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "installer")}
    argv = [sys.executable, "-m", "coolify_migrate", "demo", "--rows", str(rows)]
    argv += ["--data-dir", str(data_dir), "--installed-at", INSTALLED_AT, "--json"]
    begun = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - begun
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"demo --rows {rows} failed with exit code {proc.returncode}")
    result: dict[str, object] = {}
    for line in output.decode().splitlines():
        doc = json.loads(line)
        if isinstance(doc, dict) and "encrypted_values" in doc:
            result = doc
        elif isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            result = doc["result"]
    return took, usage.ru_maxrss, result


def plaintexts(db_path: Path, key: Secret) -> list[str]:
    """Every ciphertext the demo stored, decrypted, in table order (copies included)."""
    profile = CoolifyV3()
    codec = profile.codec
    conn = sqlite3.connect(db_path)
    out: list[str] = []
    try:
        for col in profile.encrypted_columns:
            rows = conn.execute(f'SELECT "{col.column}" FROM "{col.table}"')
            out.extend(decrypt_text(codec, key, v) for (v,) in rows if v and codec.is_encrypted(v))
    finally:
        conn.close()
    return out


def time_bare(values: list[str], key: Secret, repeat: int) -> float:
    codec = AesCtrJsonCodec()
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        begun = time.perf_counter()
        for plain in values:
            codec.encrypt(key, plain)
        best = min(best, time.perf_counter() - begun)
    return best


def time_batched(values: list[str], key: Secret, repeat: int) -> float | None:
    """The same values through ``encrypt_many`` (what the demo uses), 5,000 at a time."""
    codec = AesCtrJsonCodec()
    many = getattr(codec, "encrypt_many", None)
    if many is None:  # a checkout from before it existed
        return None
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        begun = time.perf_counter()
        for at in range(0, len(values), 5000):
            many(key, values[at : at + 5000])
        best = min(best, time.perf_counter() - begun)
    return best


def read_key(data_dir: Path) -> Secret:
    for line in (data_dir / ".env").read_text().splitlines():
        if line.startswith("COOLIFY_SECRET_KEY="):
            return Secret(line.split("=", 1)[1])
    raise SystemExit("the demo wrote no COOLIFY_SECRET_KEY")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 8400])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the bare loop (best kept)")
    opts = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    lines = [
        f"{'rows':>6} {'values':>9} {'demo s':>8} {'bare s':>8} {'ratio':>6} {'peak RSS':>9}"
        f"  {'batched s':>9} {'ratio':>6}",
    ]
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        fixed, _, _ = run_demo(work / "demo-1", 1)
        print(f"fixed cost, `demo --rows 1` (start-up, RSA key pool, schema): {fixed:.2f} s")
        for rows in opts.rows:
            data_dir = work / f"demo-{rows}"
            took, rss_kib, result = run_demo(data_dir, rows)
            key = read_key(data_dir)
            values = plaintexts(data_dir / "db" / "prod.db", key)
            reported = result.get("encrypted_values")
            if reported != len(values):
                print(f"  note: the demo reported {reported} values, {len(values)} read back")
            bare = time_bare(values, key, opts.repeat)
            batched = time_batched(values, key, opts.repeat)
            lines.append(
                f"{rows:>6} {len(values):>9,} {took:>8.2f} {bare:>8.2f} {took / bare:>5.2f}x"
                f" {rss_kib / 1024:>6.0f} MB"
                + (
                    f"  {batched:>9.2f} {took / batched:>5.2f}x"
                    if batched
                    else "  (no encrypt_many)"
                )
            )
            print(lines[-1], flush=True)
            del values
            shutil.rmtree(data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("\n".join(lines))
    print("demo s: `coolify-migrate demo --rows N` in a fresh process (start-up and key pool")
    print("included); bare s: one AesCtrJsonCodec.encrypt per value, same values, same key (the")
    print("goal's floor); batched s: the same values through encrypt_many, 5,000 per call.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
