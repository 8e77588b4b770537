"""Where an upgrade's time goes: the whole ``upgrade --runtime none`` beside its floors.

Builds once (cached under ``.bench/``) a legacy Coolify v3 3.12.32 demo instance of about 1M
encrypted values, its database padded to at least ``--size-mib`` (1 GiB) with build-log rows the
upgrade never reads, and measures in the same run, each on a fresh copy of it:

- the backup floor: a plain copy of the database file and its fsync;
- the I/O floor: every encrypted value read and written back (changed, same length, so every page
  is really rewritten) in one SQLite transaction, no crypto;
- the bare crypto loop: decrypt + encrypt every value with the app's codec, in memory, no I/O;
- the real CLI, ``coolify-migrate upgrade --runtime none --yes --json`` in a subprocess: its wall
  time, the run's own ``elapsed_s`` and ``downtime_s`` (app stopped -> started), and where the
  time went, phase by phase and pass by pass, from the run log's lines;
- peak memory of the upgrade: the RSS of its largest single process (``wait4``) and the
  proportional set size of its whole process tree (the forked re-encryption workers too: pages
  they share with their parent count once), sampled every 100 ms.

Each figure is printed as a ratio to floor = backup floor + I/O floor (goals: whole upgrade <= 2x,
downtime <= 1.5x). The floors and the upgrade are measured in ``--rounds`` rounds (4), each round
the two floors and the upgrade one after another (the floors first in odd rounds, the upgrade
first in even ones): this machine's speed (fsync above all) drifts by a fifth and more within
minutes, so each upgrade is set against the floors measured beside it, and the goals are judged
on the median of the rounds' ratios. Asserts nothing. Every measurement runs in a child process,
so this one stays small (a child's peak RSS starts from its parent's).

Usage: ``python benchmarks/bench_upgrade.py [--rows N] [--size-mib M] [--rounds R] [--5m] [--keep]
[--profile FILE]``.
``--rows 50`` is a smoke run of seconds (no padding unless ``--size-mib`` is given); ``--5m`` adds
the peak RSS of an upgrade at 5M values (its instance takes minutes to create the first time);
``--keep`` leaves the upgraded copy (with its run log and backup) under ``.bench/work/``;
``--profile FILE`` runs the upgrade once more under cProfile and prints how often each value was
decrypted, encrypted and parsed (see docs/performance.md).
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.core import durable
from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.codec import Codec
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import decrypt_text

BENCH = REPO / ".bench"
WORK = BENCH / "work"
AT_MS = 1689674942980  # 3.12.32 with a date-seeded key: the upgrade rolls it
# demo units: about 119 encrypted values each (v3's real schema)
ROWS_1M = 8_400
ROWS_5M = 42_000
SIZE_MIB = 1024
LINE_HEX = 2048  # padding: build-log lines of 2 KiB
MIB = 1 << 20
SAMPLE_S = 0.1
ROUNDS = 4


# -- the instance -------------------------------------------------------------------------------


def instance(rows: int, size_mib: int) -> Path:
    """The cached instance, created once in a child process."""
    final = BENCH / f"upgrade-{rows}-{size_mib}mib"
    if not (final / "ready").exists():
        subprocess.run(
            [sys.executable, __file__, "--create", str(rows), "--size-mib", str(size_mib)],
            check=True,
        )
    return final


def create_instance(rows: int, size_mib: int) -> None:
    final = BENCH / f"upgrade-{rows}-{size_mib}mib"
    tmp = BENCH / f".upgrade-{rows}-{size_mib}mib.creating"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"creating a demo of {rows} units, padded to {size_mib} MiB (once: {final}) ...")
    t = time.perf_counter()
    made = create(tmp / "coolify", version="3.12.32", installed_at_ms=AT_MS, rows=rows, seed=7)
    values = made.value_count
    del made  # its plaintexts: a million entries
    gc.collect()
    built = time.perf_counter() - t
    pad(tmp / "coolify" / "db" / "prod.db", size_mib)
    durable.fsync_file(tmp / "coolify" / "db" / "prod.db")
    (tmp / "ready").write_text(str(values))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    print(
        f"  {values} values in {built:.0f} s, padded in {time.perf_counter() - t - built:.0f} s",
        flush=True,
    )


def pad(db_path: Path, size_mib: int) -> None:
    """Build-log rows (v3's own BuildLog table, which the upgrade never reads) until the file
    holds ``size_mib``: they weigh on the backup, not on the re-encryption."""
    want = size_mib * MIB - db_path.stat().st_size
    if want <= 0:
        return
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a file being built: fsynced once at the end
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
            'INSERT INTO "BuildLog" ("id", "applicationId", "buildId", "line", "time") '
            "SELECT 'bench-pad-' || x, NULL, 'bench-pad-build-' || (x / 1000), "
            "hex(randomblob(?)), ? + x FROM n",
            (want // (LINE_HEX + 64) + 1, LINE_HEX // 2, AT_MS),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def fresh_copy(src: Path, name: str) -> Path:
    """A copy of the instance, fsynced, so no write-back of the copy runs during a timing."""
    dst = WORK / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src / "coolify", dst)
    durable.fsync_file(dst / "db" / "prod.db")
    return dst


# -- the floors (each in its own child process) ---------------------------------------------------


def columns() -> list[tuple[EncryptedColumn, Codec]]:
    profile = CoolifyV3()
    return [(c, c.codec or profile.codec) for c in profile.encrypted_columns]


def floor_backup(inst: Path) -> dict[str, Any]:
    src = inst / "db" / "prod.db"
    dst = inst / "db" / "floor-copy.db"
    t = time.perf_counter()
    shutil.copyfile(src, dst)
    durable.fsync_file(dst)
    took = time.perf_counter() - t
    dst.unlink()
    return {"seconds": took, "bytes": src.stat().st_size}


def floor_io(inst: Path) -> dict[str, Any]:
    """Each table's encrypted columns read and written back in one transaction, by rowid. The
    value written differs from the one read (reversed: same length) as a re-encrypted one does:
    SQLite leaves a page untouched when a row is rewritten with identical bytes."""
    by_table: dict[str, list[str]] = {}
    for col, _codec in columns():
        by_table.setdefault(col.table, []).append(col.column)
    conn = sqlite3.connect(inst / "db" / "prod.db", isolation_level=None)
    n = 0
    t = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for table, cols in by_table.items():
        names = ", ".join(f'"{c}"' for c in cols)
        sets = ", ".join(f'"{c}" = ?' for c in cols)
        rows = conn.execute(f'SELECT rowid, {names} FROM "{table}"').fetchall()
        out = []
        for rowid, *values in rows:
            out.append((*(v[::-1] if v else v for v in values), rowid))
            n += sum(1 for v in values if v)
        conn.executemany(f'UPDATE "{table}" SET {sets} WHERE rowid = ?', out)
    conn.execute("COMMIT")
    took = time.perf_counter() - t
    conn.close()
    return {"seconds": took, "values": n}


def floor_crypto(inst: Path) -> dict[str, Any]:
    """Decrypt + encrypt every ciphertext in memory with the app's codec (values loaded first,
    not timed)."""
    old, new = Secret(date_seeded_key(AT_MS)), new_key()
    conn = sqlite3.connect(inst / "db" / "prod.db")
    work: list[tuple[Codec, str]] = []
    for col, codec in columns():
        for (v,) in conn.execute(f'SELECT "{col.column}" FROM "{col.table}"'):
            if v and codec.is_encrypted(v):
                work.append((codec, v))
    conn.close()
    gc.collect()
    t = time.perf_counter()
    done = [codec.encrypt_exact(new, decrypt_text(codec, old, v)) for codec, v in work]
    took = time.perf_counter() - t
    return {"seconds": took, "values": len(done)}


FLOORS = {"backup": floor_backup, "io": floor_io, "crypto": floor_crypto}


def measure(kind: str, inst: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--floor", kind, str(inst)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


# -- the upgrade ---------------------------------------------------------------------------------


def tree_pss_kb(root: int) -> int:
    """Proportional set size (KiB) of ``root`` and every process below it: a page a forked worker
    still shares with its parent counts once, split between them (summed RSS would count it in
    each). The tree from /proc/<pid>/stat, the sizes from smaps_rollup of its members only."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        grew = bool(more)
        tree |= more
    total = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
        total += int(found.group(1)) if found else 0
    return total


