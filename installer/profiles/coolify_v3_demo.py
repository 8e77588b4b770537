"""A realistic legacy Coolify v3 instance, for the demo, the tests and the benchmarks.

It writes what the pre-2023-07-14 installer left behind: a ``.env`` whose ``COOLIFY_SECRET_KEY``
is derived from the install time (and whose mtime is that time), and a ``prod.db`` with the ten
tables that hold encrypted columns (plus ``Setting`` and ``User``), every secret encrypted in the
v3 format. Values are realistic: PEM private keys, passwords, tokens, unicode, an encrypted empty
string (v3 encrypts trimmed whitespace to empty content) and NULL where the schema allows.
"""

from __future__ import annotations

import os
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from installer.crypto.codecs import CoolifyV3Codec, v3_trim
from installer.crypto.legacy_key import date_seeded_key
from installer.secret import Secret

# Schema after Coolify v3's Prisma migrations, reduced to the columns that matter here.
SCHEMA = """
CREATE TABLE "Setting" ("id" TEXT PRIMARY KEY, "fqdn" TEXT, "isRegistrationEnabled" BOOLEAN NOT NULL DEFAULT 0,
  "arch" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "User" ("id" TEXT PRIMARY KEY, "email" TEXT NOT NULL UNIQUE, "type" TEXT NOT NULL,
  "password" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "Secret" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "value" TEXT NOT NULL,
  "isBuildSecret" BOOLEAN NOT NULL DEFAULT 0, "isPRMRSecret" BOOLEAN NOT NULL DEFAULT 0,
  "applicationId" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "ServiceSecret" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "value" TEXT NOT NULL,
  "serviceId" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "GitlabApp" ("id" TEXT PRIMARY KEY, "oauthId" INTEGER NOT NULL, "groupName" TEXT,
  "deployKeyId" INTEGER, "privateSshKey" TEXT, "publicSshKey" TEXT, "webhookToken" TEXT,
  "appId" TEXT, "appSecret" TEXT, "gitSourceId" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "GithubApp" ("id" TEXT PRIMARY KEY, "name" TEXT, "appId" INTEGER, "installationId" INTEGER,
  "clientId" TEXT, "clientSecret" TEXT, "webhookSecret" TEXT, "privateKey" TEXT,
  "gitSourceId" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "Database" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "publicPort" INTEGER,
  "defaultDatabase" TEXT, "type" TEXT, "version" TEXT, "dbUser" TEXT, "dbUserPassword" TEXT,
  "rootUser" TEXT, "rootUserPassword" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "DatabaseSecret" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "value" TEXT NOT NULL,
  "databaseId" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "Wordpress" ("id" TEXT PRIMARY KEY, "extraConfig" TEXT, "tablePrefix" TEXT,
  "mysqlUser" TEXT, "mysqlDatabase" TEXT, "ftpEnabled" BOOLEAN NOT NULL DEFAULT 0, "ftpUser" TEXT,
  "ftpPassword" TEXT, "ftpPublicPort" INTEGER, "ftpHostKey" TEXT, "ftpHostKeyPrivate" TEXT,
  "serviceId" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "SshKey" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "privateKey" TEXT NOT NULL,
  "teamId" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "DockerRegistry" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "url" TEXT NOT NULL,
  "username" TEXT, "password" TEXT, "isSystemWide" BOOLEAN NOT NULL DEFAULT 0, "teamId" TEXT,
  "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
CREATE TABLE "Certificate" ("id" TEXT PRIMARY KEY, "key" TEXT NOT NULL, "cert" TEXT NOT NULL,
  "teamId" TEXT, "createdAt" DATETIME NOT NULL, "updatedAt" DATETIME NOT NULL);
"""

