"""Start-up cost of the CLI, as a ratio to a bare interpreter measured in the same run.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--rev GIT_REV ...]

Runs ``python -c pass``, ``coolify-migrate --help`` and ``coolify-migrate status --json
--runtime none`` (against a demo instance in a temp dir) N times each, interleaved so that
machine noise hits them alike, and prints the median wall times, each as a ratio to the bare
interpreter and as milliseconds over it. The command line's frameworks are timed alone beside them
(``import click``, ``import typer`` with rich hidden as ``cli`` hides it, and with rich): what
any command built on them costs at least. Goal (issue 13): each command within the bare interpreter
+ 100 ms; the ``goal`` lines say, from the medians measured, whether it is met. Each run's CPU time
(user + system, from the kernel's accounting of the child) is shown too: on a machine other work
keeps busy, the wall time includes waiting for a core, the CPU time much less so. It also reports
whether the Docker SDK, rich or cryptography was imported by those two commands: the Docker SDK
must only be imported when the docker runtime is used. It asserts nothing (tests/test_startup.py
checks the imports). ``--rev`` times the two commands with the package as it was at another
revision too, in the same rounds: a before/after from one run.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_MS = 100.0  # over the bare interpreter


def cli_command() -> list[str]:
    """The installed console script when there is one (what users run), else ``-m coolify_migrate``."""
    script = Path(sys.executable).with_name("coolify-migrate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "coolify_migrate"]


def time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


_NO_RICH = "import sys; sys.modules['rich'] = None; "

_LOADED = """
import sys
sys.argv = ["coolify-migrate", *sys.argv[1:]]
from coolify_migrate.cli import main
try:
    main()
except SystemExit:
    pass
finally:
    sys.stderr.write("\\nLOADED " + " ".join(sorted({m.split(".")[0] for m in sys.modules})) + "\\n")
"""


def imported_modules(args: list[str], env: dict[str, str]) -> set[str]:
    """Top-level packages a command has loaded when it ends (``sys.modules``: an import that was
    attempted and refused, as typer's of rich, is not counted)."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    for line in proc.stderr.splitlines():
        if line.startswith("LOADED "):
            return set(line.split()[1:])
    return set()


def _verdict(over_ms: float) -> str:
    return "met" if over_ms <= GOAL_MS else "NOT met"


def checkout(rev: str, into: Path) -> Path:
    """The package's sources at git revision ``rev`` (``git archive``), for --rev."""
    into.mkdir(parents=True)
    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "installer"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(into, filter="data")
    return into / "installer"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--rev",
        action="append",
        default=[],
        help="also time both commands with the package as it was at this git revision "
        "(repeatable), in the same interleaved rounds",
    )
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    # Compiled bytecode as an installed package has it (pip writes .pyc files): without it every
    # run compiles the package's sources again. The cache lives in the temp dir, so nothing is
    # written into the source tree; the warm-up runs below fill it.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "installer"),
        "DOCKER_HOST": "",
        "PYTHONPYCACHEPREFIX": str(tmp / "pycache"),
    }
    for name in ("PYTHONDONTWRITEBYTECODE", "COOLIFY_MIGRATE_TRACE", "COOLIFY_MIGRATE_CRASH_AT"):
        env.pop(name, None)
    try:
        demo = tmp / "coolify"
        subprocess.run(
            [
                *cli_command(),
                "demo",
                "--data-dir",
                str(demo),
                "--installed-at",
                "2023-07-18T10:09:02.980Z",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        commands = {
            "coolify-migrate --help": [*cli_command(), "--help"],
            "coolify-migrate status": [
                *cli_command(),
                "status",
                "--data-dir",
                str(demo),
                "--json",
                "--runtime",
                "none",
            ],
        }
        # what the command line's frameworks cost on their own (rich hidden, as cli does)
        frameworks = {
            "import click": [sys.executable, "-c", "import click"],
            "import typer (no rich)": [sys.executable, "-c", _NO_RICH + "import typer"],
            "import typer (with rich)": [sys.executable, "-c", "import typer"],
        }
        cases = {
            name: (argv, env)
            for name, argv in {
                "python -c pass": [sys.executable, "-c", "pass"],
                **commands,
                **frameworks,
            }.items()
        }
        for i, rev in enumerate(opts.rev):
            there = {**env, "PYTHONPATH": str(checkout(rev, tmp / f"rev{i}"))}
            for name, argv in commands.items():
                cases[f"{name} @ {rev}"] = (argv, there)
        for argv, case_env in cases.values():  # warm the page cache and .pyc files
            time_once(argv, case_env)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(opts.runs):
            for name, (argv, case_env) in cases.items():
                wall, used = time_once(argv, case_env)
                samples[name].append(wall)
                cpu[name].append(used)

        base = statistics.median(samples["python -c pass"])
        cpu_base = statistics.median(cpu["python -c pass"])
        print(f"runs per command: {opts.runs} (interleaved); python {sys.version.split()[0]}")
        print(
            f"{'command':<40} {'median ms':>10} {'min ms':>8} {'ratio':>7} {'over python':>12}"
            f" {'cpu ms':>7} {'cpu over':>9}"
        )
        for name, times in samples.items():
            med = statistics.median(times)
            over = (med - base) * 1000
            used = statistics.median(cpu[name])
            print(
                f"{name:<40} {med * 1000:>10.1f} {min(times) * 1000:>8.1f} {med / base:>6.1f}x "
                f"{over:>+9.1f} ms {used * 1000:>7.1f} {(used - cpu_base) * 1000:>+6.1f} ms"
            )
        # By the medians; by the fastest runs too, which a busy machine disturbs least.
        fastest = min(samples["python -c pass"])
        for name in [n for n in cases if n.startswith("coolify-migrate")]:
            over = (statistics.median(samples[name]) - base) * 1000
            best = (min(samples[name]) - fastest) * 1000
            used = (statistics.median(cpu[name]) - cpu_base) * 1000
            print(
                f"goal python + {GOAL_MS:.0f} ms, {name}: {_verdict(over)} by the medians "
                f"({over:+.1f} ms), {_verdict(best)} by the fastest runs ({best:+.1f} ms), "
                f"{_verdict(used)} by the CPU time ({used:+.1f} ms)"
            )

        for label, args in [
            ("--help", ["--help"]),
            ("status", ["status", "--data-dir", str(demo), "--json", "--runtime", "none"]),
        ]:
            mods = imported_modules(args, env)
            print(
                f"{label}: imports docker: {'YES' if 'docker' in mods else 'no'}; "
                f"rich: {'yes' if 'rich' in mods else 'no'}; "
                f"typer: {'yes' if 'typer' in mods else 'no'}; "
                f"cryptography: {'yes' if 'cryptography' in mods else 'no'}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
