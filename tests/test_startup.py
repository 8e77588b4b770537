"""Start-up: a command imports its own module and what it uses, nothing more
(docs/performance.md, "Start-up"); the lazily built command tree is the whole one."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from coolify_migrate.cli import app, tree
from coolify_migrate.cli import commands as _every_command  # noqa: F401  (all declared)
from coolify_migrate.config import envfile
from support import SRC

_RUN_MAIN = """
import sys
{before}
sys.argv = ["coolify-migrate", *sys.argv[1:]]
from coolify_migrate.cli import main
try:
    main()
except SystemExit:
    pass
finally:
    sys.stderr.write("\\nFOUND " + " ".join(sorted({found})) + "\\n")
"""


_WHOLE_HELP = """
from coolify_migrate.cli import main
from coolify_migrate.cli import commands
main(["--help"])
"""


def _python(code: str, *args: str, check: bool = False, **env: str) -> Any:
    """``code`` run by a fresh interpreter that imports the package from the source tree."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=check,
        timeout=120,
    )


def _run_main(found: str, *args: str, before: str = "") -> list[str]:
    """What the expression ``found`` (names) holds once the command ends, run in a fresh
    interpreter after the code ``before``."""
    proc = _python(_RUN_MAIN.format(before=before, found=found), *args, DOCKER_HOST="")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("FOUND ")]
    assert lines, proc.stderr
    return lines[-1].split()[1:]


def loaded(*args: str) -> set[str]:
    """The modules a command has loaded when it ends, run in a fresh interpreter."""
    return set(_run_main("sys.modules", *args))


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in {"docker", "rich", "psycopg", "cryptography"}}


def _inside_apps(modules: set[str]) -> set[str]:
    """Modules inside an app's package (the package's own small module, read to find the app,
    aside): ``coolify_migrate.apps.redash.profile``, not ``coolify_migrate.apps.redash``."""
    return {m for m in modules if m.startswith("coolify_migrate.apps.") and m.count(".") >= 3}


def test_every_command_is_declared_where_the_tree_looks_for_it() -> None:
    registered = {info.name: info.callback for info in app.registered_commands}
    for group in app.registered_groups:
        assert group.typer_instance is not None
        callbacks = [c.callback for c in group.typer_instance.registered_commands]
        registered[group.name] = callbacks[0] if callbacks else None
    assert set(registered) == set(tree.MODULES), "add the command to cli.tree.MODULES"
    for name, callback in registered.items():
        assert callback is not None, name
        assert callback.__module__ == f"coolify_migrate.cli.{tree.MODULES[name]}", name


def test_the_root_help_built_lazily_is_the_whole_trees(cli: Any) -> None:
    """Every command declared (so typer builds them all) against none: the same help."""
    whole = _python(_WHOLE_HELP)
    assert whole.returncode == 0, whole.stderr
    lazy = cli("--help")
    assert lazy.returncode == 0, lazy.stderr
    assert lazy.stdout == whole.stdout
    assert "backup    Create, list, verify and prune database backups." in lazy.stdout
    assert "prepare-env" not in lazy.stdout  # hidden


def test_help_imports_no_app_and_nothing_heavy() -> None:
    mods = loaded("--help")
    assert not _heavy(mods), sorted(_heavy(mods))
    assert not _inside_apps(mods)
    assert "coolify_migrate.status" not in mods
    assert not {"hashlib", "hmac", "_hashlib"} & mods  # OpenSSL: a key's fingerprint loads it


def test_status_imports_its_own_command_and_app_only(tmp_path: Path, demo: Any) -> None:
    args = ("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none")
    mods = loaded(*args)
    assert "coolify_migrate.status" in mods
    assert "coolify_migrate.cli.core" in mods
    others = {"backup_cmds", "engine_cmds", "install_cmds", "secrets_cmds"}
    assert not {f"coolify_migrate.cli.{m}" for m in others} & mods
    assert "coolify_migrate.apps.coolify_v3.profile" in mods
    assert not {m for m in _inside_apps(mods) if m.startswith("coolify_migrate.apps.redash.")}
    assert not _heavy(mods), sorted(_heavy(mods))