@dataclass
class Upgrade:
    wall_s: float
    result: dict[str, Any]
    log: Path
    max_rss_mb: float  # its largest single process (wait4: the main one or a worker)
    tree_pss_mb: float  # the most its whole process tree held at once (PSS, sampled)


def run_upgrade(inst: Path) -> Upgrade:
    """The real CLI in a subprocess; its JSON lines on stdout, its stderr kept beside the copy."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "installer")}
    cmd = [sys.executable, "-m", "coolify_migrate", "upgrade", "--runtime", "none", "--yes"]
    cmd += ["--json", "--data-dir", str(inst)]
    peak = [0]
    done = threading.Event()
    err_path = inst.parent / f"{inst.name}.stderr"
    with open(err_path, "w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True
        )

        def sample() -> None:
            while not done.wait(SAMPLE_S):
                peak[0] = max(peak[0], tree_pss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        assert proc.stdout is not None
        lines = proc.stdout.readlines()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        err.seek(0)
        stderr = err.read()
    events = [json.loads(x) for x in lines if x.startswith("{")]
    result: dict[str, Any] = next((e for e in events if e.get("event") == "result"), {})
    if proc.returncode != 0 or result.get("outcome") != "upgraded":
        tail = stderr[-2000:] + "".join(lines[-5:])
        raise SystemExit(f"the upgrade did not complete (exit {proc.returncode}):\n{tail}")
    err_path.unlink()
    return Upgrade(wall, result, Path(result["log"]), usage.ru_maxrss / 1024, peak[0] / 1024)


# -- how often each value is touched (cProfile of the same command) ----------------------------

# codec functions counted per encrypted value: (file suffix, function, what it is)
COUNTED = (
    ("crypto/codecs.py", "decrypt_split", "decryptions"),
    ("crypto/codecs.py", "encrypt_raw", "encryptions"),
    ("crypto/codecs.py", "_split", "JSON parses of a stored value"),
    ("core/secret.py", "check_value", "HMAC-SHA256 of a key (its fingerprint)"),
)


def profiled(inst: Path, out: Path) -> None:
    """Run in a child: the CLI's upgrade under cProfile, on one process (``os.cpu_count`` says 1,
    so the re-encryption's crypto runs here, where the profiler sees it, not in forked workers)."""
    import cProfile

    from coolify_migrate.cli import main as cli_main

    os.cpu_count = lambda: 1
    args = ["upgrade", "--runtime", "none", "--yes", "--json", "--data-dir", str(inst)]
    prof = cProfile.Profile()
    try:
        with open(os.devnull, "w") as quiet:
            sys.stdout = quiet
            prof.runcall(cli_main, args)
    except SystemExit as done:
        if done.code:
            raise
    finally:
        sys.stdout = sys.__stdout__
        prof.dump_stats(out)


