"""Coolify v3: its .env keys, encrypted columns, images, required stops and key handling.

Facts from shared/reference/coolify-v3.md. The app uses ``COOLIFY_SECRET_KEY_BETTER`` when set,
else ``COOLIFY_SECRET_KEY``. From 3.12.33 every container start re-encrypts the whole database
from KEY to BETTER whenever the two *differ* in its environment; so after a roll both must name
the new key (that is exactly what v3's own roll wrote inside the container), and the previous key
is kept as ``COOLIFY_SECRET_KEY_OLD_<ms>`` as v3 does.
"""

from __future__ import annotations

import functools
import re
import uuid
from pathlib import Path
from typing import Any

from packaging.version import Version

from coolify_migrate.apps.coolify_v3 import DEFAULT_DIR, ENV_FILE, installed_in
from coolify_migrate.core.app import (
    ContainerSpec,
    DerivedForm,
    EncryptedColumn,
    EnvFile,
    KeyCandidate,
    Profile,
    SecretSpec,
)
from coolify_migrate.core.codec import Codec
from coolify_migrate.core.context import Context
from coolify_migrate.core.output import Output
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Store

KEY = "COOLIFY_SECRET_KEY"
BETTER = "COOLIFY_SECRET_KEY_BETTER"
OLD = re.compile(r"COOLIFY_SECRET_KEY_OLD_(\d+)")
# 64 symbols, all safe for docker --env-file, Compose and sh: 32 of them carry 192 bits. Spelt
# out: ``string`` (its Template compiles a pattern at import) is a cost of every start otherwise.
KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


def new_key() -> Secret:
    import secrets  # a key is made by a roll or an install, not at every start

    return Secret("".join(secrets.choice(KEY_ALPHABET) for _ in range(32)))


@functools.cache
def _codec() -> Codec:
    """One AES-256-CTR codec for every profile object (it keeps a cipher per key), made when a
    value is first read: the ``cryptography`` import is not a cost of every start (``status``)."""
    from coolify_migrate.crypto.codecs import AesCtrJsonCodec

    return AesCtrJsonCodec()


