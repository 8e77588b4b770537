"""The package's layers: every import between its parts points down, and its name does not collide
with PyPA's ``installer`` when both live in one environment."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, SRC

PACKAGE = "coolify_migrate"
ROOT = SRC / PACKAGE
# Bottom to top; a part may import only parts of a lower layer (docs/architecture.md, "Layers").
LAYERS = [
    {"core"},
    {"crypto", "config", "state", "stores"},
    {"instance"},
    {"runtimes", "secrets"},
    {"backups", "status"},
    {"engine"},
    {"apps"},
    {"cli"},
    {"__main__"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else rel[0][:-3]


def edges() -> set[tuple[str, str, str]]:
    """(importing part, imported part, where) for every import, function-level ones included."""
    found = set()
    for path in ROOT.rglob("*.py"):
        here = _part(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                bits = name.split(".")
                if bits[0] != PACKAGE or len(bits) < 2 or bits[1] == here:
                    continue
                if (ROOT / bits[1]).is_dir() or (ROOT / f"{bits[1]}.py").is_file():
                    found.add((here, bits[1], f"{path.relative_to(SRC)}:{node.lineno}"))
    return found


def test_every_part_has_a_layer() -> None:
    parts = {_part(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert parts == set(RANK), "add the new part to LAYERS and to docs/architecture.md"


def test_imports_only_point_down() -> None:
    wrong = sorted(
        f"{src} -> {dst} ({where})" for src, dst, where in edges() if RANK[src] <= RANK[dst]
    )
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_the_core_names_no_app_and_no_cli() -> None:
    below_apps = {p for p, r in RANK.items() if r < RANK["apps"]}
    wrong = [e for e in edges() if e[0] in below_apps and e[1] in ("apps", "cli")]
    assert not wrong


def test_the_check_itself_catches_an_upward_import(tmp_path: Path) -> None:
    """A sanity check of ``edges``: an import written into core is seen as pointing up."""
    probe = ROOT / "core" / "_layer_probe.py"
    probe.write_text("from coolify_migrate.apps import get_profile\n", encoding="utf-8")
    try:
        assert ("core", "apps") in {(s, d) for s, d, _ in edges()}
    finally:
        probe.unlink()


@pytest.mark.slow
def test_installs_beside_pypas_installer_without_shadowing_it(tmp_path: Path) -> None:
    """PyPA's ``installer`` and this package in one virtualenv: both import as themselves."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    got = subprocess.run([*pip, "installer"], capture_output=True, text=True)
    if got.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"pip could not install PyPA's installer: {got.stderr[-500:]}")
        pytest.skip("PyPI is not reachable")
    subprocess.run([*pip, "--no-deps", str(REPO)], check=True, capture_output=True)
    probe = (
        "import installer, installer.destinations, coolify_migrate, coolify_migrate.core.secret;"
        "print(installer.__file__); print(coolify_migrate.__file__)"
    )
    out = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pypa, ours = out.stdout.split()
    assert "site-packages/installer/" in pypa and "site-packages/coolify_migrate/" in ours
    assert (venv / "bin" / "coolify-migrate").exists()