def test_status_imports_nothing_it_does_not_use(demo: Any) -> None:
    """What was taken out of ``status``'s imports (docs/performance.md, "Start-up"): python-dotenv's
    package (its ``__init__`` imports ``logging`` and ``tempfile``; only its parser is loaded),
    ``string``, ``base64`` (the date-seeded key's test) and the release type (signatures only)."""
    mods = loaded("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none")
    assert "coolify_migrate.config.envfile" in mods
    removed = {"dotenv", "dotenv.main", "logging", "tempfile", "string", "base64"}
    removed |= {"coolify_migrate.core.release", "coolify_migrate.apps.coolify_v3.legacy_key"}
    assert not removed & mods, sorted(removed & mods)


_COLLECTIONS = """
import gc
{before}
runs = []
gc.callbacks.append(lambda phase, info: runs.append(phase) if phase == "start" else None)
import coolify_migrate.cli
gc.callbacks.clear()
print(len(runs), gc.isenabled(), gc.get_freeze_count())
"""


def _collections_while_importing(before: str = "") -> tuple[int, bool, int]:
    proc = _python(_COLLECTIONS.format(before=before), check=True)
    runs, enabled, frozen = proc.stdout.split()
    return int(runs), enabled == "True", int(frozen)


def test_the_command_lines_imports_run_without_the_cyclic_collector() -> None:
    """About 30 collections ran while click, typer and the CLI loaded, and freed nothing; now the
    collector is off until they are done, then on again, or still off if it was off. What the
    importing program had frozen stays frozen."""
    runs, enabled, frozen = _collections_while_importing()
    assert runs <= 2 and enabled and frozen == 0, (runs, enabled, frozen)
    assert _collections_while_importing("gc.disable()") == (0, False, 0)
    runs, enabled, frozen = _collections_while_importing("gc.freeze()")
    assert enabled and frozen > 1000, frozen


def test_the_dotenv_parser_is_dotenvs_and_the_package_still_imports_whole() -> None:
    """The parser loaded from its file is dotenv's own, and a later ``import dotenv`` gets its
    whole package."""
    proc = _python(
        "from coolify_migrate.config import envfile\n"
        "import dotenv, dotenv.parser, io\n"
        "print(envfile.parse_stream.__code__.co_filename == dotenv.parser.__file__)\n"
        "print(dotenv.dotenv_values(stream=io.StringIO('A=1')) == {'A': '1'})\n",
        check=True,
    )
    assert proc.stdout.split() == ["True", "True"]
    parsed = list(envfile.parse_stream(io.StringIO("A=1\n# c\nexport B='x y'\n")))
    assert [(b.key, b.value) for b in parsed] == [("A", "1"), (None, None), ("B", "x y")]


def test_status_runs_after_the_lazy_build(cli: Any, demo: Any) -> None:
    proc = cli("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["app"] == "coolify-v3"


_COUNT_DATACLASSES = """
import dataclasses
made = []
process = dataclasses._process_class
def counting(cls, *args, **kwargs):
    made.append(f"{cls.__module__}.{cls.__qualname__}")
    return process(cls, *args, **kwargs)
dataclasses._process_class = counting
"""


def test_status_defines_few_dataclasses(demo: Any) -> None:
    """A frozen dataclass costs about a millisecond to define (six methods generated and
    compiled); the records ``status`` only reads are NamedTuples (docs/performance.md,
    "Start-up"). The five left are mutable or take per-instance defaults."""
    args = ("status", "--data-dir", str(demo.data_dir), "--json", "--runtime", "none")
    made = _run_main("made", *args, before=_COUNT_DATACLASSES)
    assert "coolify_migrate.core.context.Context" in made  # the count is of the real run
    assert len(made) <= 5, made
