"""The demo instance is shaped like a real Coolify v3 one: v3's last schema, Prisma's storage types,
consistent references, the values the app generates, and the odd values real instances hold."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import node_cipher
import pytest
from coolify_migrate.apps.coolify_v3 import demo as coolify_v3_demo
from coolify_migrate.apps.coolify_v3 import demo_random
from coolify_migrate.apps.coolify_v3.demo import MIGRATIONS, SCHEMA, DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.crypto.codecs import AesCtrJsonCodec, js_trim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support import DEMO_MS, LeakGuard, make_demo

V3 = AesCtrJsonCodec()
CUID = re.compile(r"c[0-9a-z]{24}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ALNUM = re.compile(r"[A-Za-z0-9]+")
HEX = re.compile(r"[0-9a-f]+")
FIXED_IDS = {("Setting", "0"), ("Team", "0"), ("DockerRegistry", "0")}


def open_db(demo: DemoInstance) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{demo.db_path}?mode=ro", uri=True)


def tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [r[0] for r in rows]


def columns(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(f'PRAGMA table_info("{table}")').fetchall()


def stored(demo: DemoInstance) -> dict[tuple[str, str, str], str | None]:
    """Every stored value of the 59 encrypted fields."""
    conn = open_db(demo)
    try:
        out: dict[tuple[str, str, str], str | None] = {}
        for col in CoolifyV3.encrypted_columns:
            for row_id, value in conn.execute(f'SELECT id, "{col.column}" FROM "{col.table}"'):
                out[(col.table, col.column, row_id)] = value
        return out
    finally:
        conn.close()


def plain_of(demo: DemoInstance, table: str, column: str) -> list[str]:
    return [
        p for (t, c, _), p in demo.plaintexts.items() if (t, c) == (table, column) and p is not None
    ]


def require_node() -> None:
    if node_cipher.node_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("node is required under CI for the cross-check", pytrace=False)
    pytest.skip("node is not installed")


@pytest.fixture
def one(tmp_path: Path, leak_guard: LeakGuard) -> DemoInstance:
    return make_demo(tmp_path / "one", leak_guard, rows=1)


# -- the schema ------------------------------------------------------------------------------


def test_schema_is_the_packaged_file_and_the_sqlite3_cli_runs_it(tmp_path: Path) -> None:
    assert coolify_v3_demo.SCHEMA_FILE.read_text(encoding="utf-8") == SCHEMA
    assert coolify_v3_demo.SCHEMA_FILE.parent == Path(coolify_v3_demo.__file__).parent
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 CLI is not installed")
    # what tests/docker/images/make_context.py writes, run as the test image's start.sh runs it
    schema = tmp_path / "schema.sql"
    schema.write_text(SCHEMA.strip() + "\n", encoding="utf-8")
    db = tmp_path / "cli.db"
    with schema.open("rb") as fh:
        subprocess.run(["sqlite3", str(db)], stdin=fh, check=True, capture_output=True)
    conn = sqlite3.connect(db)
    try:
        assert len(tables(conn)) == 51
    finally:
        conn.close()


def test_tables_and_indexes_are_exactly_the_schema_files(one: DemoInstance) -> None:
    ref = sqlite3.connect(":memory:")
    ref.executescript(SCHEMA)
    conn = open_db(one)
    try:
        query = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        assert conn.execute(query).fetchall() == ref.execute(query).fetchall()
        names = tables(conn)
        assert len(names) == 51 and "_prisma_migrations" in names
        assert sum(1 for n in names if n.startswith("_") and n != "_prisma_migrations") == 8
        for name in names:  # every table is filled, as on an instance that has been used
            assert conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] > 0, name
    finally:
        conn.close()
        ref.close()


def test_references_and_the_file_are_consistent(tmp_path: Path, leak_guard: LeakGuard) -> None:
    demo = make_demo(tmp_path / "three", leak_guard, rows=3)
    conn = open_db(demo)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # the plain-TEXT references that have no foreign key point at real rows too
        loose = [
            ("BuildLog", "buildId", "Build"),
            ("BuildLog", "applicationId", "Application"),
            ("Build", "applicationId", "Application"),
            ("Build", "gitSourceId", "GitSource"),
            ("Build", "githubAppId", "GithubApp"),
            ("Build", "gitlabAppId", "GitlabApp"),
            ("Build", "destinationDockerId", "DestinationDocker"),
            ("Build", "previewApplicationId", "PreviewApplication"),
            ("TeamInvitation", "teamId", "Team"),
            ("TeamInvitation", "uid", "User"),
        ]
        for table, col, target in loose:
            dangling = conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{col}" IS NOT NULL '
                f'AND "{col}" NOT IN (SELECT id FROM "{target}")'
            ).fetchone()[0]
            assert dangling == 0, f"{table}.{col}"
    finally:
        conn.close()


def test_prisma_storage_types_and_timestamps(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        checked = 0
        for table in tables(conn):
            cols = columns(conn, table)
            for _, name, decl, *_ in cols:
                q = f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL'
                values = [r[0] for r in conn.execute(q)]
                if decl in ("DATETIME", "BIGINT"):
                    assert all(type(v) is int for v in values), f"{table}.{name} not integer ms"
                    assert all(v >= one.installed_at_ms for v in values), f"{table}.{name}"
                    checked += len(values)
                if decl == "BOOLEAN":
                    assert set(values) <= {0, 1}, f"{table}.{name}"
            names = {c[1] for c in cols}
            if {"createdAt", "updatedAt"} <= names:
                bad = conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "updatedAt" < "createdAt"'
                ).fetchone()[0]
                assert bad == 0, table
        assert checked > 100
        # the install-time evidence the audit reads sits minutes after the .env was written
        for table in ("Setting", "User"):
            first = conn.execute(f'SELECT min("createdAt") FROM "{table}"').fetchone()[0]
            assert 0 < first - one.installed_at_ms < 600_000, table
    finally:
        conn.close()


def test_ids_are_cuids_and_prisma_migrations_are_recorded(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        for table in tables(conn):
            if table.startswith("_"):
                continue
            for (row_id,) in conn.execute(f'SELECT id FROM "{table}"'):
                assert CUID.fullmatch(row_id) or (table, row_id) in FIXED_IDS, (table, row_id)
        rows = conn.execute(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
            'applied_steps_count FROM "_prisma_migrations" ORDER BY rowid'
        ).fetchall()
        names = [r[3] for r in rows]
        assert names == sorted(names) == list(MIGRATIONS)
        assert names[0] == "20220131142425_init" and names[-1] == "20230515060951_basic_auth"
        previous = one.installed_at_ms
        for mid, checksum, finished, _, logs, rolled_back, started, steps in rows:
            assert UUID4.fullmatch(mid) and re.fullmatch(r"[0-9a-f]{64}", checksum)
            assert logs is None and rolled_back is None and steps == 1
            assert previous <= started <= finished
            previous = finished
    finally:
        conn.close()


def test_rows_link_to_teams_as_the_app_links_them(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        q = conn.execute
        local = q(
            'SELECT id, name, engine, remoteEngine FROM "DestinationDocker" '
            "WHERE network = 'coolify'"
        ).fetchall()
        assert [r[1:] for r in local] == [("Local Docker", "/var/run/docker.sock", 0)]
        (admin,) = q("SELECT id FROM \"User\" WHERE email = 'admin@example.com'").fetchone()
        assert q('SELECT password FROM "User"').fetchone()[0].startswith("$2b$10$")
        assert ("0", admin) in q('SELECT A, B FROM "_TeamToUser"').fetchall()
        assert q(
            "SELECT permission FROM \"Permission\" WHERE userId = ? AND teamId = '0'", (admin,)
        ).fetchone() == ("owner",)
        assert (local[0][0], "0") in q('SELECT A, B FROM "_DestinationDockerToTeam"').fetchall()
        assert q('SELECT id FROM "Setting"').fetchall() == [("0",)]
        public = q(
            'SELECT name, type FROM "GitSource" WHERE forPublic = 1 ORDER BY type'
        ).fetchall()
        assert public == [("Github Public", "github"), ("Gitlab Public", "gitlab")]
        linked = {
            "Application": "_ApplicationToTeam",
            "Database": "_DatabaseToTeam",
            "DestinationDocker": "_DestinationDockerToTeam",
            "GithubApp": "_GithubAppToTeam",
            "GitlabApp": "_GitlabAppToTeam",
            "Service": "_ServiceToTeam",
        }
        for table, m2m in linked.items():
            orphans = q(f'SELECT count(*) FROM "{table}" WHERE id NOT IN (SELECT A FROM "{m2m}")')
            assert orphans.fetchone()[0] == 0, table
        private = q(
            'SELECT count(*) FROM "GitSource" WHERE forPublic = 0 '
            'AND id NOT IN (SELECT A FROM "_GitSourceToTeam")'
        )
        assert private.fetchone()[0] == 0
        # private sources go through their apps; applications use every kind of source
        assert q('SELECT count(*) FROM "GitSource" WHERE githubAppId IS NOT NULL').fetchone()[0]
        assert q('SELECT count(*) FROM "GitSource" WHERE gitlabAppId IS NOT NULL').fetchone()[0]
        used = {
            r[0]
            for r in q(
                'SELECT type FROM "GitSource" WHERE id IN (SELECT gitSourceId FROM "Application")'
            )
        }
        assert used == {"github", "gitlab"}
        for table, parent in (
            ("ApplicationSettings", "Application"),
            ("DatabaseSettings", "Database"),
        ):
            key = "applicationId" if parent == "Application" else "databaseId"
            missing = q(
                f'SELECT count(*) FROM "{parent}" WHERE id NOT IN (SELECT "{key}" FROM "{table}")'
            ).fetchone()[0]
            assert missing == 0, table
        assert (
            q('SELECT count(*) FROM "BuildLog"').fetchone()[0]
            >= q('SELECT count(*) FROM "Build"').fetchone()[0]
            > 0
        )
    finally:
        conn.close()


# -- the encrypted fields --------------------------------------------------------------------


def test_every_field_holds_values_and_every_value_is_accounted_for(one: DemoInstance) -> None:
    assert len(CoolifyV3.encrypted_columns) == 59
    values = stored(one)
    assert not set(one.plaintexts) & set(one.as_is)
    assert set(values) == set(one.plaintexts) | set(one.as_is)
    for col in CoolifyV3.encrypted_columns:
        of_field = [k for k in values if k[:2] == (col.table, col.column)]
        assert any(values[k] is not None for k in of_field), f"{col.label} has no value"
        assert plain_of(one, col.table, col.column), f"{col.label} has no ciphertext"
    for where, value in values.items():
        if where in one.as_is:
            assert value == one.as_is[where]  # byte-identical
            assert value is not None and not V3.is_encrypted(value)
        elif one.plaintexts[where] is None:
            assert value is None, where
        else:
            assert value is not None and V3.is_encrypted(value), where
            assert V3.decrypt_bytes(one.key, value).decode() == one.plaintexts[where]
    assert one.value_count == sum(1 for p in one.plaintexts.values() if p is not None)
    # what the app shows is what it stored: already trimmed
    assert all(p == js_trim(p) for p in one.plaintexts.values() if p is not None)


def test_node_decrypts_every_ciphertext_to_its_plaintext(one: DemoInstance) -> None:
    require_node()
    values = stored(one)
    where = [k for k, p in one.plaintexts.items() if p is not None]
    got = node_cipher.decrypt_all(one.key.reveal(), [str(values[k]) for k in where])
    assert got == [one.plaintexts[k] for k in where]


def test_the_ivs_are_random_and_the_rest_follows_the_seed(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    a = make_demo(tmp_path / "a", leak_guard, rows=1)
    b = make_demo(tmp_path / "b", leak_guard, rows=1)
    assert a.plaintexts == b.plaintexts
    texts_a = {v for v in stored(a).values() if v and V3.is_encrypted(v)}
    texts_b = {v for v in stored(b).values() if v and V3.is_encrypted(v)}
    ivs_a = {json.loads(v)["iv"] for v in texts_a}
    assert len(texts_a) > 50
    assert len(ivs_a) == len(texts_a)  # copies share their text; no two ciphertexts share an IV
    assert not ivs_a & {json.loads(v)["iv"] for v in texts_b}


def test_generated_values_have_the_apps_lengths_and_alphabets(one: DemoInstance) -> None:
    def each(table: str, column: str) -> list[str]:
        found = plain_of(one, table, column)
        assert found, f"{table}.{column}"
        return found

    alnum24 = [
        ("Database", "dbUserPassword"),
        ("Database", "rootUserPassword"),
        ("PlausibleAnalytics", "password"),
        ("PlausibleAnalytics", "postgresqlPassword"),
        ("Minio", "rootUserPassword"),
        ("Vscodeserver", "password"),
        ("Ghost", "defaultPassword"),
        ("Ghost", "mariadbRootUserPassword"),
        ("Umami", "umamiAdminPassword"),
        ("Hasura", "graphQLAdminPassword"),
        ("Fider", "postgresqlPassword"),
        ("Moodle", "mariadbPassword"),
        ("Appwrite", "opensslKeyV1"),
        ("Appwrite", "executorSecret"),
        ("GlitchTip", "defaultPassword"),
        ("Searxng", "redisPassword"),
        ("Weblate", "adminPassword"),
        ("Taiga", "erlangSecret"),
        ("Taiga", "rabbitMQPassword"),
    ]
    for table, column in alnum24:
        for value in each(table, column):
            assert len(value) == 24 and ALNUM.fullmatch(value), f"{table}.{column}"
            assert re.search("[a-z]", value) and re.search("[A-Z]", value)  # strict
            assert re.search("[0-9]", value)
    for table, column in (
        ("PlausibleAnalytics", "secretKeyBase"),
        ("Umami", "hashSalt"),
        ("GlitchTip", "secretKeyBase"),
    ):
        assert all(len(v) == 64 and ALNUM.fullmatch(v) for v in each(table, column))
    assert all(len(v) == 32 and ALNUM.fullmatch(v) for v in each("MeiliSearch", "masterKey"))
    assert all(len(v) == 64 and HEX.fullmatch(v) for v in each("Searxng", "secretKey"))
    jwt = each("Fider", "jwtSecret")
    assert all(len(v) == 64 and not ALNUM.fullmatch(v) for v in jwt)  # with symbols
    assert all(len(v) == 40 and HEX.fullmatch(v) for v in each("GithubApp", "clientSecret"))
    assert all(len(v) == 64 and HEX.fullmatch(v) for v in each("GitlabApp", "appSecret"))
    assert all(v.startswith("ghp_") for v in each("DockerRegistry", "password"))
    for pem in each("GithubApp", "privateKey"):  # GitHub's .pem: PKCS#1, LF
        assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n") and "\r" not in pem
    for key in each("Wordpress", "ftpHostKey") + each("Wordpress", "ftpHostKeyPrivate"):
        assert key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")  # `cat <id>.ed25519/.rsa`
    secrets = each("Secret", "value")
    assert any(s.startswith("postgresql://") for s in secrets)
    assert any(s.startswith("ghp_") for s in secrets)
    text = "\n".join(secrets)
    for sample in ("pässwörd", "密码", "\u200d", "\u00a0"):
        assert sample in text, repr(sample)
    assert each("DatabaseSecret", "value")


# -- the odd values real instances hold ------------------------------------------------------


def test_gitlab_deploy_keys_are_node_forge_rsa_4096_with_crlf(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        rows = conn.execute(
            'SELECT id, publicSshKey FROM "GitlabApp" WHERE privateSshKey IS NOT NULL'
        ).fetchall()
    finally:
        conn.close()
    assert rows
    for row_id, public in rows:
        pem = one.plaintexts[("GitlabApp", "privateSshKey", row_id)]
        assert pem is not None
        assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----\r\n")
        assert pem.endswith("-----END RSA PRIVATE KEY-----")  # v3 trimmed the final CRLF
        assert "\n" not in pem.replace("\r\n", "")
        body = pem.split("\r\n")[1:-1]
        assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 4096
        openssh = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        assert public == openssh.decode() + " "  # plaintext, empty comment after a space


def test_pasted_crlf_keys_and_openssl_ecparam_output(one: DemoInstance) -> None:
    ssh = plain_of(one, "SshKey", "privateKey")
    certs = plain_of(one, "Certificate", "key")
    assert any("\r\n" in k for k in ssh) and any("\r\n" in k for k in certs)
    ec_params = [k for k in ssh + certs if k.startswith("-----BEGIN EC PARAMETERS-----")]
    assert ec_params
    for key in ec_params:
        params, private = key.split("-----END EC PARAMETERS-----\n")
        assert "BggqhkjOPQMBBw==" in params  # prime256v1
        assert private.startswith("-----BEGIN EC PRIVATE KEY-----\n")
        serialization.load_pem_private_key(private.encode(), password=None)
    conn = open_db(one)
    try:
        for (cert,) in conn.execute('SELECT cert FROM "Certificate"'):
            assert cert.lstrip().startswith("-----BEGIN CERTIFICATE-----")
    finally:
        conn.close()


def test_preview_secrets_share_their_twins_stored_text(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        rows = conn.execute(
            'SELECT name, applicationId, isPRMRSecret, value FROM "Secret"'
        ).fetchall()
    finally:
        conn.close()
    production = {(n, a): v for n, a, pr, v in rows if pr == 0}
    preview = {(n, a): v for n, a, pr, v in rows if pr == 1}
    assert production and production == preview  # same names, same apps, same bytes (and IV)


def test_service_secrets_are_verbatim_copies_of_the_legacy_fields(one: DemoInstance) -> None:
    conn = open_db(one)
    try:
        copies = {
            ("Wordpress", "mysqlRootUserPassword"): "MYSQL_ROOT_PASSWORD",
            ("GlitchTip", "postgresqlPassword"): "POSTGRES_PASSWORD",
            ("Ghost", "mariadbPassword"): "MARIADB_PASSWORD",
            ("Appwrite", "opensslKeyV1"): "_APP_OPENSSL_KEY_V1",
            ("Searxng", "secretKey"): "SECRET_KEY",
            ("MeiliSearch", "masterKey"): "MEILI_MASTER_KEY",
        }
        for (table, column), name in copies.items():
            pairs = conn.execute(
                f'SELECT t."{column}", s.value FROM "{table}" t JOIN "ServiceSecret" s '
                f'ON s.serviceId = t.serviceId AND s.name = ? WHERE t."{column}" IS NOT NULL',
                (name,),
            ).fetchall()
            assert pairs and all(a == b for a, b in pairs), f"{table}.{column} -> {name}"
        # Taiga and Moodle were never migrated to templates: their legacy rows stand alone
        assert (
            conn.execute(
                'SELECT count(*) FROM "ServiceSecret" WHERE serviceId IN '
                '(SELECT serviceId FROM "Taiga" UNION SELECT serviceId FROM "Moodle")'
            ).fetchone()[0]
            == 0
        )
    finally:
        conn.close()


def test_values_that_are_not_ciphertext(one: DemoInstance) -> None:
    kinds = Counter(where[:2] for where in one.as_is)
    glued = [
        (w, v) for w, v in one.as_is.items() if w[0] == "ServiceSecret" and v.endswith(" || ''")
    ]
    assert glued  # GlitchTip's EMAIL_URL: a ciphertext followed by the literal text || ''
    conn = open_db(one)
    try:
        for (_, _, row_id), value in glued:
            name, service_type = conn.execute(
                'SELECT s.name, v.type FROM "ServiceSecret" s JOIN "Service" v ON v.id = s.serviceId '
                "WHERE s.id = ?",
                (row_id,),
            ).fetchone()
            assert (name, service_type) == ("EMAIL_URL", "glitchtip")
            inner = value.removesuffix(" || ''")
            assert V3.decrypt_bytes(one.key, inner).decode().startswith("smtp://")
    finally:
        conn.close()
    assert "" in [v for w, v in one.as_is.items() if w[:2] == ("Secret", "value")]  # saved empty
    assert "" in [v for w, v in one.as_is.items() if w[:2] == ("GlitchTip", "emailSmtpPassword")]
    clear = [v for v in one.as_is.values() if v and not v.endswith(" || ''")]
    for value in clear:
        with pytest.raises(ValueError):
            json.loads(value)
    assert kinds[("DockerRegistry", "password")] and kinds[("ServiceSecret", "value")] >= 2


def test_trimmed_empty_and_null_values(one: DemoInstance) -> None:
    values = stored(one)
    empty = [w for w, p in one.plaintexts.items() if p == ""]
    assert empty  # whitespace only: v3 trimmed it and stored empty content
    for where in empty:
        assert json.loads(str(values[where]))["content"] == ""
    conn = open_db(one)
    try:
        padded = conn.execute(
            "SELECT id FROM \"Secret\" WHERE name = 'PADDED_TOKEN' AND isPRMRSecret = 0"
        ).fetchone()
    finally:
        conn.close()
    token = one.plaintexts[("Secret", "value", padded[0])]
    assert token and token.startswith("tok_") and token == token.strip()
    flags = [p for p in plain_of(one, "DatabaseSecret", "value") if p.startswith("--")]
    assert flags and all(" " in p and p == p.strip() for p in flags)  # inner space kept
    nulls = {w[:2] for w, p in one.plaintexts.items() if p is None}
    assert ("Wordpress", "ftpPassword") in nulls  # FTP never enabled
    assert ("DockerRegistry", "password") in nulls  # Docker Hub without credentials


# -- size and speed --------------------------------------------------------------------------


def test_rows_scales_the_units(tmp_path: Path, leak_guard: LeakGuard) -> None:
    counts = []
    for n in (1, 2, 3):
        demo = make_demo(tmp_path / f"n{n}", leak_guard, rows=n)
        conn = open_db(demo)
        try:
            counts.append(
                {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables(conn)}
            )
        finally:
            conn.close()
    per_unit = {"Application": 3, "Database": 1, "GithubApp": 1, "GitlabApp": 1, "Taiga": 1}
    for table, n in per_unit.items():
        assert [c[table] for c in counts] == [n, 2 * n, 3 * n], table
    assert counts[0]["Service"] == 16 + 2  # one of each legacy type, a template one, 2 variants
    assert counts[1]["Service"] - counts[0]["Service"] == 16
    assert counts[0]["_prisma_migrations"] == counts[2]["_prisma_migrations"] == len(MIGRATIONS)
    grown = [t for t in counts[0] if counts[2][t] > counts[1][t] > counts[0][t]]
    assert len(grown) >= 40


def test_creation_is_fast_once_the_keys_exist(tmp_path: Path, leak_guard: LeakGuard) -> None:
    make_demo(tmp_path / "warm", leak_guard, rows=1)  # the RSA keys are made once per process
    begun = time.perf_counter()
    demo = make_demo(tmp_path / "timed", leak_guard, rows=3, at_ms=DEMO_MS + 1)
    took = time.perf_counter() - begun
    assert took < 2.0, f"rows=3 took {took:.2f}s"
    env = demo.data_dir / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert int(env.stat().st_mtime * 1000) == DEMO_MS + 1
    lines = env.read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "TAG",
        "COOLIFY_APP_ID",
        "COOLIFY_SECRET_KEY",
        "COOLIFY_DATABASE_URL",
        "COOLIFY_HOSTED_ON",
        "COOLIFY_WHITE_LABELED",
        "COOLIFY_WHITE_LABELED_ICON",
        "COOLIFY_AUTO_UPDATE",
    ]
    assert f"COOLIFY_SECRET_KEY={demo.key.reveal()}" in lines
    assert not list(demo.db_path.parent.glob("*.creating"))


def contents(demo: DemoInstance) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in rowid order, each ciphertext (wherever it is, with or without the
    " || ''" some hold) replaced by its plaintext: the IVs are random, the rest follows the seed."""

    def opened(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text, glued = value.removesuffix(" || ''"), value.endswith(" || ''")
        if not V3.is_encrypted(text):
            return value
        return ("glued:" if glued else "plain:") + V3.decrypt_bytes(demo.key, text).decode()

    conn = open_db(demo)
    try:
        return {
            table: [
                tuple(map(opened, row))
                for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
            ]
            for table in tables(conn)
        }
    finally:
        conn.close()


def test_writing_as_it_builds_stores_the_same_rows(
    tmp_path: Path, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go out every UNITS_PER_WRITE units, several per INSERT: the instance is the one a
    single write at the end makes, row for row."""
    whole = make_demo(tmp_path / "whole", leak_guard, rows=3)
    monkeypatch.setattr(coolify_v3_demo, "UNITS_PER_WRITE", 1)
    parts = make_demo(tmp_path / "parts", leak_guard, rows=3)
    assert parts.plaintexts == whole.plaintexts and parts.as_is.keys() == whole.as_is.keys()
    first, second = contents(whole), contents(parts)
    assert first == second
    assert sum(map(len, first.values())) > 500
    conn = open_db(parts)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        # rows keep the order they were made in (93 migrations: several INSERTs of many rows)
        names = conn.execute('SELECT migration_name FROM "_prisma_migrations" ORDER BY rowid')
        assert [n for (n,) in names] == list(MIGRATIONS)
    finally:
        conn.close()


def test_unrecorded_instance_is_the_same_and_counts_its_values(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    """The command keeps no plaintexts (its memory stays flat): the instance is the one the tests'
    recorded build makes, row for row, and its count is the recorded one."""
    recorded = make_demo(tmp_path / "recorded", leak_guard, rows=2)
    bare = coolify_v3_demo.create(
        tmp_path / "bare", version="3.12.32", installed_at_ms=DEMO_MS, rows=2, record=False
    )
    assert not bare.plaintexts and not bare.as_is
    assert bare.value_count == recorded.counted == recorded.value_count > 200
    assert contents(bare) == contents(recorded)


def test_random_strings_are_uniform_over_their_alphabet() -> None:
    """Letters are drawn a block of random bytes at a time, the bytes past the alphabet's
    largest multiple dropped: no letter is favoured (a plain modulo would favour the first)."""
    import random

    letters = demo_random.Letters(random.Random(5), "abcdefghij0123456789xyzXYZ!?.")
    drawn = "".join(letters.take(37) for _ in range(4000))
    counts = Counter(drawn)
    assert set(counts) == set("abcdefghij0123456789xyzXYZ!?.")
    expected = len(drawn) / 29
    assert max(abs(n - expected) for n in counts.values()) < 0.06 * expected
    again = demo_random.Letters(random.Random(5), "abcdefghij0123456789xyzXYZ!?.")
    assert "".join(again.take(37) for _ in range(4000)) == drawn  # follows the seed