def per_value_counts(prof_path: Path, values: int) -> list[tuple[str, float]]:
    import pstats

    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(prof_path)).stats  # type: ignore[attr-defined]
    out = []
    for suffix, name, what in COUNTED:
        calls = sum(v[1] for k, v in stats.items() if k[0].endswith(suffix) and k[2] == name)
        out.append((f"{what} ({name})", calls / values))
    return out


# -- where the time went (from the run log) -------------------------------------------------------

_PHASE = re.compile(r"^\S+ event phase (\{.*\})$")
_STARTED = re.compile(r"^\S+ (.+): started \((\S+) (\S+)\)$")
_DONE = re.compile(r"^\S+ (.+): (\d+) (\S+) done in ([\d.]+) s$")


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    passes: list[tuple[str, str, float]] = field(default_factory=list)  # (what, count, seconds)


def breakdown(log: Path, elapsed: float) -> list[Phase]:
    """The driver's phases and, inside each, the passes over the data. The driver logs
    ``event phase`` with the run's elapsed seconds when a phase is done, so a phase is what ran
    since the previous such line; a pass is a progress's ``started`` line and its first
    ``done in`` line (a progress closed twice logs a second one, which is not a second pass)."""
    phases: list[Phase] = []
    current = Phase("")
    last = 0.0
    open_passes: set[str] = set()
    for line in log.read_text().splitlines():
        if m := _PHASE.match(line):
            doc = json.loads(m.group(1))
            current.name = str(doc["phase"])
            current.seconds = float(doc["elapsed_s"]) - last
            last = float(doc["elapsed_s"])
            phases.append(current)
            current = Phase("")
        elif m := _STARTED.match(line):
            open_passes.add(m.group(1))
        elif (m := _DONE.match(line)) and m.group(1) in open_passes:
            open_passes.discard(m.group(1))
            current.passes.append((m.group(1), f"{m.group(2)} {m.group(3)}", float(m.group(4))))
    if phases and phases[0].name == "stop":
        phases[0].name = "stop, and all before it (plan, live key)"
    current.name, current.seconds = "finish (journal, summary)", max(elapsed - last, 0.0)
    return [*phases, current]


