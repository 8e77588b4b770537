"""How long does a consistent backup take next to a plain copy, and verify and restore?

Builds (once, cached under ``.bench/``) a demo instance whose database is padded to at least
``--size-mb`` (default 1100 MB) with 16 KiB rows in WAL mode, starts ``tests/wal_writer.py``
committing small rows into it, and measures in the same run, on the same warm file:

- the floor: ``shutil.copyfile`` of the database followed by an fsync (what ``cp`` and ``sync``
  do), one SHA-256 pass over the same bytes, and the larger of the two;
- ``backups.create`` (one pass over the file when it holds the snapshot: copied, hashed and
  quick_check'ed together, fsynced; else the backup API, then its seal; then the manifest), as
  a ratio to the floor, with the verdict against the goal (at most 1.3x) from the measured
  numbers, and how many rounds took the one-pass path;
- the backup API path on its own (one step, header fix-up), then its seal (quick_check,
  SHA-256, fsync, overlapped): what a copy costs when the file does not hold the snapshot;
- that the backup is consistent: it holds every row committed before it started, and its two
  writer tables agree (a plain copy in the same run is checked too);
- ``backups.verify`` of the new backup (size, SHA-256, quick_check);
- ``rollback.restore`` on a scratch copy of the instance (so the benchmark changes nothing):
  verify, safety backup, copy-in with fsync, and decrypting every value.

By default the writer runs, in WAL mode with its checkpoints (the app running during a manual
backup). ``--stopped`` measures the downtime case instead: no writer, and the file switched to
rollback-journal mode as Coolify's own ``prod.db`` is (Prisma's default). There each round also
takes the pre-upgrade backup as an upgrade does: ``backups.check_before_stop`` (timed on its
own: the app still runs then), then ``backups.create(checked=...)`` in the downtime; that is the
backup held against the goal, and the manual ``backups.create`` is printed beside it.

Prints the figures (``--json`` for one JSON object); asserts nothing.
Usage: ``python benchmarks/bench_backup.py [--size-mb N] [--rounds N] [--stopped] [--json]``.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate import backups
from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.backups import rollback
from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.stores import sqlite_copy

BENCH = REPO / ".bench"
WRITER = REPO / "tests" / "wal_writer.py"
AT_MS = 1689674942980
ROW = 16 << 10
GOAL = 1.3


def instance(size_mb: int) -> Path:
    """A cached demo instance padded to ``size_mb``; built in a temp dir, then renamed."""
    final = BENCH / f"backup-{size_mb}mb"
    if (final / "ready").exists():
        return final
    tmp = BENCH / f".backup-{size_mb}mb.building"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    made = create(tmp, version="3.12.32", installed_at_ms=AT_MS, rows=20)
    conn = sqlite3.connect(made.db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE writer_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("CREATE TABLE writer_total (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO writer_total VALUES (0)")
    conn.execute("CREATE TABLE padding (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    chunk = os.urandom(1 << 20)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    i = 0
    while conn.execute("PRAGMA page_count").fetchone()[0] * page_size < size_mb << 20:
        conn.execute("BEGIN")
        for _ in range(256):
            off = (i * 7919) % ((1 << 20) - ROW)
            conn.execute("INSERT INTO padding(body) VALUES (?)", (chunk[off : off + ROW],))
            i += 1
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (tmp / "ready").write_text("")
    os.replace(tmp, final)
    print(f"built {final} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return final


def committed(db_path: Path) -> int:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM writer_rows").fetchone()[0])
    finally:
        conn.close()


def consistency(path: Path, before: int, *, snapshot: bool) -> dict[str, Any]:
    """Does the copy hold every row committed before it started, and do its two tables agree?"""
    found: dict[str, Any] = {
        "rows": None,
        "committed_before_start": before,
        "holds_all": False,
        "tables_agree": False,
    }
    try:
        conn = backup_copy.open_snapshot(path)
        try:
            count, top = conn.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM writer_rows"
            ).fetchone()
            total = conn.execute("SELECT n FROM writer_total").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:  # a torn plain copy
        return {**found, "integrity": f"unreadable: {err}"}
    found.update(rows=count, holds_all=top >= before, tables_agree=count == top == total)
    found["integrity"] = backup_copy.integrity(path) if snapshot else "not checked"
    return found


def checksum_pass(path: Path) -> str:
    """One SHA-256 pass over the file's bytes, in large chunks (the floor's checksum)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def drop(info: backups.BackupInfo) -> None:
    """Remove a backup this run took (and its manifest): the next round starts as this one did."""
    info.path.unlink()
    info.path.with_name(info.name + ".json").unlink(missing_ok=True)


