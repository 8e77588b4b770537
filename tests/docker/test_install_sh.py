"""scripts/install.sh against the test rig's engine, with the locally built images.

Each test runs the real script in a subprocess: a fresh install, a re-run, ``-f`` over a legacy
3.12.32 instance (the key is rolled, the container is recreated from the host .env, and a
``docker restart`` afterwards changes nothing, which was v3's bug), an upgrade whose image never
becomes healthy, and a target image that cannot be obtained.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from checks import assert_all_decrypt
from coolify_migrate.apps.coolify_v3.demo import DemoInstance, create
from coolify_migrate.config import signing
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.secret import Secret

REPO = Path(__file__).resolve().parent.parent.parent
DEMO_MS = 1689674942980  # the legacy demo's install time (tests/conftest.py)
DEMO_KEY = "YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"  # the key v3's old installer derived from it
LeakGuard = Any  # tests/conftest.py's leak guard (this directory's conftest shadows that module)
INSTALL = REPO / "scripts" / "install.sh"
MANIFEST = REPO / "versions.json"
OLD = re.compile(r"COOLIFY_SECRET_KEY_OLD_\d+")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tool_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv for the session: the first install.sh run fills it from this checkout."""
    return tmp_path_factory.mktemp("venv") / "venv"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_install(
    docker_host: str, venv: Path, guard: LeakGuard, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "COOLIFY_MIGRATE_DOCKER_NETWORK": "none",
        "COOLIFY_MIGRATE_MIN_FREE_MB": "64",
        "COOLIFY_MIGRATE_HEALTH_TIMEOUT": "60",
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", str(INSTALL), *args, "--venv", str(venv)],
        capture_output=True,
        text=True,
        env=full,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    guard.record("install.sh stdout", proc.stdout)
    guard.record("install.sh stderr", proc.stderr)
    return proc


def inspect(docker: Any, name: str) -> dict[str, Any]:
    # record=False: the environment in it holds the data key
    out = docker("inspect", name, record=False).stdout
    doc: dict[str, Any] = json.loads(out)[0]
    return doc


def wait_healthy(docker: Any, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(docker, name)["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} did not become healthy")


def container_names(docker: Any) -> list[str]:
    return sorted(docker("ps", "-a", "--format", "{{.Names}}").stdout.split())


def env_of(doc: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in doc["Config"]["Env"])


def legacy_instance(data_dir: Path, docker: Any, guard: LeakGuard) -> DemoInstance:
    """What v3's installer left: weak key in the host .env, the DB in the coolify-db volume, and a
    3.12.32 container started with --env-file (no labels of this tool)."""
    docker("volume", "create", "coolify-db")
    mountpoint = Path(json.loads(docker("volume", "inspect", "coolify-db").stdout)[0]["Mountpoint"])
    made = create(
        data_dir, version="3.12.32", installed_at_ms=DEMO_MS, rows=2, db_path=mountpoint / "prod.db"
    )
    guard.register(made.key)
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
        "--label",
        "coolify.managed=true",
        "ghcr.io/coollabsio/coolify:3.12.32",
    )
    wait_healthy(docker, "coolify")
    return made


def test_fresh_install_starts_the_app_and_a_rerun_changes_no_secret(
    tmp_path: Path,
    docker: Any,
    test_images: Any,
    clean_coolify: None,
    tool_venv: Path,
    docker_host: str,
    leak_guard: LeakGuard,
) -> None:
    data_dir = tmp_path / "coolify"
    first = run_install(
        docker_host,
        tool_venv,
        leak_guard,
        "-f",
        "--dir",
        str(data_dir),
        "--manifest",
        str(MANIFEST),
    )
    assert first.returncode == 0, first.stderr
    env = EnvFile.load(data_dir / ".env")
    key = env.get("COOLIFY_SECRET_KEY")
    assert key and len(key) == 32 and env.get("COOLIFY_SECRET_KEY_BETTER") == key
    leak_guard.register(key)
    assert re.search(r"^Coolify answers at http://\S+:3000 ", first.stdout, re.M), first.stdout
    (log,) = (data_dir / ".coolify-migrate").glob("install-*.log")
    leak_guard.record("install log", log.read_text())  # what the terminal showed, no secret
    assert "done: Coolify 3.12.36" in log.read_text()
    assert env.get("TAG") == "3.12.36"
    assert (data_dir / ".env").stat().st_mode & 0o777 == 0o600
    doc = inspect(docker, "coolify")
    assert doc["Config"]["Image"] == "ghcr.io/coollabsio/coolify:3.12.36"
    assert doc["State"]["Health"]["Status"] == "healthy"
    assert env_of(doc)["COOLIFY_SECRET_KEY"] == key == env_of(doc)["COOLIFY_SECRET_KEY_BETTER"]
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert doc["Config"]["Labels"]["coolify-migrate.app"] == "coolify-v3"
    assert "re-encrypting" not in docker("logs", "coolify").stdout
    before = sha(data_dir / ".env")

    again = run_install(
        docker_host,
        tool_venv,
        leak_guard,
        "-f",
        "--dir",
        str(data_dir),
        "--manifest",
        str(MANIFEST),
    )
    assert again.returncode == 0, again.stderr
    assert sha(data_dir / ".env") == before  # no secret changed, nothing added
    assert not list(data_dir.glob(".env-*"))  # so no backup copy either
    assert inspect(docker, "coolify")["Id"] == doc["Id"]  # the running app was left alone
    assert container_names(docker) == ["coolify"]

    restarted = run_install(docker_host, tool_venv, leak_guard, "-r", "--dir", str(data_dir))
    assert restarted.returncode == 0, restarted.stderr
    now = inspect(docker, "coolify")
    assert now["Id"] == doc["Id"] and now["State"]["StartedAt"] != doc["State"]["StartedAt"]
    assert now["State"]["Health"]["Status"] == "healthy"
    assert sha(data_dir / ".env") == before

    # Coolify v3's settings flags: written to .env (a copy of the old file kept), the key kept,
    # the tool kept (same version: no pip), the app recreated with them
    logo = "https://example.com/logo.png"
    flags = ("-n", "-a", "-i", logo, "-x", "latest", "--dir", str(data_dir))
    configured = run_install(
        docker_host, tool_venv, leak_guard, "-f", *flags, "--manifest", str(MANIFEST)
    )
    assert configured.returncode == 0, configured.stderr
    assert "already in" in configured.stdout and "installing" not in configured.stdout
    env = EnvFile.load(data_dir / ".env")
    settings = {
        "COOLIFY_APP_ID": "",
        "COOLIFY_AUTO_UPDATE": "true",
        "COOLIFY_WHITE_LABELED": "true",
        "COOLIFY_WHITE_LABELED_ICON": logo,
    }
    assert {k: env.get(k) for k in settings} == settings
    assert env.get("COOLIFY_SECRET_KEY") == key == env.get("COOLIFY_SECRET_KEY_BETTER")
    assert len(list(data_dir.glob(".env-*"))) == 1
    running = env_of(inspect(docker, "coolify"))
    assert {k: running.get(k) for k in settings} == settings
    assert len(list((data_dir / ".coolify-migrate").glob("install-*.log"))) == 3


def test_force_over_a_legacy_instance_rolls_the_key_and_survives_docker_restart(
    tmp_path: Path,
    docker: Any,
    test_images: Any,
    clean_coolify: None,
    tool_venv: Path,
    docker_host: str,
    leak_guard: LeakGuard,
) -> None:
    data_dir = tmp_path / "coolify"
    made = legacy_instance(data_dir, docker, leak_guard)
    # A key this old installer never wrote: install.sh adds it, keeping a copy of the old file.
    text = (data_dir / ".env").read_text()
    (data_dir / ".env").write_text(text.replace("COOLIFY_AUTO_UPDATE=false\n", ""))
    old_env = (data_dir / ".env").read_bytes()

    r = run_install(
        docker_host,
        tool_venv,
        leak_guard,
        "-f",
        "--dir",
        str(data_dir),
        "--manifest",
        str(MANIFEST),
        "-d",
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "+ install.sh:" in r.stderr  # -d traces every command (none of them holds a secret)
    env = EnvFile.load(data_dir / ".env")
    new = env.get("COOLIFY_SECRET_KEY")
    assert new
    leak_guard.register(new)
    assert new != DEMO_KEY and env.get("COOLIFY_SECRET_KEY_BETTER") == new
    assert [v for _, v in env.matching(OLD)] == [DEMO_KEY]  # the old key is kept, as v3 does
    assert env.get("TAG") == "3.12.36" and env.get("COOLIFY_AUTO_UPDATE") == "false"
    backups = list(data_dir.glob(".env-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == old_env
    assert backups[0].stat().st_mode & 0o777 == 0o600

    doc = inspect(docker, "coolify")
    assert doc["Config"]["Image"] == "ghcr.io/coollabsio/coolify:3.12.36"
    assert env_of(doc)["COOLIFY_SECRET_KEY"] == new == env_of(doc)["COOLIFY_SECRET_KEY_BETTER"]
    assert doc["Config"]["Labels"]["coolify.managed"] == "true"  # the old container's labels
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert any(m.get("Name") == "coolify-db" for m in doc["Mounts"])
    assert container_names(docker) == ["coolify"]  # the previous one was removed after success
    db_path = made.db_path
    assert assert_all_decrypt(made, Secret(new), db_path) == made.value_count

    docker("restart", "coolify")  # what broke every v3 instance after 3.12.33
    wait_healthy(docker, "coolify")
    assert "re-encrypting" not in docker("logs", "coolify").stdout
    assert assert_all_decrypt(made, Secret(new), db_path) == made.value_count


def _manifest_with(tmp_path: Path, version: str, image: str) -> Path:
    doc = json.loads(MANIFEST.read_text())
    doc["releases"].append(
        {
            "version": version,
            "image": image,
            "fallbacks": [],
            "required_stop": False,
            "withdrawn": False,
            "notes": "test",
        }
    )
    doc["latest"] = version
    path = tmp_path / "versions.json"
    path.write_text(json.dumps(doc))
    return path


def _sign_and_pin(tmp_path: Path, manifest: Path, data_dir: Path) -> None:
    doc = json.loads(manifest.read_text())
    doc["manifest_version"] = 1
    manifest.write_text(json.dumps(doc))
    private, public = tmp_path / "signing.pem", tmp_path / "signing.pub"
    signing.generate_keypair(private, public)
    signing.sign_file(manifest, private)
    state = data_dir / ".coolify-migrate"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / signing.TRUSTED_KEY_FILE).write_bytes(public.read_bytes())


def test_an_image_that_never_becomes_healthy_leaves_the_old_version_running(
    tmp_path: Path,
    docker: Any,
    test_images: Any,
    clean_coolify: None,
    tool_venv: Path,
    docker_host: str,
    leak_guard: LeakGuard,
) -> None:
    data_dir = tmp_path / "coolify"
    made = legacy_instance(data_dir, docker, leak_guard)
    manifest = _manifest_with(tmp_path, "3.12.37", "ghcr.io/coollabsio/coolify:3.12.37")
    db_before = sha(made.db_path)
    env_before = sha(data_dir / ".env")

    r = run_install(
        docker_host,
        tool_venv,
        leak_guard,
        "-f",
        "--dir",
        str(data_dir),
        "--manifest",
        str(manifest),
        env={"COOLIFY_MIGRATE_HEALTH_TIMEOUT": "6"},
    )
    assert r.returncode == 5, r.stderr
    assert "rolled back to 3.12.32" in r.stderr
    doc = inspect(docker, "coolify")
    assert doc["Config"]["Image"] == "ghcr.io/coollabsio/coolify:3.12.32"
    assert doc["State"]["Running"] and doc["State"]["Health"]["Status"] == "healthy"
    assert env_of(doc)["COOLIFY_SECRET_KEY"] == DEMO_KEY
    assert container_names(docker) == ["coolify"]  # the 3.12.37 container is gone
    assert sha(made.db_path) == db_before  # the database is byte for byte what it was
    assert sha(data_dir / ".env") == env_before
    assert assert_all_decrypt(made, Secret(DEMO_KEY)) == made.value_count


def test_an_image_that_cannot_be_obtained_is_refused_before_anything_stops(
    tmp_path: Path,
    docker: Any,
    test_images: Any,
    clean_coolify: None,
    tool_venv: Path,
    docker_host: str,
    leak_guard: LeakGuard,
) -> None:
    data_dir = tmp_path / "coolify"
    made = legacy_instance(data_dir, docker, leak_guard)
    # A loopback registry where nothing listens: the pull is refused at once, never leaves the host.
    # An image outside the app's repository is only taken from a signed manifest: the test signs
    # it with a key pinned in the instance's state, as an operator of such a mirror would.
    manifest = _manifest_with(tmp_path, "3.12.38", "127.0.0.1:5999/coolify:3.12.38")
    _sign_and_pin(tmp_path, manifest, data_dir)
    started = inspect(docker, "coolify")["State"]["StartedAt"]
    db_before, env_before = sha(made.db_path), sha(data_dir / ".env")

    r = run_install(
        docker_host,
        tool_venv,
        leak_guard,
        "-f",
        "--dir",
        str(data_dir),
        "--manifest",
        str(manifest),
    )
    assert r.returncode == 3, r.stderr
    assert "cannot obtain the image for 3.12.38" in r.stderr and "nothing was stopped" in r.stderr
    state = inspect(docker, "coolify")["State"]
    assert state["Running"] and state["StartedAt"] == started  # never stopped
    assert sha(made.db_path) == db_before and sha(data_dir / ".env") == env_before
    assert not (data_dir / ".coolify-migrate" / "journal.json").exists()
