"""Read commands never write: the whole data directory hashes the same before and after."""

from __future__ import annotations

import pytest
from checks import active_key
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from support import REPO, CliRunner, LeakGuard, tree_hash

MANIFEST = str(REPO / "versions.json")


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--json"],
        ["status"],
        ["plan", "--manifest", MANIFEST],
        ["plan", "--manifest", MANIFEST, "--json", "--to", "3.12.35"],
        ["backup", "list", "--json"],
        ["backup", "list"],
        ["secrets", "verify"],
        ["secrets", "verify", "--json"],
    ],
)
def test_read_commands_never_write(
    demo: DemoInstance, cli: CliRunner, leak_guard: LeakGuard, command: list[str]
) -> None:
    # give the instance some history first: a backup and tool state
    r = cli("backup", "create", "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert r.returncode == 0, r.stderr
    leak_guard.register(active_key(demo.data_dir))
    before = tree_hash(demo.data_dir)
    r = cli(*command, "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert r.returncode == 0, r.stderr
    assert tree_hash(demo.data_dir) == before
