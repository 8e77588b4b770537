"""The local test images behave like Coolify v3 where the upgrade tests depend on it.

Built by scripts/docker-rig.sh: tagged like the real images, healthy (or, for 3.12.37, never),
and from 3.12.33 re-encrypting every secret whenever COOLIFY_SECRET_KEY_BETTER is empty or
differs from COOLIFY_SECRET_KEY, which with no MAC turns the data into well-formed garbage.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.crypto.codecs import AesCtrJsonCodec, DecryptError, decrypt_text

V3 = AesCtrJsonCodec()


def start_app(docker: Any, image: str, env_file: Path, db_dir: Path | None) -> None:
    """Run the app as v3's installer did, with its database in the coolify-db volume."""
    docker("volume", "create", "coolify-db")
    if db_dir is not None:
        docker(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "coolify-db:/app/db",
            "-v",
            f"{db_dir}:/src:ro",
            "--entrypoint",
            "cp",
            image,
            "/src/prod.db",
            "/app/db/prod.db",
        )
    docker(
        "run",
        "-d",
        "--name",
        "coolify",
        "--network",
        "none",
        "--env-file",
        str(env_file),
        "-v",
        "coolify-db:/app/db",
        image,
    )


def wait_health(docker: Any, want: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = docker("inspect", "-f", "{{.State.Health.Status}}", "coolify").stdout.strip()
        if state == want:
            return state
        time.sleep(0.3)
    return state


def copy_db_out(docker: Any, image: str, dest: Path) -> Path:
    dest.mkdir()
    docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "coolify-db:/app/db",
        "-v",
        f"{dest}:/out",
        "--entrypoint",
        "cp",
        image,
        "/app/db/prod.db",
        "/out/prod.db",
    )
    return dest / "prod.db"


def encrypted_values(db: Path) -> dict[tuple[str, str, str], str]:
    conn = sqlite3.connect(db)
    try:
        found = {}
        for col in CoolifyV3.encrypted_columns:
            rows = conn.execute(f'SELECT id, "{col.column}" FROM "{col.table}"')
            for row_id, value in rows:
                if value is not None:
                    found[(col.table, col.column, row_id)] = value
        return found
    finally:
        conn.close()


def decrypts(demo: DemoInstance, where: tuple[str, str, str], value: str) -> bool:
    try:
        return decrypt_text(V3, demo.key, value) == demo.plaintexts[where]
    except DecryptError:
        return False


@pytest.mark.parametrize("version", ["3.12.32", "3.12.33", "3.12.35", "3.12.36", "3.12.37"])
def test_images_are_tagged_and_labelled_like_the_real_ones(
    docker: Any, test_images: Any, version: str
) -> None:
    doc = json.loads(docker("image", "inspect", test_images.app(version)).stdout)[0]
    assert f"ghcr.io/coollabsio/coolify:{version}" in doc["RepoTags"]
    config = doc["Config"]
    assert config["Labels"]["org.opencontainers.image.version"] == version
    assert f"COOLIFY_TEST_APP_VERSION={version}" in config["Env"]
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/healthy"]
    assert config["Healthcheck"]["Interval"] == 1_000_000_000
    assert config["Entrypoint"] == ["/app/start.sh"]


def test_the_base_image_runs_busybox_and_sqlite3(docker: Any, test_images: Any) -> None:
    proc = docker(
        "run",
        "--rm",
        "--network",
        "none",
        test_images.base,
        "sh",
        "-c",
        "sqlite3 :memory: 'select 6*7' && env | grep -c PATH && test -x /bin/sleep",
    )
    assert proc.stdout.split() == ["42", "1"]


def test_a_first_start_creates_the_database_and_becomes_healthy(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "TAG=3.12.36\nCOOLIFY_SECRET_KEY=" + "k" * 32 + "\n"
        "COOLIFY_SECRET_KEY_BETTER=" + "k" * 32 + "\n"
    )
    start_app(docker, test_images.app("3.12.36"), env_file, None)
    assert wait_health(docker, "healthy") == "healthy"
    db = copy_db_out(docker, test_images.base, tmp_path / "out")
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {c.table for c in CoolifyV3.encrypted_columns} | {"Setting", "User"} <= tables
    begun = time.monotonic()
    docker("stop", "coolify")
    assert time.monotonic() - begun < 5  # SIGTERM ends it at once


def test_3_12_33_with_only_the_old_key_garbles_every_secret(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None, demo: DemoInstance
) -> None:
    before = encrypted_values(demo.db_path)
    assert all(decrypts(demo, k, v) for k, v in before.items() if k in demo.plaintexts)
    start_app(docker, test_images.app("3.12.33"), demo.data_dir / ".env", demo.db_path.parent)
    assert wait_health(docker, "healthy") == "healthy"
    assert "re-encrypting everything" in docker("logs", "coolify").stdout
    # Like v3, it wrote its environment to the container's own /app/.env.
    inside = docker("exec", "coolify", "cat", "/app/.env", record=False).stdout
    assert "COOLIFY_SECRET_KEY=" in inside and "COOLIFY_TEST_" not in inside
    docker("stop", "coolify")

    after = encrypted_values(copy_db_out(docker, test_images.base, tmp_path / "out"))
    assert after.keys() == before.keys()
    rolled = {c.label for c in CoolifyV3.encrypted_columns if not c.missed_by_app_roll}
    garbled = 0
    for where, value in after.items():
        if f"{where[0]}.{where[1]}" not in rolled or not V3.is_encrypted(before[where]):
            assert value == before[where], where  # legacy fields and non-ciphertext: untouched
            continue
        assert V3.is_encrypted(value)  # still well-formed ...
        assert len(json.loads(value)["content"]) == len(json.loads(before[where])["content"])
        if demo.plaintexts[where]:
            assert not decrypts(demo, where, value), where  # ... but garbage
            garbled += 1
    assert garbled > 10


@pytest.mark.parametrize("version", ["3.12.32", "3.12.36"])
def test_no_roll_when_keys_agree_or_before_3_12_33(
    tmp_path: Path,
    docker: Any,
    test_images: Any,
    clean_coolify: None,
    demo: DemoInstance,
    version: str,
) -> None:
    env = EnvFile.load(demo.data_dir / ".env")
    if version != "3.12.32":
        env.set("COOLIFY_SECRET_KEY_BETTER", demo.key)  # KEY == BETTER: nothing to roll
        env.save()
    before = encrypted_values(demo.db_path)
    start_app(docker, test_images.app(version), demo.data_dir / ".env", demo.db_path.parent)
    assert wait_health(docker, "healthy") == "healthy"
    assert "re-encrypting" not in docker("logs", "coolify").stdout
    docker("stop", "coolify")
    assert encrypted_values(copy_db_out(docker, test_images.base, tmp_path / "out")) == before


def test_the_never_healthy_image_turns_unhealthy(
    tmp_path: Path, docker: Any, test_images: Any, clean_coolify: None
) -> None:
    env_file = tmp_path / ".env"
    key = "k" * 32
    env_file.write_text(f"COOLIFY_SECRET_KEY={key}\nCOOLIFY_SECRET_KEY_BETTER={key}\n")
    start_app(docker, test_images.never_healthy, env_file, None)
    assert wait_health(docker, "unhealthy") == "unhealthy"
    running = docker("inspect", "-f", "{{.State.Running}}", "coolify").stdout.strip()
    assert running == "true"  # it runs; it just never passes its healthcheck