UNICODE_SAMPLES = [
    "pässwörd-ßü",
    "密码🔑秘密",
    "пароль-ключ",
    "ḱéý·with spaces inside",
    "emoji 🚀✨",
]
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class DemoInstance:
    data_dir: Path
    db_path: Path
    key: Secret
    installed_at_ms: int
    version: str
    # (table, column, id) -> plaintext (None for SQL NULL)
    plaintexts: dict[tuple[str, str, str], str | None] = field(default_factory=dict)

    @property
    def value_count(self) -> int:
        return sum(1 for v in self.plaintexts.values() if v is not None)


def _pem_pool(rng: random.Random) -> dict[str, list[str]]:
    nopw = serialization.NoEncryption()
    rsa_keys = [
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, nopw
        )
        .decode()
        for _ in range(2)
    ]
    ssh_keys = [
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, nopw)
        .decode()
        for _ in range(3)
    ]
    ec_keys = [
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopw)
        .decode()
        for _ in range(2)
    ]
    return {"rsa": rsa_keys, "ssh": ssh_keys, "ec": ec_keys}


def _cuid(rng: random.Random) -> str:
    return "cl" + "".join(rng.choice(_ALNUM[:36].lower()) for _ in range(23))


def _password(rng: random.Random, n: int = 24) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def _rows(
    rng: random.Random, n: int, pems: dict[str, list[str]]
) -> Iterator[tuple[str, dict[str, object], list[str]]]:
    """Yields (table, row, encrypted column names) for a scaled instance."""
    pick = rng.choice
    for i in range(n):
        app = _cuid(rng)
        for j, (name, value) in enumerate(
            [
                ("DATABASE_URL", f"postgres://app:{_password(rng)}@db:5432/app"),
                ("API_TOKEN", "ghp_" + _password(rng, 36)),
                ("GREETING", UNICODE_SAMPLES[i % len(UNICODE_SAMPLES)] if i % 2 == 0 else "   "),
            ]
        ):
            yield (
                "Secret",
                {
                    "id": _cuid(rng),
                    "name": name,
                    "value": value,
                    "isBuildSecret": j == 1,
                    "applicationId": app,
                },
                ["value"],
            )
        yield (
            "ServiceSecret",
            {
                "id": _cuid(rng),
                "name": "POSTGRES_PASSWORD",
                "value": _password(rng),
                "serviceId": _cuid(rng),
            },
            ["value"],
        )
        yield (
            "GitlabApp",
            {
                "id": _cuid(rng),
                "oauthId": 1000 + i,
                "groupName": f"group{i}",
                "privateSshKey": pick(pems["ssh"]),
                "appId": _password(rng, 64),
                "appSecret": _password(rng, 64),
                "gitSourceId": _cuid(rng),
            },
            ["privateSshKey", "appSecret"],
        )
        yield (
            "GithubApp",
            {
                "id": _cuid(rng),
                "name": f"coolify-{i}",
                "appId": 200000 + i,
                "installationId": 3000000 + i,
                "clientId": "Iv1." + _password(rng, 16),
                "clientSecret": _password(rng, 40).lower(),
                "webhookSecret": _password(rng, 32),
                "privateKey": pick(pems["rsa"]),
                "gitSourceId": _cuid(rng),
            },
            ["clientSecret", "webhookSecret", "privateKey"],
        )
        yield (
            "Database",
            {
                "id": _cuid(rng),
                "name": f"db-{i}",
                "type": "postgresql",
                "version": "14",
                "dbUser": "app",
                "dbUserPassword": _password(rng),
                "rootUser": "postgres",
                "rootUserPassword": _password(rng, 32),
            },
            ["dbUserPassword", "rootUserPassword"],
        )
        yield (
            "DatabaseSecret",
            {
                "id": _cuid(rng),
                "name": "PGDATA_OPTS",
                "value": f"--locale=C.UTF-8 {i}",
                "databaseId": _cuid(rng),
            },
            ["value"],
        )
        yield (
            "Wordpress",
            {
                "id": _cuid(rng),
                "tablePrefix": "wp_",
                "ftpEnabled": i % 2 == 0,
                "ftpUser": f"ftp{i}",
                "ftpPassword": _password(rng) if i % 2 == 0 else None,
                "ftpHostKey": pick(pems["ssh"]),
                "ftpHostKeyPrivate": pick(pems["ssh"]),
                "serviceId": _cuid(rng),
            },
            ["ftpHostKey", "ftpHostKeyPrivate", "ftpPassword"],
        )
        yield (
            "SshKey",
            {"id": _cuid(rng), "name": f"server-{i}", "privateKey": pick(pems["ssh"])},
            ["privateKey"],
        )
        yield (
            "DockerRegistry",
            {
                "id": _cuid(rng),
                "name": f"registry-{i}",
                "url": "ghcr.io",
                "username": f"bot{i}",
                "password": "ghp_" + _password(rng, 36),
            },
            ["password"],
        )
        yield (
            "Certificate",
            {
                "id": _cuid(rng),
                "key": pick(pems["ec"]),
                "cert": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
            },
            ["key"],
        )