class CoolifyV3(Profile):
    name = "coolify-v3"
    title = "Coolify v3"
    env_file = ENV_FILE
    default_dir = DEFAULT_DIR

    @property
    def codec(self) -> Codec:
        return _codec()

    # The 16 fields v3's own start-up roll (3.12.33+) re-encrypted, in its order.
    encrypted_columns = (
        EncryptedColumn("Secret", "value"),
        EncryptedColumn("ServiceSecret", "value"),
        EncryptedColumn("GitlabApp", "privateSshKey", nullable=True),
        EncryptedColumn("GitlabApp", "appSecret", nullable=True),
        EncryptedColumn("GithubApp", "clientSecret", nullable=True),
        EncryptedColumn("GithubApp", "webhookSecret", nullable=True),
        EncryptedColumn("GithubApp", "privateKey", nullable=True),
        EncryptedColumn("Database", "dbUserPassword", nullable=True),
        EncryptedColumn("Database", "rootUserPassword", nullable=True),
        EncryptedColumn("DatabaseSecret", "value"),
        EncryptedColumn("Wordpress", "ftpHostKey", nullable=True),
        EncryptedColumn("Wordpress", "ftpHostKeyPrivate", nullable=True),
        EncryptedColumn("Wordpress", "ftpPassword", nullable=True),
        EncryptedColumn("SshKey", "privateKey"),
        EncryptedColumn("DockerRegistry", "password", nullable=True),
        EncryptedColumn("Certificate", "key"),
        # The 43 fields of the legacy per-service tables that it missed (still live passwords).
        EncryptedColumn("Wordpress", "mysqlPassword", nullable=True, missed_by_app_roll=True),
        EncryptedColumn(
            "Wordpress", "mysqlRootUserPassword", nullable=True, missed_by_app_roll=True
        ),
        EncryptedColumn("PlausibleAnalytics", "password", missed_by_app_roll=True),
        EncryptedColumn("PlausibleAnalytics", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn(
            "PlausibleAnalytics", "secretKeyBase", nullable=True, missed_by_app_roll=True
        ),
        EncryptedColumn("Minio", "rootUserPassword", missed_by_app_roll=True),
        EncryptedColumn("Vscodeserver", "password", missed_by_app_roll=True),
        EncryptedColumn("Ghost", "defaultPassword", missed_by_app_roll=True),
        EncryptedColumn("Ghost", "mariadbPassword", missed_by_app_roll=True),
        EncryptedColumn("Ghost", "mariadbRootUserPassword", missed_by_app_roll=True),
        EncryptedColumn("MeiliSearch", "masterKey", missed_by_app_roll=True),
        EncryptedColumn("Umami", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn("Umami", "umamiAdminPassword", missed_by_app_roll=True),
        EncryptedColumn("Umami", "hashSalt", missed_by_app_roll=True),
        EncryptedColumn("Hasura", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn("Hasura", "graphQLAdminPassword", missed_by_app_roll=True),
        EncryptedColumn("Fider", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn("Fider", "jwtSecret", missed_by_app_roll=True),
        EncryptedColumn("Fider", "emailSmtpPassword", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("Fider", "emailMailgunApiKey", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("Moodle", "defaultPassword", missed_by_app_roll=True),
        EncryptedColumn("Moodle", "mariadbPassword", missed_by_app_roll=True),
        EncryptedColumn("Moodle", "mariadbRootUserPassword", missed_by_app_roll=True),
        EncryptedColumn("Appwrite", "opensslKeyV1", missed_by_app_roll=True),
        EncryptedColumn("Appwrite", "executorSecret", missed_by_app_roll=True),
        EncryptedColumn("Appwrite", "redisPassword", missed_by_app_roll=True),
        EncryptedColumn("Appwrite", "mariadbPassword", missed_by_app_roll=True),
        EncryptedColumn("Appwrite", "mariadbRootUserPassword", missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "secretKeyBase", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "defaultPassword", missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "emailSmtpPassword", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "mailgunApiKey", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("GlitchTip", "sendgridApiKey", nullable=True, missed_by_app_roll=True),
        EncryptedColumn("Searxng", "secretKey", missed_by_app_roll=True),
        EncryptedColumn("Searxng", "redisPassword", missed_by_app_roll=True),
        EncryptedColumn("Weblate", "adminPassword", missed_by_app_roll=True),
        EncryptedColumn("Weblate", "postgresqlPassword", missed_by_app_roll=True),
        EncryptedColumn("Taiga", "secretKey", missed_by_app_roll=True),
        EncryptedColumn("Taiga", "erlangSecret", missed_by_app_roll=True),
        EncryptedColumn("Taiga", "djangoAdminPassword", missed_by_app_roll=True),
        EncryptedColumn("Taiga", "rabbitMQPassword", missed_by_app_roll=True),
        EncryptedColumn("Taiga", "postgresqlPassword", missed_by_app_roll=True),
    )
    db_relative = "db/prod.db"
    docker_volume = "coolify-db"
    containers = ("coolify", "coolify-fluentbit")
    main_container = "coolify"
    image_repo = "ghcr.io/coollabsio/coolify"
    fallback_repos = ("coollabsio/coolify",)
    required_stops = (Version("3.12.33"),)
    withdrawn = (Version("3.12.34"),)  # advertised and withdrawn within half an hour
    version_env_key = "TAG"
    secrets = (
        SecretSpec(
            "data-key",
            "encrypts every secret the app stores, and signs its login sessions",
            env_keys=(BETTER, KEY),  # from 3.12.33 BETTER when set; up to 3.12.32 only KEY
            keep_as="COOLIFY_SECRET_KEY_OLD_{ms}",  # the name v3's own roll used
            writes_all=True,  # KEY != BETTER makes every 3.12.33+ start re-encrypt everything
            encrypts=True,
            length=32,  # AES-256: the 32 characters' bytes are the key
            alphabet=KEY_ALPHABET,
            new_length=32,
            rolling_ends="every user logs in again (sessions are signed with the key)",
        ),
    )
    min_version = Version("3.0.0")
    app_env_pattern = re.compile(r"TAG|COOLIFY_[A-Z0-9_]*")
    instance_key = "COOLIFY_APP_ID"

    # The key printed in public write-ups of the date-seeded scheme (the example).
    compromised_keys = ("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1",)
    repairs_rerolls = True

    def recognises(self, directory: Path) -> bool:
        return installed_in(directory)

    def derived_form(self, key: Secret) -> DerivedForm | None:
        from coolify_migrate.apps.coolify_v3 import legacy_key  # base64: not at every start

        if legacy_key.digest_prefix(key.reveal()) is None:
            return None
        return DerivedForm("base64 of 24 hex digits", "base64 of hex digits", 96.0)

    def find_seed(
        self, key: Secret, centres_ms: list[int], window_ms: int, *, workers: int, out: Any
    ) -> tuple[int | None, int]:
        # a process pool and base64: not at every start
        from coolify_migrate.apps.coolify_v3 import legacy_key, seed_search

        prefix = legacy_key.digest_prefix(key.reveal())
        if prefix is None:
            return None, 0
        found = seed_search.search(prefix, centres_ms, window_ms, workers=workers, out=out)
        return found.seed_ms, found.searched

    def reroll_plaintext(self, stored: str, old_key: Secret) -> bytes | None:
        from coolify_migrate.apps.coolify_v3 import node_roll  # only a repair reproduces v3's roll

        return node_roll.reroll_plaintext(stored, old_key.encode())

    container_dotenv = "/app/.env"

    def app_keys(self, process_env: dict[str, str], dotenv: dict[str, str]) -> list[KeyCandidate]:
        # The app's start loads /app/.env without overriding its environment, then uses BETTER
        # when set, else KEY: the first candidate is the key it encrypts with.
        seen = {**dotenv, **process_env}
        found: list[KeyCandidate] = []
        effective = seen.get(BETTER) or seen.get(KEY)
        if effective:
            found.append(KeyCandidate("app container (the key it uses)", Secret(effective)))
        for where, values in (("container /app/.env", dotenv), ("container env", process_env)):
            olds = sorted((k for k in values if OLD.fullmatch(k)), key=lambda k: -int(k[23:]))
            names = [BETTER, KEY, *olds]
            for name in names:
                if values.get(name):
                    found.append(KeyCandidate(f"{where} {name}", Secret(values[name])))
        return found

    def start_hazard(
        self, process_env: dict[str, str], dotenv: dict[str, str], version: str | None
    ) -> str | None:
        try:
            if version and Version(version) < Version("3.12.33"):
                return None  # before 3.12.33 the app only reads KEY
        except ValueError:
            pass
        seen = {**dotenv, **process_env}
        if not seen.get(BETTER) or seen.get(BETTER) != seen.get(KEY):
            return (
                f"{KEY} and {BETTER} differ in what the app would start with: Coolify from "
                "3.12.33 re-encrypts every secret from one to the other at each start"
            )
        return None

    def start_safe(self, env: EnvFile, key: Secret, version: str | None = None) -> bool:
        if env.secret(KEY) != key:
            return False
        try:
            before_roll = Version(version or env.get(self.version_env_key) or "") < Version(
                "3.12.33"
            )
        except ValueError:
            before_roll = False  # unknown version: be strict
        better = env.secret(BETTER)
        # up to 3.12.32 the app reads KEY only; from 3.12.33 KEY and BETTER must agree
        return (before_roll and better is None) or better == key

    def install_evidence_sql(self) -> list[tuple[str, str]]:
        return [
            ("first Setting.createdAt", 'SELECT MIN("createdAt") FROM "Setting"'),
            ("first User.createdAt", 'SELECT MIN("createdAt") FROM "User"'),
        ]

    def steps(self) -> list[Any]:
        from coolify_migrate.apps.coolify_v3 import steps as coolify_v3_steps

        return list(coolify_v3_steps.steps())

    def open_store(self, ctx: Context) -> Store:
        from coolify_migrate import instance
        from coolify_migrate.stores.sqlite import SQLiteStore

        return SQLiteStore(instance.database_path(ctx))

    def create_demo(
        self,
        data_dir: Path,
        db_path: Path,
        *,
        version: str,
        installed_at_ms: int,
        rows: int,
        out: Output | None = None,
    ) -> Any:
        from coolify_migrate.apps.coolify_v3 import demo as coolify_v3_demo

        return coolify_v3_demo.create(
            data_dir,
            version=version,
            installed_at_ms=installed_at_ms,
            rows=rows,
            db_path=db_path,
            out=out,
            record=False,  # the command needs the count only: memory stays flat
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

    def generated_env(self, env: Any = None) -> dict[str, str]:
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
