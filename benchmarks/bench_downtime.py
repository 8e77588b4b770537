"""Downtime of a real upgrade on the test rig's engine, beside its backup and re-encryption times.

    DOCKER_HOST=unix:///... COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1 \\
        .venv/bin/python benchmarks/bench_downtime.py [--large-mib 1024] [--skip-large]

For each size (the small demo instance, then one padded to at least ``--large-mib`` MiB), it puts
a legacy 3.12.32 instance into the ``coolify-db`` volume, starts the 3.12.32 test container the way
v3's installer did (``--env-file``), and runs the upgrade to 3.12.36 in-process with the Docker
runtime. The times come from the run's own output, stamped as it happens:

- downtime: the old container reported stopped -> the new one reported healthy;
- backup: stopped -> the backup's report line (the engine backs up right after the stop);
- re-encryption: the ``re-encrypting`` progress opened -> the ``reading back`` one closed (the
  values re-encrypted, then every one read back before the commit).

Goal: downtime <= backup + re-encryption + 5 s. The padding sits in a table without encrypted
columns (like v3's build logs), so it weighs on the backup, not on the re-encryption. The padded
database is cached under ``.bench/``. The engine must be disposable: the benchmark removes
containers named ``coolify*`` and the volume ``coolify-db``.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.context import Context
from coolify_migrate.core.output import Progress

CACHE = REPO / ".bench"
DEMO_MS = 1689674942980
OLD_IMAGE = "ghcr.io/coollabsio/coolify:3.12.32"
GOAL_SLACK_S = 5.0


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")
    return proc


@dataclass
class TimedOutput:
    """An Output that stamps everything the run says, to the millisecond."""

    marks: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def _mark(self, kind: str, **fields: Any) -> None:
        self.marks.append((time.time(), kind, fields))

    def info(self, msg: str) -> None:
        self._mark("info", msg=msg)

    def warn(self, msg: str) -> None:
        self._mark("warn", msg=msg)

    def event(self, kind: str, **fields: Any) -> None:
        self._mark(kind, **fields)

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress:
        self._mark("progress-open", phase=phase)
        out = self

        class _Timed:
            def advance(self, n: int = 1) -> None:
                pass

            def close(self) -> None:
                out._mark("progress-close", phase=phase)

        return _Timed()

    def runtime_at(self, action: str, *, last: bool = False) -> float:
        found: list[float] = [
            float(f["at_ms"]) / 1000
            for _, k, f in self.marks
            if k == "runtime" and f.get("action") == action
        ]
        if not found:
            raise SystemExit(f"the run reported no runtime '{action}' event")
        return found[-1] if last else found[0]

    def first(self, kind: str, pred: Any) -> float:
        for t, k, f in self.marks:
            if k == kind and pred(f):
                return t
        raise SystemExit(f"the run reported no {kind} matching the benchmark's pattern")


def engine_ready() -> str | None:
    if not os.environ.get("DOCKER_HOST"):
        return "DOCKER_HOST is not set (start the rig: scripts/docker-rig.sh start)"
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    if docker("info", check=False).returncode != 0:
        return f"the engine at {os.environ['DOCKER_HOST']} does not answer"
    if os.environ.get("COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE") != "1":
        return "the engine is not marked disposable (COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1)"
    return None


def clean() -> None:
    names = [
        n
        for n in docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        if n.startswith("coolify")
    ]
    if names:
        docker("rm", "-f", *names)
    if "coolify-db" in docker("volume", "ls", "-q").stdout.split():
        docker("volume", "rm", "-f", "coolify-db")


def pad(db_path: Path, mib: int) -> None:
    """Rows of 1 MiB text in a table without encrypted columns, until the file holds ``mib``."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:  # v3's own BuildLog table (its real columns), which the upgrade never reads
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
            'INSERT INTO "BuildLog" ("id", "applicationId", "buildId", "line", "time") '
            "SELECT 'pad-' || x, NULL, 'pad-build', hex(randomblob(524288)), x FROM n",
            (mib,),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def prepare(label: str, rows: int, pad_mib: int, mountpoint: Path, data_dir: Path) -> int:
    """A legacy instance: .env in data_dir, prod.db in the volume. Returns the DB's size."""
    cached = CACHE / f"downtime-{label}"  # named apart from other benchmarks' caches
    if not (cached / "prod.db").exists():
        if cached.exists():
            shutil.rmtree(cached)
        cached.mkdir(parents=True)
        create(
            cached / "inst",
            version="3.12.32",
            installed_at_ms=DEMO_MS,
            rows=rows,
            db_path=cached / "prod.db",
        )
        if pad_mib:
            pad(cached / "prod.db", pad_mib)
        shutil.copy2(cached / "inst" / ".env", cached / "env")
    data_dir.mkdir(parents=True)
    shutil.copy2(cached / "env", data_dir / ".env")
    shutil.copyfile(cached / "prod.db", mountpoint / "prod.db")
    return (mountpoint / "prod.db").stat().st_size