def cpu_pressure() -> float | None:
    """The share of the last minute some runnable task waited for a CPU (Linux PSI), percent."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(f.split("=") for f in first.split()[1:])
    return float(fields["avg60"])


def set_journal_mode(db_path: Path, mode: str) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode = {mode}")
    finally:
        conn.close()


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def restore_on_scratch(data_dir: Path, info: backups.BackupInfo) -> float:
    """Restore ``info`` into a scratch copy of the instance (hard links where nothing writes)."""
    scratch = BENCH / "backup-restore-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "db").mkdir(parents=True)
    shutil.copyfile(data_dir / ".env", scratch / ".env")
    shutil.copyfile(data_dir / "db" / "prod.db", scratch / "db" / "prod.db")
    for name in (info.name, info.name + ".json"):
        os.link(info.path.with_name(name), scratch / "db" / name)
    ctx = Context(profile=CoolifyV3(), data_dir=scratch)
    target = backups.find(ctx, info.name)
    try:
        seconds, _ = timed(lambda: rollback.restore(ctx, target))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1100, help="database size to build")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200, help="writer commits per second")
    parser.add_argument(
        "--stopped",
        action="store_true",
        help="no writer, rollback-journal mode: the downtime case",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data_dir = instance(args.size_mb)
    db_path = data_dir / "db" / "prod.db"
    ctx = Context(profile=CoolifyV3(), data_dir=data_dir)
    for old in backups.list_backups(ctx):  # a previous run's leftovers
        old.path.unlink()
        old.path.with_name(old.name + ".json").unlink(missing_ok=True)
    plain = data_dir / "db" / "plain-copy.db"
    api_only = data_dir / "db" / "api-step.db"
    set_journal_mode(db_path, "delete" if args.stopped else "wal")
    subprocess.run(["cat", str(db_path)], stdout=subprocess.DEVNULL, check=True)  # warm the cache

    writer = None
    if not args.stopped:
        writer = subprocess.Popen(
            [sys.executable, str(WRITER), str(db_path), "--checkpoint", "--rate", str(args.rate)]
        )
    one_pass: list[bool] = []
    real_copy_sealed = sqlite_copy.copy_sealed

    one_pass_s: list[float] = []

    def counted(*a: Any, **kw: Any) -> tuple[str, str] | None:
        seconds, sealed = timed(lambda: real_copy_sealed(*a, **kw))
        one_pass.append(sealed is not None)
        one_pass_s.append(seconds)
        return sealed

    sqlite_copy.copy_sealed = counted  # type: ignore[assignment]
    pressure_before = cpu_pressure()
    rounds: list[dict[str, float]] = []
    load_before = os.getloadavg()
    try:
        while writer is not None and committed(db_path) < 100:
            time.sleep(0.05)
        for _ in range(args.rounds):
            plain.unlink(missing_ok=True)
            copy_s, _ = timed(lambda: shutil.copyfile(db_path, plain))
            fsync_s, _ = timed(lambda: durable.fsync_file(plain))
            plain.unlink()
            hash_s, _ = timed(lambda: checksum_pass(db_path))
            floor = max(copy_s + fsync_s, hash_s)
            measured: dict[str, float] = {
                "copy": copy_s,
                "copy_fsync": copy_s + fsync_s,
                "checksum": hash_s,
                "floor": floor,
            }
            if args.stopped:
                # the upgrade's way: the check while the app still runs, then the backup in the
                # downtime (the file unchanged since, as when the app stops cleanly)
                check_s, checked = timed(lambda: backups.check_before_stop(ctx))
                assert checked is not None, "the stopped file holds its snapshot"
                down_s, down = timed(lambda c=checked: backups.create(ctx, checked=c))
                one_pass_down = one_pass_s[-1]
                drop(down)
                measured.update(
                    check_before_stop=check_s,
                    create_checked=down_s,
                    one_pass_checked=one_pass_down,
                    ratio_checked=down_s / floor,
                )
            before = committed(db_path)
            create_s, info = timed(lambda: backups.create(ctx))
            writes_during = committed(db_path) - before
            measured.update(create=create_s, one_pass=one_pass_s[-1], ratio=create_s / floor)
            print(
                f"round {len(rounds) + 1}: copy+fsync {copy_s + fsync_s:.2f} s, "
                f"sha256 {hash_s:.2f} s, create {create_s:.2f} s "
                f"({create_s / floor:.2f}x the floor, "
                f"{'one pass' if one_pass[-1] else 'backup API'})"
                + (
                    f"; checked before the stop {measured['check_before_stop']:.2f} s, "
                    f"then create {measured['create_checked']:.2f} s "
                    f"({measured['ratio_checked']:.2f}x the floor)"
                    if args.stopped
                    else ""
                ),
                file=sys.stderr,
            )
            if len(rounds) + 1 < args.rounds:
                drop(info)  # only the last round's backup is checked and restored below
            rounds.append(measured)
        # the backup API path, once (its 1 GiB of writes kept out of the rounds above)
        api_only.unlink(missing_ok=True)
        api_only.touch()
        api_s, _ = timed(lambda: backup_copy.snapshot_copy(db_path, api_only))
        seal_s, _ = timed(lambda: backup_copy.seal(api_only))
        api_only.unlink()
        plain_before = committed(db_path)
        plain.unlink(missing_ok=True)
        shutil.copyfile(db_path, plain)
    finally:
        sqlite_copy.copy_sealed = real_copy_sealed  # type: ignore[assignment]
        if writer is not None:
            writer.kill()
            writer.wait()
    load_after = os.getloadavg()
    pressure_after = cpu_pressure()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # so the scratch copy below is whole
    conn.close()
    backup_check = consistency(info.path, before, snapshot=True)
    plain_check = consistency(plain, plain_before, snapshot=False)
    verify_s, verdict = timed(lambda: backups.verify(ctx, info.name))
    restore_s = restore_on_scratch(data_dir, info)

    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    # each round's backup over the floor measured just before it; in the downtime case the
    # backup the upgrade takes (its check done before the stop), else a manual one
    ratio = med["ratio_checked"] if args.stopped else med["ratio"]
    report = {
        "size_mb": round(db_path.stat().st_size / (1 << 20)),
        "mode": "stopped, rollback journal" if args.stopped else "WAL, writer running",
        "rounds": len(rounds),
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "ratio_create_to_floor": round(ratio, 2),
        "goal": GOAL,
        "goal_met": ratio <= GOAL,
        "ratio_create_to_copy_fsync": round(med["create"] / med["copy_fsync"], 2),
        "ratio_of_medians": round(
            (med["create_checked"] if args.stopped else med["create"]) / med["floor"], 2
        ),
        "api_step_s": round(api_s, 3),
        "api_seal_s": round(seal_s, 3),
        "ratio_api_step_to_copy": round(api_s / med["copy"], 2),
        "ratio_api_path_to_floor": round((api_s + seal_s) / med["floor"], 2),
        "one_pass_rounds": sum(one_pass),
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpu_pressure_some_avg60": [pressure_before, pressure_after],
        "cores": os.cpu_count(),
        "writer_commits_during_last_backup": writes_during,
        "backup": backup_check,
        "plain_copy": plain_check,
        "verify_s": round(verify_s, 3),
        "verify_ok": verdict[0]["ok"],
        "restore_s": round(restore_s, 3),
        "all_rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
    }
    for old in backups.list_backups(ctx):
        old.path.unlink()
        old.path.with_name(old.name + ".json").unlink(missing_ok=True)
    plain.unlink(missing_ok=True)
    api_only.unlink(missing_ok=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    m = report["median_s"]
    situation = (
        "rollback-journal mode, no writer (the app stopped)"
        if args.stopped
        else f"WAL mode, a writer committing all along ({writes_during} commits during the "
        "last backup)"
    )
    verdict_line = "MET" if report["goal_met"] else "NOT MET"
    lines = [
        f"database: {report['size_mb']} MiB, {situation}; median of {len(rounds)} rounds; "
        f"load average {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} cores; "
        f"CPU pressure (some, avg60) {pressure_before} -> {pressure_after}",
        f"  plain copy (shutil.copyfile):  {m['copy']:.3f} s  (+ fsync: {m['copy_fsync']:.3f} s)",
        f"  one SHA-256 pass:              {m['checksum']:.3f} s",
        f"  floor = max(copy+fsync, SHA-256): {m['floor']:.3f} s",
    ]
    manual = (
        f"{m['create']:.3f} s (its one pass {m['one_pass']:.3f} s); over its round's floor: "
        f"median {statistics.median(r['ratio'] for r in rounds):.2f}x"
    )
    if args.stopped:
        lines += [
            f"  check before the stop (app running: quick_check + SHA-256, one snapshot): "
            f"{m['check_before_stop']:.3f} s, not downtime",
            f"  pre-upgrade backup in the downtime (backups.create, checked before the stop): "
            f"{m['create_checked']:.3f} s (its one pass {m['one_pass_checked']:.3f} s); over "
            f"its round's floor: median {ratio:.2f}x (goal <= {GOAL}x: {verdict_line}; ratio "
            f"of the medians {report['ratio_of_medians']}x)",
            f"  backups.create with no check before it (manual; a resumed upgrade): {manual}; "
            f"one pass in {sum(one_pass)} of {len(one_pass)} copies",
        ]
    else:
        lines += [
            f"  backups.create, all of it:     {manual} (goal <= {GOAL}x: {verdict_line}; ratio "
            f"of the medians {report['ratio_of_medians']}x); one pass in {sum(one_pass)} of "
            f"{len(rounds)} rounds",
        ]
    lines += [
        f"  backup API path (once): copy {api_s:.3f} s "
        f"({report['ratio_api_step_to_copy']}x the plain copy), then its seal "
        f"(quick_check, SHA-256, fsync, overlapped) {seal_s:.3f} s; together "
        f"{report['ratio_api_path_to_floor']}x the median floor",
        f"  backup: holds all {before} rows committed before it started: "
        f"{backup_check['holds_all']}; tables agree: {backup_check['tables_agree']}; "
        f"quick_check: {backup_check['integrity']}",
        f"  plain copy: {plain_check['rows']} rows ({plain_before} committed before it); "
        f"tables agree: {plain_check['tables_agree']}; {plain_check['integrity']}",
        f"  backup verify (size, SHA-256, quick_check): {verify_s:.3f} s, ok={verdict[0]['ok']}",
        f"  restore (verify, safety backup, copy-in, decrypt every value): {restore_s:.3f} s",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