def create(
    data_dir: Path,
    *,
    version: str,
    installed_at_ms: int,
    rows: int = 5,
    seed: int | None = None,
    db_path: Path | None = None,
) -> DemoInstance:
    """Write the instance. The caller checks that the directory holds no instance yet."""
    codec = CoolifyV3Codec()
    key = Secret(date_seeded_key(installed_at_ms))
    rng = random.Random(seed if seed is not None else installed_at_ms)
    db_path = db_path or data_dir / "db" / "prod.db"
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    demo = DemoInstance(data_dir, db_path, key, installed_at_ms, version)

    tmp = db_path.with_name(db_path.name + ".creating")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        _fill(conn, rng, demo, codec, key, rows)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.chmod(tmp, 0o644)
    os.replace(tmp, db_path)
    _write_env(data_dir / ".env", version, key, installed_at_ms, rng)
    return demo


def _fill(
    conn: sqlite3.Connection,
    rng: random.Random,
    demo: DemoInstance,
    codec: CoolifyV3Codec,
    key: Secret,
    rows: int,
) -> None:
    ts = demo.installed_at_ms
    if True:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        conn.execute(
            'INSERT INTO "Setting" VALUES (?, NULL, 1, ?, ?, ?)', ("0", os.uname().machine, ts, ts)
        )
        conn.execute(
            'INSERT INTO "User" VALUES (?, ?, ?, ?, ?, ?)',
            (
                _cuid(rng),
                "admin@example.com",
                "email",
                "$2b$10$" + _password(rng, 53),
                ts + 61_000,
                ts + 61_000,
            ),
        )
        pems = _pem_pool(rng)
        for table, row, enc_cols in _rows(rng, max(rows, 1), pems):
            stamp = ts + 120_000 + rng.randrange(10_000_000)
            row = {**row, "createdAt": stamp, "updatedAt": stamp}
            for col in enc_cols:
                plain = row[col]
                demo.plaintexts[(table, col, str(row["id"]))] = (
                    None if plain is None else v3_trim(str(plain))
                )
                if plain is not None:
                    row[col] = codec.encrypt(key, str(plain))
            cols = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join("?" for _ in row)
            conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(row.values()))
        conn.execute("COMMIT")


def _write_env(
    env_path: Path, version: str, key: Secret, installed_at_ms: int, rng: random.Random
) -> None:
    env_text = (
        f"TAG={version}\n"
        f"COOLIFY_APP_ID={uuid.UUID(int=rng.getrandbits(128), version=4)}\n"
        f"COOLIFY_SECRET_KEY={key.reveal()}\n"
        "COOLIFY_DATABASE_URL=file:../db/prod.db\n"
        "COOLIFY_HOSTED_ON=docker\n"
        "COOLIFY_WHITE_LABELED=false\n"
        "COOLIFY_WHITE_LABELED_ICON=\n"
        "COOLIFY_AUTO_UPDATE=false\n"
    )
    fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(env_text)
    seconds = installed_at_ms / 1000
    os.utime(env_path, (seconds, seconds))
