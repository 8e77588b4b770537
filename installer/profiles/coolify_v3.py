"""Coolify v3: its .env keys, encrypted columns, images, required stops and key handling.

Facts from shared/reference/coolify-v3.md. The app uses ``COOLIFY_SECRET_KEY_BETTER`` when set,
else ``COOLIFY_SECRET_KEY``. From 3.12.33 every container start re-encrypts the whole database
from KEY to BETTER whenever the two *differ* in its environment; so after a roll both must name
the new key (that is exactly what v3's own roll wrote inside the container), and the previous key
is kept as ``COOLIFY_SECRET_KEY_OLD_<ms>`` as v3 does.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from pathlib import Path
from typing import Any

from packaging.version import Version

from installer.crypto.codecs import CoolifyV3Codec
from installer.envfile import EnvFile
from installer.profiles import ContainerSpec, EncryptedColumn, KeyCandidate, Profile
from installer.secret import Secret

KEY = "COOLIFY_SECRET_KEY"
BETTER = "COOLIFY_SECRET_KEY_BETTER"
OLD = re.compile(r"COOLIFY_SECRET_KEY_OLD_(\d+)")
# 64 symbols, all safe for docker --env-file, Compose and sh: 32 of them carry 192 bits.
KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


def new_key() -> Secret:
    return Secret("".join(secrets.choice(KEY_ALPHABET) for _ in range(32)))


class CoolifyV3(Profile):
    name = "coolify-v3"
    title = "Coolify v3"
    codec = CoolifyV3Codec()
    encrypted_columns = (
        EncryptedColumn("Secret", "value"),
        EncryptedColumn("ServiceSecret", "value"),
        EncryptedColumn("GitlabApp", "privateSshKey", pem=True),
        EncryptedColumn("GitlabApp", "appSecret"),
        EncryptedColumn("GithubApp", "clientSecret"),
        EncryptedColumn("GithubApp", "webhookSecret"),
        EncryptedColumn("GithubApp", "privateKey", pem=True),
        EncryptedColumn("Database", "dbUserPassword"),
        EncryptedColumn("Database", "rootUserPassword"),
        EncryptedColumn("DatabaseSecret", "value"),
        EncryptedColumn("Wordpress", "ftpHostKey"),
        EncryptedColumn("Wordpress", "ftpHostKeyPrivate", pem=True),
        EncryptedColumn("Wordpress", "ftpPassword", nullable=True),
        EncryptedColumn("SshKey", "privateKey", pem=True),
        EncryptedColumn("DockerRegistry", "password"),
        EncryptedColumn("Certificate", "key", pem=True),
    )
    db_relative = "db/prod.db"
    docker_volume = "coolify-db"
    containers = ("coolify", "coolify-fluentbit")
    main_container = "coolify"
    image_repo = "ghcr.io/coollabsio/coolify"
    fallback_repos = ("coollabsio/coolify",)
    required_stops = (Version("3.12.33"),)
    version_env_key = "TAG"
    secret_env_pattern = re.compile(r"COOLIFY_SECRET_KEY(_BETTER|_OLD_\d+)?")
    key_length = 32
    min_version = Version("3.0.0")
    app_env_pattern = re.compile(r"TAG|COOLIFY_[A-Z0-9_]*")

    def active_key(self, env: EnvFile) -> KeyCandidate | None:
        for name in (BETTER, KEY):
            value = env.secret(name)
            if value:
                return KeyCandidate(name, value)
        return None

    def key_candidates(self, env: EnvFile) -> list[KeyCandidate]:
        found: list[KeyCandidate] = []
        for name in (BETTER, KEY):
            value = env.secret(name)
            if value:
                found.append(KeyCandidate(name, value))
        olds = sorted(env.matching(OLD), key=lambda kv: -int(OLD.fullmatch(kv[0]).group(1)))  # type: ignore[union-attr]
        found.extend(KeyCandidate(k, Secret(v)) for k, v in olds if v)
        unique: list[KeyCandidate] = []
        for cand in found:
            if all(cand.key != u.key for u in unique):
                unique.append(cand)
        return unique

    def promote_key(self, env: EnvFile, new: Secret, old: Secret | None, at_ms: int) -> None:
        if old is not None and old != new:
            kept = any(Secret(v) == old for _, v in env.matching(OLD))
            if not kept:
                env.set(f"COOLIFY_SECRET_KEY_OLD_{at_ms}", old)
        env.set(KEY, new)
        env.set(BETTER, new)

    def new_key(self) -> Secret:
        return new_key()

    def install_key_state(self, env: EnvFile, key: Secret) -> None:
        env.set(KEY, key)
        env.set(BETTER, key)

    def install_evidence_sql(self) -> list[tuple[str, str]]:
        return [
            ("first Setting.createdAt", 'SELECT MIN("createdAt") FROM "Setting"'),
            ("first User.createdAt", 'SELECT MIN("createdAt") FROM "User"'),
        ]

    def steps(self) -> list[Any]:
        from installer.profiles import coolify_v3_steps

        return list(coolify_v3_steps.steps())

    def create_demo(
        self, data_dir: Path, db_path: Path, *, version: str, installed_at_ms: int, rows: int
    ) -> Any:
        from installer.profiles import coolify_v3_demo

        return coolify_v3_demo.create(
            data_dir, version=version, installed_at_ms=installed_at_ms, rows=rows, db_path=db_path
        )

    def container_spec(self) -> ContainerSpec:
        # What v3's installer ran, reduced to what the app needs to start: its database volume,
        # the Docker socket it deploys through, and the UI port. The letsencrypt/ssl/logs volumes
        # are created by the app itself when it first needs them.
        return ContainerSpec(
            name=self.main_container,
            volumes={self.docker_volume: "/app/db"},
            labels={"coolify.managed": "true", "coolify-migrate.app": self.name},
            network="coolify-infra",
            ports={"3000/tcp": 3000},
            binds={"/var/run/docker.sock": "/var/run/docker.sock"},
        )

    def generated_env(self) -> dict[str, str]:
        key = new_key().reveal()
        return {
            "COOLIFY_APP_ID": str(uuid.uuid4()),
            KEY: key,
            BETTER: key,
            "COOLIFY_DATABASE_URL": "file:../db/prod.db",
            "COOLIFY_HOSTED_ON": "docker",
            "COOLIFY_WHITE_LABELED": "false",
            "COOLIFY_WHITE_LABELED_ICON": "",
            "COOLIFY_AUTO_UPDATE": "false",
        }