@dataclass
class Round:
    backup: dict[str, Any]
    io: dict[str, Any]
    up: Upgrade
    log_text: str
    phases: list[Phase]

    @property
    def floor(self) -> float:
        return float(self.backup["seconds"]) + float(self.io["seconds"])

    @property
    def elapsed(self) -> float:
        return float(self.up.result["elapsed_s"])

    @property
    def downtime(self) -> float:
        return float(self.up.result["downtime_s"] or 0)


def one_round(src: Path, floors: Path, keep: bool, upgrade_first: bool) -> Round:
    """The upgrade's fresh copy first, then the two floors and the upgrade: the floors first in
    one round, the upgrade first in the next. This disk writes slower for seconds after a burst
    of writes (the fresh copy, the I/O floor's pass, an upgrade's backup and pass), so whichever
    runs second meets the first one's write-back; alternating the order gives the floors and the
    upgrade that handicap equally often."""
    inst = fresh_copy(src, "upgrade-run")
    up = run_upgrade(inst) if upgrade_first else None
    backup = measure("backup", floors)
    # each round reverses the floors' copy's values (garbage after the first): every page is
    # rewritten all the same
    io = measure("io", floors)
    if up is None:
        up = run_upgrade(inst)
    log_text = up.log.read_text()
    phases = breakdown(up.log, float(up.result["elapsed_s"]))
    if not keep:
        shutil.rmtree(inst)
    return Round(backup, io, up, log_text, phases)