def run_once(label: str, rows: int, pad_mib: int, work: Path) -> dict[str, float]:
    from coolify_migrate.engine import upgrade
    from coolify_migrate.runtimes.docker import DockerRuntime

    clean()
    docker("volume", "create", "coolify-db")
    mountpoint = Path(json.loads(docker("volume", "inspect", "coolify-db").stdout)[0]["Mountpoint"])
    data_dir = work / label / "coolify"
    size = prepare(label, rows, pad_mib, mountpoint, data_dir)
    docker(
        "run",
        "-d",
        "--name",
        "coolify",
        "--env-file",
        str(data_dir / ".env"),
        "-v",
        "coolify-db:/app/db",
        "--network",
        "none",
        "--restart",
        "unless-stopped",
        OLD_IMAGE,
    )
    out = TimedOutput()
    ctx = Context(
        profile=CoolifyV3(),
        data_dir=data_dir,
        out=out,
        runtime_name="docker",
        runtime_factory=lambda c: DockerRuntime(c, network="none"),
    )
    started = time.time()
    result = upgrade.upgrade(ctx, to="3.12.36", manifest_src=str(REPO / "versions.json"))
    total = time.time() - started
    if result.get("outcome") != "upgraded":
        raise SystemExit(f"{label}: the upgrade did not complete: {result}")
    stopped = out.runtime_at("stopped")
    healthy = out.runtime_at("healthy", last=True)
    backup_done = out.first("info", lambda f: str(f.get("msg", "")).startswith("backup "))
    re_open = out.first("progress-open", lambda f: f.get("phase") == "re-encrypting")
    re_close = out.first("progress-close", lambda f: f.get("phase") == "reading back")
    clean()
    return {
        "db_mib": size / (1 << 20),
        "downtime": healthy - stopped,
        "backup": backup_done - stopped,
        "reencrypt": re_close - re_open,
        "total": total,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mib", type=int, default=1024, help="padding of the large instance")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    why = engine_ready()
    if why:
        print(f"skipped: {why}")
        return 0
    if docker("image", "inspect", OLD_IMAGE, check=False).returncode != 0:
        print("building the test images (scripts/docker-rig.sh images)")
        subprocess.run(["bash", str(REPO / "scripts" / "docker-rig.sh"), "images"], check=True)
    sizes = [("demo", 5, 0)] + (
        [] if args.skip_large else [(f"large-{args.large_mib}", 200, args.large_mib)]
    )
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"cm-bench-{os.getpid()}"
    failed = False
    print(
        f"{'instance':<12} {'db MiB':>8} {'downtime s':>11} {'backup s':>9} {'re-encrypt s':>13} "
        f"{'goal s':>7}  ok"
    )
    try:
        for label, rows, pad_mib in sizes:
            r = run_once(label, rows, pad_mib, work)
            goal = r["backup"] + r["reencrypt"] + GOAL_SLACK_S
            ok = r["downtime"] <= goal
            failed |= not ok
            print(
                f"{label:<12} {r['db_mib']:>8.1f} {r['downtime']:>11.2f} {r['backup']:>9.2f} "
                f"{r['reencrypt']:>13.2f} {goal:>7.2f}  {'yes' if ok else 'NO'}",
                flush=True,
            )
    finally:
        clean()
        shutil.rmtree(work, ignore_errors=True)
    print(f"goal: downtime <= backup + re-encryption + {GOAL_SLACK_S:g} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
