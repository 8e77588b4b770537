"""Instances as v3's own 3.12.33 roll left them, on the private engine: a container whose rolled
key only its /app/.env knows (adopted, restarts change nothing), and a rollback to the copy Coolify
made before its roll on a container started with KEY != BETTER (two restarts later, every value is
intact). The first roll is replayed with Node's crypto (tests/v3_replay.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import v3_replay
from checks import assert_all_decrypt, stored_values
from coolify_migrate.apps.coolify_v3.demo import DemoInstance, create
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

pytestmark = pytest.mark.slow

DEMO_MS = 1689674942980
ROLL_MS = 1_690_000_000_000
APP = "ghcr.io/coollabsio/coolify"
V3 = AesCtrJsonCodec()
ROLLED = {c.label for c in v3_replay.ROLLED}
OLD = re.compile(r"COOLIFY_SECRET_KEY_OLD_\d+")


def _instance(tmp_path: Path, docker: Any, guard: Any) -> DemoInstance:
    docker("volume", "create", "coolify-db")
    mount = Path(json.loads(docker("volume", "inspect", "coolify-db").stdout)[0]["Mountpoint"])
    made = create(
        tmp_path / "coolify",
        version="3.12.33",
        installed_at_ms=DEMO_MS,
        rows=1,
        db_path=mount / "prod.db",
    )
    guard.register(made.key)
    return made


def _container(docker: Any, demo: DemoInstance, app_env: str, tmp_path: Path) -> None:
    """The app container as v3's roll left it: started with the host .env, its rolled key only
    in its own /app/.env (created, not started: its next start is what matters)."""
    docker(
        "create",
        "--name",
        "coolify",
        "--env-file",
        str(demo.data_dir / ".env"),
        "-v",
        "coolify-db:/app/db",
        "--network",
        "none",
        "--label",
        "coolify.managed=true",
        f"{APP}:3.12.33",
    )
    staged = tmp_path / "app.env"
    staged.write_text(app_env)
    docker("cp", str(staged), "coolify:/app/.env")
    staged.unlink()


def _cli_env(docker_host: str) -> dict[str, str]:
    return {
        "DOCKER_HOST": docker_host,
        "COOLIFY_MIGRATE_DOCKER_NETWORK": "none",
        "COOLIFY_MIGRATE_HEALTH_TIMEOUT": "60",
    }


def _host_key(demo: DemoInstance) -> Secret:
    env = EnvFile.load(demo.data_dir / ".env")
    key, better = env.get("COOLIFY_SECRET_KEY"), env.get("COOLIFY_SECRET_KEY_BETTER")
    assert key and key == better, "the host .env names one key as KEY and BETTER"
    return Secret(key)


def _rolled_fields_decrypt(demo: DemoInstance, key: Secret) -> int:
    stored = stored_values(demo.db_path)
    checked = 0
    for where, plain in demo.plaintexts.items():
        if plain is None or f"{where[0]}.{where[1]}" not in ROLLED:
            continue
        assert V3.decrypt_bytes(key, stored[where] or "") == plain.encode(), where
        checked += 1
    return checked


def test_a_container_that_rolled_its_own_key_is_adopted_and_restarts_change_nothing(
    tmp_path: Path,
    docker: Any,
    docker_host: str,
    test_images: Any,
    clean_coolify: None,
    leak_guard: Any,
    cli: Any,
) -> None:
    demo = _instance(tmp_path, docker, leak_guard)
    inside = new_key()
    leak_guard.register(inside)
    v3_replay.roll(demo.db_path, demo.key.reveal(), inside.reveal(), at_ms=ROLL_MS)
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("TAG", "3.12.33")
    env.save()
    _container(
        docker, demo, v3_replay.app_env(inside.reveal(), demo.key.reveal(), ROLL_MS), tmp_path
    )
    before = stored_values(demo.db_path)

    args = ("--runtime", "docker", "--data-dir", str(demo.data_dir))
    proc = cli("restart", *args, env=_cli_env(docker_host))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "adopted the data key" in proc.stdout
    assert _host_key(demo) == inside, "the key only the container knew is now on the host"
    olds = [v for _, v in EnvFile.load(demo.data_dir / ".env").matching(OLD)]
    assert demo.key.reveal() in olds, "the previous key stays on the host"
    assert stored_values(demo.db_path) == before, "adoption re-encrypts nothing"
    assert _rolled_fields_decrypt(demo, inside) > 10

    for _ in range(2):
        again = cli("restart", *args, env=_cli_env(docker_host))
        assert again.returncode == 0, again.stdout + again.stderr
        assert stored_values(demo.db_path) == before
    logs = docker("logs", "coolify").stdout
    assert "re-encrypting" not in logs, "no start re-rolled anything"


def test_rollback_to_coolifys_own_copy_on_a_3_12_33_container_survives_two_restarts(
    tmp_path: Path,
    docker: Any,
    docker_host: str,
    test_images: Any,
    clean_coolify: None,
    leak_guard: Any,
    cli: Any,
) -> None:
    demo = _instance(tmp_path, docker, leak_guard)
    inside = new_key()
    leak_guard.register(inside)
    copy = v3_replay.roll(demo.db_path, demo.key.reveal(), inside.reveal(), at_ms=ROLL_MS, tag=None)
    assert copy.name == f"prod.db_{ROLL_MS}"  # 3.12.33's own name for it
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("TAG", "3.12.33")
    env.save()
    assert env.get("COOLIFY_SECRET_KEY_BETTER") is None  # KEY != BETTER for a 3.12.33 start
    _container(
        docker, demo, v3_replay.app_env(inside.reveal(), demo.key.reveal(), ROLL_MS), tmp_path
    )

    args = ("--runtime", "docker", "--data-dir", str(demo.data_dir))
    proc = cli("rollback", "--to", copy.name, "--yes", *args, env=_cli_env(docker_host))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _host_key(demo) == demo.key, "KEY = BETTER = the key the copy needs"
    for _ in range(2):
        again = cli("restart", *args, env=_cli_env(docker_host))
        assert again.returncode == 0, again.stdout + again.stderr
    assert "re-encrypting" not in docker("logs", "coolify").stdout
    assert assert_all_decrypt(demo, demo.key) == demo.value_count
    state = json.loads(docker("inspect", "coolify", record=False).stdout)[0]["State"]
    assert state["Health"]["Status"] == "healthy"


def test_a_start_that_would_re_roll_is_refused(
    tmp_path: Path,
    docker: Any,
    docker_host: str,
    test_images: Any,
    clean_coolify: None,
    leak_guard: Any,
) -> None:
    """The runtime's own guard, below every command: a 3.12.33 container whose KEY != BETTER is
    never started, whoever asks."""
    from coolify_migrate.core.context import Context
    from coolify_migrate.core.errors import RuntimeProblem
    from coolify_migrate.runtimes.docker import DockerRuntime

    demo = _instance(tmp_path, docker, leak_guard)
    _container(docker, demo, "", tmp_path)
    before = stored_values(demo.db_path)
    os.environ.setdefault("DOCKER_HOST", docker_host)
    rt = DockerRuntime(
        Context(profile=CoolifyV3(), data_dir=demo.data_dir, runtime_name="docker"), network="none"
    )
    with pytest.raises(RuntimeProblem, match="re-encrypts every secret"):
        rt._start_and_wait(rt.main_container())
    assert stored_values(demo.db_path) == before
    assert "re-encrypting" not in docker("logs", "coolify").stdout