# -- the report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_1M, help="demo units (~119 values each)")
    parser.add_argument(
        "--size-mib",
        type=int,
        default=None,
        help="pad the database to this size (default: 1024 at the default --rows, else none)",
    )
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help="rounds of floors + upgrade (median judged)"
    )
    parser.add_argument("--5m", dest="five_m", action="store_true", help="peak RSS at 5M values")
    parser.add_argument("--keep", action="store_true", help="keep the upgraded copy")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also run the upgrade under cProfile (one process) on a fresh copy, write the "
        "profile here and print how often each value was decrypted, encrypted and parsed, and a key hashed",
    )
    parser.add_argument("--create", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--profiled", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size_mib = (
        args.size_mib if args.size_mib is not None else (SIZE_MIB if args.rows == ROWS_1M else 0)
    )
    if args.create:
        create_instance(args.create, size_mib)
        return
    if args.profiled:
        profiled(*args.profiled)
        return
    if args.floor:
        print(json.dumps(FLOORS[args.floor[0]](Path(args.floor[1]))))
        return

    load_before = os.getloadavg()
    src = instance(args.rows, size_mib)
    db_bytes = (src / "coolify" / "db" / "prod.db").stat().st_size
    values = int((src / "ready").read_text())

    floors = fresh_copy(src, "upgrade-floors")
    crypto = measure("crypto", src / "coolify")  # reads only
    rounds = [one_round(src, floors, args.keep, k % 2 == 1) for k in range(max(1, args.rounds))]
    shutil.rmtree(floors)
    load_after = os.getloadavg()
    # a round whose downtime ratio is the median (the upper of the two middle ones for an even
    # count): its figures and its phases are shown
    by_down = sorted(rounds, key=lambda r: r.downtime / r.floor)
    shown = by_down[len(by_down) // 2]
    up, phases, log_text = shown.up, shown.phases, shown.log_text
    backup, io, floor = shown.backup, shown.io, shown.floor
    elapsed, downtime = shown.elapsed, shown.downtime
    up_ratio = statistics.median(r.elapsed / r.floor for r in rounds)
    down_ratio = statistics.median(r.downtime / r.floor for r in rounds)

    print(
        f"instance: {values} encrypted values, database {db_bytes / MIB:.0f} MiB "
        f"({args.rows} demo units{f', padded to {size_mib} MiB' if size_mib else ''}); "
        f"{os.cpu_count()} cores; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    print(
        f"{len(rounds)} rounds: backup floor, I/O floor, then the upgrade in rounds 1, 3, ..; "
        "the upgrade first in rounds 2, 4, .."
    )
    print(
        f"{'round':<6} {'backup':>7} {'I/O':>7} {'floor':>7} {'upgrade':>8} {'x floor':>8} "
        f"{'downtime':>9} {'x floor':>8}"
    )
    for k, r in enumerate(rounds, 1):
        print(
            f"{k:<6} {r.backup['seconds']:7.2f} {r.io['seconds']:7.2f} {r.floor:7.2f} "
            f"{r.elapsed:8.2f} {r.elapsed / r.floor:7.2f}x {r.downtime:9.2f} "
            f"{r.downtime / r.floor:7.2f}x"
        )
    print(f"a median round ({rounds.index(shown) + 1}), its figures against its own floors:")
    rows = [
        (
            "backup floor: copy + fsync of the file",
            backup["seconds"],
            f"{db_bytes / MIB / backup['seconds']:.0f} MiB/s",
        ),
        (
            "I/O floor: read + write back every value",
            io["seconds"],
            f"{io['values'] / io['seconds']:.0f} values/s",
        ),
        (
            "bare crypto loop: decrypt + encrypt",
            crypto["seconds"],
            f"{crypto['values'] / crypto['seconds']:.0f} values/s",
        ),
        ("upgrade: process wall time", up.wall_s, ""),
        ("upgrade: the run's elapsed_s", elapsed, f"{values / elapsed:.0f} values/s"),
        ("upgrade: downtime_s (stopped -> started)", downtime, ""),
    ]
    print(f"{'':<44} {'seconds':>8}  {'x floor':>7}")
    for what, seconds, rate in rows:
        print(f"{what:<44} {seconds:8.2f}  {seconds / floor:6.2f}x  {rate}")
    print(
        f"medians of the {len(rounds)} rounds' ratios: upgrade {up_ratio:.2f}x (goal <= 2x: "
        f"{'met' if up_ratio <= 2 else 'not met'}), downtime {down_ratio:.2f}x (goal <= 1.5x: "
        f"{'met' if down_ratio <= 1.5 else 'not met'})"
    )
    print(
        f"peak RSS of the upgrades: {max(r.up.max_rss_mb for r in rounds):.0f} MB in the "
        f"largest process, {max(r.up.tree_pss_mb for r in rounds):.0f} MB proportional set size "
        f"of a process tree (sampled every {SAMPLE_S * 1000:.0f} ms)"
    )
    print(f"where the time went (from {up.log.name}):")
    print(f"  {'start-up: interpreter, imports, manifest':<58} {up.wall_s - elapsed:8.2f} s")
    for p in phases:
        inside = sum(s for _, _, s in p.passes)
        print(f"  {p.name:<58} {p.seconds:8.2f} s")
        for what, count, seconds in p.passes:
            print(f"    {what + ' (' + count + ')':<56} {seconds:8.1f} s")
        if p.passes:
            print(f"    {'between the passes':<56} {max(p.seconds - inside, 0):8.1f} s")
    checks = sum(1 for what, _, _ in (x for p in phases for x in p.passes) if "key" in what)
    print(f"  passes that check every value's key: {checks}")
    if "the data key is strong and holds every value: nothing to roll" in log_text:
        print(
            "  (roll-weak-key rolled nothing: its phase is the cost of a step with nothing to do)"
        )

    if args.five_m:
        big = instance(ROWS_5M, 0)
        inst5 = fresh_copy(big, "upgrade-5m")
        up5 = run_upgrade(inst5)
        shutil.rmtree(inst5)
        print(
            f"at 5M ({int((big / 'ready').read_text())} values): peak RSS {up5.max_rss_mb:.0f} MB "
            f"in the largest process, {up5.tree_pss_mb:.0f} MB PSS of the tree; "
            f"upgrade {up5.result['elapsed_s']:.0f} s"
        )
    if args.profile:
        inst_p = fresh_copy(src, "upgrade-profiled")
        subprocess.run(
            [sys.executable, __file__, "--profiled", str(inst_p), str(args.profile)], check=True
        )
        shutil.rmtree(inst_p)
        print(f"per encrypted value, in one upgrade (cProfile, one process: {args.profile}):")
        for what, n in per_value_counts(args.profile, values):
            print(f"  {what:<56} {n:6.2f}")
    if args.keep:
        print(f"kept: {WORK / 'upgrade-run'} (the last round's)")


if __name__ == "__main__":
    main()
