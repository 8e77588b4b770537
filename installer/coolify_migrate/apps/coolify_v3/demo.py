"""A legacy Coolify v3 instance shaped like a real one, for the demo, the tests and the benchmarks.

It writes what the pre-2023-07-14 installer and the app left behind: a ``.env`` whose
``COOLIFY_SECRET_KEY`` is derived from the install time (its mtime is that time), and a
``prod.db`` with every table of v3's last schema (``schema.sql``), filled the way the app
fills them: Prisma's types (DATETIME as integer ms, BOOLEAN as 0/1, cuid ids), the rows the seed
script and the first registration create, teams linked through the many-to-many tables, and every
secret encrypted under the date-seeded key with the values the app generates (see
``.scratch/schema_facts.md``).

It also holds the odd values real instances hold: node-forge's CRLF deploy keys, pasted CRLF keys,
``openssl ecparam`` output, preview secrets sharing their twin's ciphertext, service secrets copied
verbatim from the legacy tables by ``migrateServicesToNewTemplate`` (one with `` || ''`` glued to
the ciphertext), ``''`` and clear text where ciphertext belongs, whitespace-only and padded values.

``rows`` counts *units*: each unit is three applications (public GitHub, private GitHub App,
GitLab App) with secrets, previews and builds, a database, one service of every legacy type plus a
template-only one, SSH keys, a remote destination, registries and certificates. Unit 0 also holds
the variants a single unit cannot (a second GlitchTip and WordPress), so ``rows=1`` has every kind.
"""

from __future__ import annotations

import hashlib
import operator
import os
import random
import re
import sqlite3
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from coolify_migrate.apps.coolify_v3.demo_keys import key_pool
from coolify_migrate.apps.coolify_v3.demo_services import (
    DB_TYPES,
    LEGACY,
    TEMPLATED,
)
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.core.durable import fsync_dir, fsync_file
from coolify_migrate.core.output import Null, Output, Progress
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec, js_trim

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SCHEMA = SCHEMA_FILE.read_text(encoding="utf-8")
# The schema's one-line CREATE INDEX statements run after the rows are in (an index built once
# over sorted keys is cheaper than one grown row by row); the rest runs first, in its order.
_INDEX_LINE = re.compile(r"CREATE (UNIQUE )?INDEX [^;]*;")
_INDEXES = [line for line in SCHEMA.splitlines() if _INDEX_LINE.fullmatch(line)]
_TABLES = "\n".join(line for line in SCHEMA.splitlines() if not _INDEX_LINE.fullmatch(line))

# v3's migration chain from the squashed 20220131142425_init to its last one, as found in the
# coollabsio/coolify history (migrations that were deleted and regenerated appear once).
_MIGRATION_NAMES = """
    20220131142425_init 20220210104005_redis_aol 20220212142309_unique_secret_by_application
    20220217211304_dualcerts 20220219231255_prmr_secrets 20220220141136_public_portrange
    20220301101928_proxyhash 20220304141408_service_secrets 20220311213422_autodeploy
    20220320141424_phpmodules 20220322135800_persistent_storage 20220327180323_ghost
    20220402135305_python 20220402210645_meilisearch 20220405151428_wordpress_sftp
    20220407220809_unique_storage_fix 20220408070805_added_expose_port
    20220418214843_persistent_storage_services 20220419203408_multiply_dockerfile_locations
    20220420202031_deno_configurations 20220420210057_branch_for_builds 20220425071132_umami
    20220425075326_auto_update_coolify 20220426125053_select_base_image 20220427133656_hasura
    20220429202516_fider 20220429214112_fider_correction 20220430111953_ssl_dns_check_settings
    20220430124553_expose_port_for_services 20220509130501_custom_plausible_script
    20220510081125_custom_wordpress_db 20220512110234_disable_haproxy 20220517081328_traefik
    20220519095648_minio_apifqdn 20220708132655_deployment_type_for_applications
    20220712083523_custom_port_git_sources 20220718083646_moodle
    20220718114551_remote_docker_engine 20220721084020_ssh_key 20220722203927_ipaddress
    20220725191205_architecture 20220726121333_fix_ssh_key
    20220806090621_fqdn_not_unique_anymore 20220806102340_rde_ssh_local_port
    20220815092230_glitchtip 20220815133844_appwrite 20220816133447_bot_deployments
    20220817082342_custom_dns_servers 20220818093615_public_repositories
    20220823070532_service_searxng 20220825064811_concurrent_build_settings
    20220825072007_build_queue_improvements 20220831095714_service_weblate
    20220902115640_service_taiga 20220905062318_database_branching
    20220905113241_prisma_migration 20220905115321_application_connected_database
    20220906120112_enable_api_debug_logging 20220907092244_database_secrets
    20220913092100_preview_applications 20220921134841_custom_certificate
    20220922064605_custom_certificates 20220923122227_custom_ssl_for_applications
    20220928083348_system_wide_git_sources 20221002084246_no_unique_appid_on_previews
    20221002091630_forked_previews 20221005120323_initial_docker_compose
    20221005132352_docker_compose_configuration 20221017134342_standardized_service_configs
    20221018090939_service_peristent_volumes_predefined 20221021112429_serivce_settings_extended
    20221021185630_service_template_version 20221026115123_service_persistent_unique
    20221028074301_wordpress_optional_fields 20221104092223_default_redirect_proxy
    20221114093217_application_storage_path_migration 20221123122143_remote_haproxy_from_db
    20221123133429_docker_registries 20221128104158_do_not_track 20221128104718_fix_defaults
    20221128105615_custom_sentry 20221129081832_fix_defaults
    20221129101300_keep_docker_images_locally_setting 20221129121702_preview_separator
    20221130142058_reconfigure_docker_registries 20221201115801_simple_dockerfile_deployment
    20221201133847_push_image_to_docker_registry 20221221140911_git_source_custom_user
    20230117092356_http2_protocol 20230307101148_add_host_volumes 20230515060951_basic_auth
"""
MIGRATIONS = tuple(_MIGRATION_NAMES.split())

ROOT_TEAM = "0"
UNITS_PER_WRITE = 64  # units whose rows are held (and ciphertexts sealed) before each write
_ALNUM = string.ascii_lowercase + string.ascii_uppercase + string.digits  # generate-password
_SYMBOLS = '!@#$%^&*()+_-=}{[]|:;"/?.><,`~'
_BASE36 = string.digits + string.ascii_lowercase
_HEX = "0123456789abcdef"
_BCRYPT = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits


def _encrypted_by_table() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for col in CoolifyV3.encrypted_columns:
        found[col.table] = (*found.get(col.table, ()), col.column)
    return found


_ENCRYPTED = _encrypted_by_table()

UNICODE_SAMPLES = (
    "pässwörd-ßü Grüße",
    "密码🔑秘密 パスワード",
    "пароль-ключ",
    "👩‍💻 deploy by 👨‍👩‍👧‍👦 family",
    "pass\u00a0phrase with a no-break space",
    "ḱéý·with spaces inside",
    "emoji 🚀✨ launch",
)
_ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "lucky",
    "quiet",
    "swift",
)
_NOUNS = (
    "otter",
    "falcon",
    "maple",
    "comet",
    "harbor",
    "meadow",
    "pixel",
    "river",
    "tiger",
    "willow",
)


@dataclass
class DemoInstance:
    data_dir: Path
    db_path: Path
    key: Secret
    installed_at_ms: int
    version: str
    # (table, column, id) -> plaintext (after v3's trim) of a stored ciphertext, None for SQL NULL
    plaintexts: dict[tuple[str, str, str], str | None] = field(default_factory=dict)
    # (table, column, id) -> stored text of an encrypted field that is not ciphertext ('', a
    # ciphertext followed by " || ''", clear text): a correct tool leaves it byte-identical
    as_is: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def value_count(self) -> int:
        return sum(1 for v in self.plaintexts.values() if v is not None)


# ----------------------------------------------------------------------------------------------
# Values of encrypted fields, and the builder that records each one as it is stored.


class Cipher:
    """A stored ciphertext and the plaintext the app would show (already trimmed).

    Ciphertexts are made in batches (one AES call for many values, ``_Sealer``): ``text`` is
    there once the batch it waits in is sealed, which reading it does if need be."""

    __slots__ = ("_sealer", "_text", "plain")

    def __init__(self, plain: str, sealer: _Sealer) -> None:
        self.plain = plain
        self._text: str | None = None
        self._sealer = sealer

    @property
    def text(self) -> str:
        if self._text is None:
            self._sealer.seal()
        assert self._text is not None
        return self._text


class _Sealer:
    """Values waiting for their ciphertext; ``seal`` encrypts them all in one call."""

    def __init__(self, codec: AesCtrJsonCodec, key: Secret) -> None:
        self.codec = codec
        self.key = key
        self.waiting: list[Cipher] = []

    def cipher(self, plain: str) -> Cipher:
        made = Cipher(plain, self)
        self.waiting.append(made)
        return made

    def seal(self) -> None:
        waiting, self.waiting = self.waiting, []
        texts = self.codec.encrypt_many(self.key, [c.plain for c in waiting])
        for made, text in zip(waiting, texts, strict=True):
            made._text = text


class AsIs(NamedTuple):
    """Stored text of an encrypted field that is not ciphertext."""

    text: str


# What a row gives for an encrypted column: plaintext to encrypt now (str), a ciphertext made
# earlier (Cipher, copied verbatim), stored text that is not ciphertext (AsIs), or NULL (None).
Stored = Cipher | AsIs | None
Field = str | Stored


def _default(raw: str | None) -> object:
    """A column's schema default as Python stores it; CURRENT_TIMESTAMP is never relied on."""
    if raw is None or raw.upper() == "CURRENT_TIMESTAMP":
        return None
    if raw in ("false", "true"):
        return int(raw == "true")
    if raw.startswith("'"):
        return raw[1:-1]
    return int(raw)


class _Letters:
    """Uniform random strings over one alphabet, from the seeded generator a block at a time:
    a random byte below the largest multiple of the alphabet's size becomes one letter, the
    others are dropped (rejection, so no letter is more likely than another)."""

    CHUNK = 4096

    def __init__(self, rng: random.Random, alphabet: str) -> None:
        size = len(alphabet)
        keep = 256 - 256 % size
        self.rng = rng
        self.table = bytes(ord(alphabet[b % size]) if b < keep else 0 for b in range(256))
        self.dropped = bytes(range(keep, 256))
        self.text = ""
        self.at = 0

    def take(self, k: int) -> str:
        at, end = self.at, self.at + k
        if end > len(self.text):
            while len(self.text) - at < k:
                fresh = self.rng.randbytes(self.CHUNK).translate(self.table, self.dropped)
                self.text = self.text[at:] + fresh.decode("ascii")
                at = 0
            end = k
        self.at = end
        return self.text[at:end]


# generate-password's `strict`: at least one character of each pool it draws from
_STRICT = re.compile(r"(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])", re.S)
_STRICT_SYMBOLS = re.compile(_STRICT.pattern + f"(?=.*[{re.escape(_SYMBOLS)}])", re.S)
_PAIRS = [a + b for a in _BASE36 for b in _BASE36]  # two base-36 digits of 0..1295


class _Table:
    """How one table's rows become INSERT parameters: the schema's defaults fill the columns a
    row leaves out, ciphertexts are read from their ``Cipher``."""

    def __init__(self, name: str, info: list[Any]) -> None:
        self.name = name
        self.columns = [c[1] for c in info]
        self.defaults = {c[1]: _default(c[4]) for c in info}
        self.booleans = {c[1] for c in info if c[2] == "BOOLEAN"}
        self.created = "createdAt" in self.defaults
        self.updated = "updatedAt" in self.defaults
        self.encrypted = _ENCRYPTED.get(name, ())
        self.set_defaults = {c: d for c, d in self.defaults.items() if d is not None}
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.insert = f'INSERT INTO "{name}" ({names}) VALUES ({marks})'
        # several rows per statement (fewer statement steps), within SQLite's oldest variable
        # limit (999)
        self.per_insert = max(1, min(32, 999 // len(self.columns)))
        self.insert_many = self.insert + f", ({marks})" * (self.per_insert - 1)
        if len(self.columns) < 2:  # itemgetter of one name gives the value, not a tuple
            raise ValueError(f"{name}: a table of one column is not supported")
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = operator.itemgetter(
            *self.columns
        )

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        defaults, values, encrypted = self.defaults, self.values, self.encrypted
        width = len(defaults)
        out = []
        for row in rows:
            full = {**defaults, **row}
            if len(full) != width:
                raise ValueError(
                    f"{self.name} has no column {sorted(full.keys() - defaults.keys())}"
                )
            for col in encrypted:
                held = full[col]
                if held.__class__ is Cipher:
                    full[col] = held.text
            out.append(values(full))
        return out

    def inserts(self, params: list[tuple[Any, ...]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """The statements that insert these rows, in order."""
        step = self.per_insert
        whole = len(params) - len(params) % step
        out = []
        if whole:
            joined = [
                tuple(chain.from_iterable(params[i : i + step])) for i in range(0, whole, step)
            ]
            out.append((self.insert_many, joined))
        if whole < len(params):
            out.append((self.insert, params[whole:]))
        return out


class _Builder:
    """Collects rows per table, recording every encrypted field as it is put; ``write`` seals the
    waiting ciphertexts and inserts the rows collected so far."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        demo: DemoInstance,
        codec: AesCtrJsonCodec,
    ) -> None:
        self.rng = rng
        self.random = rng.random
        self.demo = demo
        self.sealer = _Sealer(codec, demo.key)
        self.now = demo.installed_at_ms
        self.counter = rng.randrange(36**4)
        self.fingerprint = "".join(rng.choices(_BASE36, k=4))
        self.base36 = _Letters(rng, _BASE36)
        self.alnum = _Letters(rng, _ALNUM)
        self.symbolic = _Letters(rng, _ALNUM + _SYMBOLS)
        self.hexes = _Letters(rng, _HEX)
        self.stamp = (-1, "")  # the last `now` and its eight base-36 digits
        self.specs: dict[str, _Table] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.links: dict[str, list[tuple[str, str]]] = {}
        self.defaults: dict[str, dict[str, object]] = {}
        self.booleans: dict[str, set[str]] = {}
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        for (table,) in names.fetchall():
            spec = _Table(table, conn.execute(f'PRAGMA table_info("{table}")').fetchall())
            self.specs[table] = spec
            self.tables[table] = []
            if spec.columns == ["A", "B"]:  # a many-to-many link table
                self.links[table] = []
            self.defaults[table] = spec.defaults
            self.booleans[table] = spec.booleans

    # -- values -----------------------------------------------------------------------------

    def between(self, lo: int, hi: int) -> int:
        """``rng.randrange(lo, hi)`` for the hot paths, at a third of its cost."""
        return lo + int(self.random() * (hi - lo))

    def tick(self, lo: int = 5, hi: int = 1500) -> int:
        self.now += lo + int(self.random() * (hi - lo))
        return self.now

    def cuid(self) -> str:
        """cuid v1 as the app's ``cuid()``: c, time, counter, fingerprint, random (25 chars)."""
        self.counter = counter = (self.counter + 1) % 36**4
        if self.stamp[0] != self.now:
            high, low = divmod(self.now % 36**8, 36**4)
            pairs = _PAIRS
            self.stamp = (
                self.now,
                pairs[high // 1296] + pairs[high % 1296] + pairs[low // 1296] + pairs[low % 1296],
            )
        return (
            "c"
            + self.stamp[1]
            + _PAIRS[counter // 1296]
            + _PAIRS[counter % 1296]
            + self.fingerprint
            + self.base36.take(8)
        )

    def password(self, length: int = 24, symbols: bool = False) -> str:
        """generate-password with numbers and strict: at least one of each pool it draws from."""
        letters, strict = (self.symbolic, _STRICT_SYMBOLS) if symbols else (self.alnum, _STRICT)
        while True:
            out = letters.take(length)
            if strict.match(out):
                return out

    def hex(self, chars: int) -> str:
        return self.hexes.take(chars)

    def encrypt(self, plain: str) -> Cipher:
        return self.sealer.cipher(js_trim(plain))

    # -- rows -------------------------------------------------------------------------------

    def put(self, table: str, row: dict[str, Any], *, updated: bool = False) -> dict[str, Stored]:
        """Add a row; returns its encrypted fields as stored (Cipher / AsIs / None)."""
        spec = self.specs[table]
        if spec.created and "createdAt" not in row:
            row["createdAt"] = self.tick()
        if spec.updated and "updatedAt" not in row:
            later = self.between(60_000, 30 * 86_400_000) if updated else 0
            row["updatedAt"] = row["createdAt"] + later
        stored: dict[str, Stored] = {}
        for col in spec.encrypted:
            given: Field = row[col]  # KeyError: every encrypted field of every row is decided
            value = self.encrypt(given) if isinstance(given, str) else given
            where = (table, col, row["id"])
            if value is None:
                self.demo.plaintexts[where] = None
            elif value.__class__ is Cipher:
                self.demo.plaintexts[where] = value.plain
                row[col] = value  # its text once sealed (write reads it)
            else:
                self.demo.as_is[where] = value.text
                row[col] = value.text
            stored[col] = value
        self.tables[table].append(row)
        return stored

    def link(self, table: str, a: str, b: str) -> None:
        self.links[table].append((a, b))

    def write(self, conn: sqlite3.Connection, bar: Progress | None = None) -> None:
        """Insert the rows collected so far (sealing their ciphertexts) and forget them."""
        self.sealer.seal()
        for table, rows in self.tables.items():
            if bar is not None:
                bar.advance()
            spec = self.specs[table]
            links = self.links.get(table)
            if links:
                for sql, params in spec.inserts(links):
                    conn.executemany(sql, params)
                links.clear()
            if rows:
                for sql, params in spec.inserts(spec.params(rows)):
                    conn.executemany(sql, params)
                rows.clear()


# ----------------------------------------------------------------------------------------------
# The instance.


class _Instance:
    def __init__(self, b: _Builder, ts: int) -> None:
        self.b = b
        self.rng = b.rng
        self.ts = ts
        self.pool = key_pool()
        self.team2 = ""
        self.local = ""
        self.github_public = ""
        self.gitlab_public = ""
        self.root_name = ""
        self.migrated_at = 0

    def name(self) -> str:
        rng = self.rng
        return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000, 9999)}"

    # -- what the first start and the first registrations created -----------------------------

    def base(self) -> None:
        b, rng = self.b, self.rng
        b.now = self.ts + rng.randrange(4_000, 12_000)  # the container's first start
        for name in MIGRATIONS:
            started = b.tick(3, 40)
            b.put(
                "_prisma_migrations",
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "checksum": hashlib.sha256(f"{name}/migration.sql".encode()).hexdigest(),
                    "finished_at": b.tick(2, 400),
                    "migration_name": name,
                    "logs": None,
                    "rolled_back_at": None,
                    "started_at": started,
                    "applied_steps_count": 1,
                },
            )
        # apps/api/prisma/seed.js
        b.tick(200, 2000)
        setting: dict[str, Any] = {"id": "0", "arch": "x64", "DNSServers": "1.1.1.1,8.8.8.8"}
        b.put("Setting", setting)
        self.local = b.cuid()
        b.put(
            "DestinationDocker",
            {
                "id": self.local,
                "network": "coolify",
                "name": "Local Docker",
                "engine": "/var/run/docker.sock",
                "isCoolifyProxyUsed": True,
            },
        )
        self.github_public, self.gitlab_public = b.cuid(), b.cuid()
        b.put(
            "GitSource",
            {
                "id": self.github_public,
                "name": "Github Public",
                "forPublic": True,
                "type": "github",
                "apiUrl": "https://api.github.com",
                "htmlUrl": "https://github.com",
            },
        )
        b.put(
            "GitSource",
            {
                "id": self.gitlab_public,
                "name": "Gitlab Public",
                "forPublic": True,
                "type": "gitlab",
                "apiUrl": "https://gitlab.com/api/v4",
                "htmlUrl": "https://gitlab.com",
            },
        )
        b.put(
            "DockerRegistry",
            {
                "id": "0",
                "name": "Docker Hub",
                "url": "https://index.docker.io/v1/",
                "username": None,
                "password": None,
                "teamId": ROOT_TEAM,
            },
        )
        # The first registration: the admin, the root team '0' with the local destination.
        b.tick(40_000, 240_000)
        admin = self.user("admin@example.com")
        self.root_name = self.name()
        b.put("Team", {"id": ROOT_TEAM, "name": self.root_name})
        b.link("_TeamToUser", ROOT_TEAM, admin)
        b.put(
            "Permission",
            {"id": b.cuid(), "userId": admin, "teamId": ROOT_TEAM, "permission": "owner"},
        )
        b.link("_DestinationDockerToTeam", self.local, ROOT_TEAM)
        # The admin then set the instance's domain and closed registration.
        setting.update(
            fqdn="https://coolify.example.com",
            ipv4="203.0.113.10",
            isRegistrationEnabled=False,
            updatedAt=b.tick(30_000, 300_000),
        )
        # A colleague registered later (own team), and was invited into the root team.
        b.tick(3_600_000, 86_400_000)
        dev = self.user("dev@example.org")
        self.team2 = b.cuid()
        b.put("Team", {"id": self.team2, "name": self.name()})
        b.link("_TeamToUser", self.team2, dev)
        b.put(
            "Permission",
            {"id": b.cuid(), "userId": dev, "teamId": self.team2, "permission": "owner"},
        )
        b.put(
            "TeamInvitation",
            {
                "id": b.cuid(),
                "uid": dev,
                "email": "dev@example.org",
                "teamId": ROOT_TEAM,
                "teamName": self.root_name,
                "permission": "read",
            },
        )

    def user(self, email: str) -> str:
        b = self.b
        uid = b.cuid()
        hashed = "$2b$10$" + "".join(self.rng.choices(_BCRYPT, k=53))
        b.put("User", {"id": uid, "email": email, "type": "email", "password": hashed})
        return uid

    # -- one unit ------------------------------------------------------------------------------

    def unit(self, u: int) -> None:
        b, rng, pool = self.b, self.rng, self.pool
        b.now = max(b.now, self.ts + 86_400_000 + u * 3_600_000) + rng.randrange(60_000, 3_000_000)
        team = self.team2 if u % 4 == 3 else ROOT_TEAM
        org = f"{rng.choice(_ADJECTIVES)}{rng.choice(_NOUNS)}{u}"
        self.migrated_at = b.now + rng.randrange(86_400_000, 40 * 86_400_000)

        # SSH keys (pasted by users) and a remote destination using one of them
        ssh_ids = []
        for k in (2 * u % 4, (2 * u + 1) % 4):
            ssh_ids.append(b.cuid())
            b.put(
                "SshKey",
                {
                    "id": ssh_ids[-1],
                    "name": f"{org}-server-{k}",
                    "privateKey": pool.ssh_keys[k],
                    "teamId": team,
                },
            )
        remote = b.cuid()
        b.put(
            "DestinationDocker",
            {
                "id": remote,
                "network": b.cuid(),
                "name": f"{org}-vps",
                "engine": None,
                "remoteEngine": True,
                "remoteIpAddress": f"198.51.100.{u % 250 + 1}",
                "remoteUser": "root",
                "remotePort": 22,
                "remoteVerified": True,
                "isCoolifyProxyUsed": True,
                "sshKeyId": ssh_ids[0],
                "sshLocalPort": 10000 + u % 20000,
            },
        )
        b.link("_DestinationDockerToTeam", remote, team)

        # Registries: a token; every fifth unit one whose password an old code path kept clear
        registry = b.cuid()
        b.put(
            "DockerRegistry",
            {
                "id": registry,
                "name": "GitHub Packages",
                "url": "ghcr.io",
                "username": f"{org}-bot",
                "password": "ghp_" + b.password(36),
                "teamId": team,
            },
        )
        if u % 5 == 0:
            b.put(
                "DockerRegistry",
                {
                    "id": b.cuid(),
                    "name": "Private registry",
                    "url": f"registry.{org}.example.com",
                    "username": "deploy",
                    "password": AsIs("dckr_pat_" + b.password(27)),
                    "teamId": team,
                },
            )

        # Certificates (custom SSL)
        for k in (2 * u % 3, (2 * u + 1) % 3):
            key, cert = pool.certificates[k]
            b.put("Certificate", {"id": b.cuid(), "key": key, "cert": cert, "teamId": team})

        # A private GitHub source with its GitHub App
        gh_app = b.cuid()
        b.put(
            "GithubApp",
            {
                "id": gh_app,
                "name": f"coolify-{org}",
                "appId": 310_000 + u * 7 + rng.randrange(7),
                "installationId": 35_000_000 + u * 11 + rng.randrange(11),
                "clientId": "Iv1." + b.hex(16),
                "clientSecret": b.hex(40),
                "webhookSecret": b.hex(40),
                "privateKey": pool.github_pems[u % 2],
            },
            updated=True,
        )
        gh_source = b.cuid()
        b.put(
            "GitSource",
            {
                "id": gh_source,
                "name": f"{org} GitHub",
                "type": "github",
                "apiUrl": "https://api.github.com",
                "htmlUrl": "https://github.com",
                "organization": org if u % 2 else None,
                "githubAppId": gh_app,
            },
        )
        b.link("_GithubAppToTeam", gh_app, team)
        b.link("_GitSourceToTeam", gh_source, team)

        # A GitLab source with its OAuth app; the deploy key exists once an app deployed
        deployed = u % 3 != 2
        deploy_key = pool.deploy_keys[u % 2]
        gl_app = b.cuid()
        b.put(
            "GitlabApp",
            {
                "id": gl_app,
                "oauthId": 4_000 + u,
                "groupName": f"{org}-group" if u % 2 == 0 else None,
                "deployKeyId": 9_000_000 + u if deployed else None,
                "privateSshKey": deploy_key[0] if deployed else None,
                "publicSshKey": deploy_key[1] if deployed else None,
                "webhookToken": b.cuid(),
                "appId": b.hex(64),
                "appSecret": b.hex(64),
            },
            updated=True,
        )
        gl_source = b.cuid()
        html = "https://gitlab.com" if u % 2 == 0 else f"https://gitlab.{org}.example.com"
        b.put(
            "GitSource",
            {
                "id": gl_source,
                "name": f"{org} GitLab",
                "type": "gitlab",
                "apiUrl": f"{html}/api/v4",
                "htmlUrl": html,
                "customPort": 22 if u % 2 == 0 else 2222,
                "gitlabAppId": gl_app,
            },
        )
        b.link("_GitlabAppToTeam", gl_app, team)
        b.link("_GitSourceToTeam", gl_source, team)

        dest = self.local if u % 3 else remote
        db = self.database(u, team, dest)
        self.apps(u, org, team, dest, registry, db, gh_app, gh_source, gl_app, gl_source)
        for table in LEGACY:
            self.service(table, u % 2, team, dest)
        if u == 0:  # the variants the first unit cannot hold in its single row of each
            self.service("GlitchTip", 1, team, dest)
            self.service("Wordpress", 1, team, dest)
        self.templated(u, team, dest)

    def database(self, u: int, team: str, dest: str) -> dict[str, Any]:
        b = self.b
        dtype, version, port = DB_TYPES[u % len(DB_TYPES)]
        db: dict[str, Any] = {
            "id": b.cuid(),
            "name": self.name(),
            "publicPort": 9000 + u % 100 if u % 2 else None,
            "defaultDatabase": b.cuid(),
            "type": dtype,
            "version": version,
            "dbUser": b.cuid(),
            "dbUserPassword": b.password(),
            "rootUser": "postgres" if dtype == "postgresql" else b.cuid(),
            "rootUserPassword": b.password(),
            "destinationDockerId": dest,
        }
        # how an application reaches it (its DATABASE_URL secret), before the password is encrypted
        url = f"{dtype}://{db['dbUser']}:{db['dbUserPassword']}@{db['id']}:{port}/{db['defaultDatabase']}"
        b.put("Database", db, updated=True)
        b.put("DatabaseSettings", {"id": b.cuid(), "databaseId": db["id"], "isPublic": bool(u % 2)})
        b.link("_DatabaseToTeam", db["id"], team)
        secrets: list[tuple[str, str]] = [
            ("TZ", "Europe/Berlin"),
            ("BACKUP_S3_SECRET", b.password(40)),
        ]
        if u % 3 == 0:
            secrets += [
                ("EXTRA_ARGS", "  --max-connections=200 --shared-buffers=256MB  "),
                ("UNSET_LATER", "\t \n"),
            ]
        for name, value in secrets:
            b.put(
                "DatabaseSecret",
                {"id": b.cuid(), "name": name, "value": value, "databaseId": db["id"]},
            )
        return {"id": db["id"], "type": dtype, "url": url}

    def apps(
        self,
        u: int,
        org: str,
        team: str,
        dest: str,
        registry: str,
        db: dict[str, Any],
        gh_app: str,
        gh_source: str,
        gl_app: str,
        gl_source: str,
    ) -> None:
        b = self.b
        unicode_a = UNICODE_SAMPLES[u % len(UNICODE_SAMPLES)]
        unicode_b = UNICODE_SAMPLES[(u + 3) % len(UNICODE_SAMPLES)]
        public: list[tuple[str, Field, bool]] = [
            ("NODE_ENV", "production", True),
            ("PORT", "3000", False),
            ("WELCOME_TEXT", unicode_a, False),
        ]
        if u % 3 == 0:  # saved empty, whitespace only, padded, a no-break space inside
            public += [
                ("EMPTY_VALUE", AsIs(""), False),
                ("BLANK_VALUE", "   ", False),
                ("PADDED_TOKEN", f"  tok_{b.password(20)}  ", True),
                ("NBSP_PASSPHRASE", f"correct\u00a0horse {b.password(8)}", False),
            ]
        private: list[tuple[str, Field, bool]] = [
            ("DATABASE_URL", db["url"], False),
            ("GITHUB_TOKEN", "ghp_" + b.password(36), True),
            ("GREETING", unicode_b, False),
            ("SESSION_SECRET", b.password(64), False),
        ]
        gitlab: list[tuple[str, Field, bool]] = [
            (
                "SENTRY_DSN",
                f"https://{b.hex(32)}@o{400000 + u}.ingest.sentry.io/{4500000 + u}",
                False,
            ),
            ("STRIPE_SECRET_KEY", "sk_live_" + b.password(99), False),
            ("REDIS_URL", f"redis://default:{b.password()}@redis.internal:6379/0", False),
            ("MOTD", UNICODE_SAMPLES[(u + 1) % len(UNICODE_SAMPLES)], False),
        ]
        self.app(
            {
                "destinationDockerId": dest,
                "name": f"{org}-site",
                "repository": "coollabsio/coolify-examples",
                "branch": "main",
                "buildPack": "node",
                "port": 3000,
                "installCommand": "npm install",
                "buildCommand": "npm run build",
                "startCommand": "npm start",
                "baseDirectory": "/nodejs",
                "gitSourceId": self.github_public,
                "baseImage": "node:lts",
                "baseBuildImage": "node:lts",
                "basicAuthUser": "admin" if u % 2 == 0 else None,
                "basicAuthPw": b.password(16) if u % 2 == 0 else None,
            },
            {"isPublicRepository": True, "autodeploy": False, "basicAuth": u % 2 == 0},
            team,
            public,
            builds=(("manual", None, None), ("manual", None, None)),
            storage="/app/data",
        )
        gh = self.app(
            {
                "destinationDockerId": dest,
                "name": f"{org}-web",
                "repository": f"{org}/web",
                "branch": "main",
                "buildPack": "docker",
                "projectId": 600_000_000 + u,
                "port": 8080,
                "dockerFileLocation": "/Dockerfile",
                "gitSourceId": gh_source,
                "dockerRegistryId": registry,
                "dockerRegistryImageName": f"ghcr.io/{org}/web",
            },
            {"previews": True, "isBot": False},
            team,
            private,
            builds=(("webhook_commit", gh_app, None), ("webhook_pr", gh_app, None)),
            storage="/data",
        )
        b.put(
            "ApplicationConnectedDatabase",
            {
                "id": b.cuid(),
                "applicationId": gh,
                "databaseId": db["id"],
                "hostedDatabaseType": db["type"],
            },
        )
        self.app(
            {
                "destinationDockerId": dest,
                "name": f"{org}-api",
                "repository": f"{org}-group/api",
                "branch": "production",
                "buildPack": "python",
                "projectId": 45_000_000 + u,
                "port": 8000,
                "pythonWSGI": "gunicorn",
                "pythonModule": "main",
                "pythonVariable": "app",
                "gitSourceId": gl_source,
                "baseImage": "python:3.11-slim",
            },
            {"autodeploy": True, "isHttp2": u % 2 == 1},
            team,
            gitlab,
            builds=(("webhook_commit", None, gl_app), ("manual", None, gl_app)),
            storage=None,
        )

    def app(
        self,
        row: dict[str, Any],
        settings: dict[str, Any],
        team: str,
        secrets: list[tuple[str, Field, bool]],
        *,
        builds: tuple[tuple[str, str | None, str | None], ...],
        storage: str | None,
    ) -> str:
        b, rng = self.b, self.rng
        app_id = b.cuid()
        name = row["name"]
        row.update(id=app_id, fqdn=f"https://{name}.example.com", gitCommitHash=b.hex(40))
        b.put("Application", {**row, "configHash": b.hex(64)}, updated=True)
        b.put("ApplicationSettings", {"id": b.cuid(), "applicationId": app_id, **settings})
        b.link("_ApplicationToTeam", app_id, team)
        if storage:
            b.put(
                "ApplicationPersistentStorage",
                {"id": b.cuid(), "applicationId": app_id, "path": storage},
            )
        for secret_name, value, build in secrets:
            created = b.tick()
            stored = b.put(
                "Secret",
                {
                    "id": b.cuid(),
                    "name": secret_name,
                    "value": value,
                    "isBuildSecret": build,
                    "applicationId": app_id,
                    "createdAt": created,
                },
            )
            # The preview (PR/MR) copy is created with the same stored text.
            b.put(
                "Secret",
                {
                    "id": b.cuid(),
                    "name": secret_name,
                    "value": stored["value"],
                    "isPRMRSecret": True,
                    "isBuildSecret": build,
                    "applicationId": app_id,
                    "createdAt": created,
                },
            )
        preview = None
        if settings.get("previews"):
            preview = (b.cuid(), str(rng.randrange(2, 400)))
            b.put(
                "PreviewApplication",
                {
                    "id": preview[0],
                    "pullmergeRequestId": preview[1],
                    "sourceBranch": "feature/checkout",
                    "customDomain": None,
                    "applicationId": app_id,
                },
            )
        source = row.get("gitSourceId")
        for kind, github_app, gitlab_app in builds:
            pr = preview if kind == "webhook_pr" else None
            self.build(row, kind, (source, github_app, gitlab_app), pr)
        return app_id

    def build(
        self,
        row: dict[str, Any],
        kind: str,
        git: tuple[str | None, str | None, str | None],
        preview: tuple[str, str] | None,
    ) -> None:
        b, rng = self.b, self.rng
        app_id = row["id"]
        build_id = b.cuid()
        commit = b.hex(40)
        status = rng.choice(("success", "success", "success", "failed"))
        b.put(
            "Build",
            {
                "id": build_id,
                "type": kind,
                "applicationId": app_id,
                "destinationDockerId": row["destinationDockerId"],
                "gitSourceId": git[0],
                "githubAppId": git[1],
                "gitlabAppId": git[2],
                "commit": commit,
                "pullmergeRequestId": preview[1] if preview else None,
                "sourceBranch": "feature/checkout" if preview else None,
                "branch": row["branch"],
                "status": status,
                "previewApplicationId": preview[0] if preview else None,
                "sourceRepository": row["repository"] if preview else None,
            },
            updated=True,
        )
        lines = (
            f"Starting deployment of {row['repository']}:{row['branch']}",
            f"Importing {row['repository']}:{row['branch']} commit {commit[:7]}",
            f"Building image for {row['name']} with {row['buildPack']} build pack",
            "Deployment successful!" if status == "success" else "Deployment failed!",
        )
        for line in lines:
            b.put(
                "BuildLog",
                {
                    "id": b.cuid(),
                    "applicationId": app_id,
                    "buildId": build_id,
                    "line": line,
                    "time": b.tick(200, 20_000),
                },
            )

    # -- services --------------------------------------------------------------------------------

    def _generate(self, spec: Any, sid: str) -> Any:
        b = self.b
        if not isinstance(spec, str):
            return spec
        if spec.startswith("="):
            return spec[1:]
        if "{" in spec:
            return spec.format(sid=sid, api=f"https://api-{sid[-6:]}.example.com")
        if spec == "cuid":
            return b.cuid()
        if spec == "email":
            return f"{b.cuid()}@example.com"
        if spec == "hex64":
            return b.hex(64)  # generatePassword({length: 32, isHex: true})
        if spec == "sym64":
            return b.password(64, symbols=True)
        return b.password(int(spec[2:] or 24))  # pw, pw32, pw64

    def _variant(self, table: str, variant: int) -> dict[str, Any]:
        b, pool = self.b, self.pool
        if table == "Wordpress" and variant == 0:  # FTP enabled: ssh-keygen host keys, a password
            host_key, host_key_private = pool.ftp_host_keys[self.rng.randrange(2)]
            return {
                "ftpEnabled": True,
                "ftpUser": b.cuid(),
                "ftpPassword": b.password(),
                "ftpPublicPort": 9100 + self.rng.randrange(800),
                "ftpHostKey": host_key,
                "ftpHostKeyPrivate": host_key_private,
            }
        if table == "Wordpress":  # its own MySQL, FTP never enabled
            return {
                "ownMysql": True,
                "mysqlHost": "mysql.example.com",
                "mysqlUser": "wordpress",
                "mysqlRootUser": None,
                "mysqlRootUserPassword": None,
                "ftpPassword": None,
                "ftpHostKey": None,
                "ftpHostKeyPrivate": None,
            }
        if table == "GlitchTip" and variant == 0:
            return {
                "emailSmtpHost": "smtp.example.com",
                "emailSmtpPort": 587,
                "emailSmtpUser": "glitchtip@example.com",
                "emailSmtpPassword": b.password(),
                "emailSmtpUseTls": True,
                "emailBackend": "smtp",
                "mailgunApiKey": "key-" + b.hex(32),
                "sendgridApiKey": f"SG.{b.password(22)}.{b.password(43)}",
            }
        if table == "GlitchTip":  # an SMTP password saved empty, no API keys
            return {"emailSmtpPassword": AsIs(""), "mailgunApiKey": None, "sendgridApiKey": None}
        if table == "Fider" and variant == 0:
            return {
                "emailMailgunApiKey": "key-" + b.hex(32),
                "emailMailgunDomain": "mg.example.com",
                "emailSmtpHost": "smtp.mailgun.org",
                "emailSmtpPort": 587,
                "emailSmtpUser": "postmaster@mg.example.com",
                "emailSmtpPassword": b.password(32),
                "emailSmtpEnableStartTls": True,
            }
        if table == "Fider":
            return {"emailMailgunApiKey": None, "emailSmtpPassword": None}
        return {}

    def service(self, table: str, variant: int, team: str, dest: str) -> None:
        b = self.b
        spec = LEGACY[table]
        sid = b.cuid()
        detail: dict[str, Any] = {"id": b.cuid(), "serviceId": sid}
        for col, gen in spec.fields.items():
            detail[col] = self._generate(gen, sid)
        detail.update(self._variant(table, variant))
        # unset encrypted fields are NULL, other unset fields take the schema's default
        detail = {**b.specs[table].set_defaults, **dict.fromkeys(_ENCRYPTED[table]), **detail}
        own_mysql = table == "Wordpress" and detail["ownMysql"]
        service: dict[str, Any] = {
            "id": sid,
            "name": f"{spec.type.lower()}-{self.name()}",
            "fqdn": f"https://{spec.type.lower()}-{sid[-6:]}.example.com",
            "type": spec.type,
            "version": spec.version,
            "destinationDockerId": dest,
        }
        b.put("Service", service)
        b.link("_ServiceToTeam", sid, team)
        stored = b.put(table, detail, updated=True)
        # What the JavaScript saw: plaintexts of the encrypted fields ('' for an empty one).
        plain = dict(detail)
        for col, held in stored.items():
            plain[col] = held.plain if isinstance(held, Cipher) else held and held.text
        migrated = "wordpress-only" if own_mysql else spec.migrated
        if migrated is None:
            return
        # migrateServicesToNewTemplate, run once the instance ran 3.12.x: secrets and settings
        # from the legacy fields; a ServiceSecret gets the field's stored text, verbatim.
        at = self.migrated_at
        settings, secrets = spec.settings, spec.secrets
        if own_mysql:
            secrets = (("WORDPRESS_DB_PASSWORD", "mysqlPassword"), *secrets[2:])
            settings = (
                ("WORDPRESS_CONFIG_EXTRA", "extraConfig"),
                ("WORDPRESS_DB_HOST", "mysqlHost"),
                ("WORDPRESS_DB_PORT", "mysqlPort"),
                ("WORDPRESS_DB_USER", "mysqlUser"),
                ("WORDPRESS_DB_NAME", "mysqlDatabase"),
            )
        for name, source in settings:
            if source.startswith("="):
                value: Any = source[1:]
            elif source.startswith("{"):
                value = source.format(sid=sid)
            elif source.startswith("@"):
                held = stored[source[1:]]
                value = held and held.text
            elif source in b.booleans[table]:
                value = "true" if detail[source] else "false"  # `${false}`
            else:
                value = detail.get(source)
                if isinstance(value, Cipher):
                    value = value.text
            if value is None or value in ("", "null"):
                continue
            key = "coolify_fqdn_minio_console" if name == "MINIO_SERVER_URL" else name
            at += b.between(2, 40)
            b.put(
                "ServiceSetting",
                {
                    "id": b.cuid(),
                    "serviceId": sid,
                    "name": name,
                    "value": str(value),
                    "variableName": f"$$config_{key.lower()}",
                    "createdAt": at,
                },
            )
        for name, source in secrets:
            if source.startswith("~"):
                copied: Field = b.encrypt(source[1:].format(sid=sid, **plain))
            else:
                copied = stored[source]
                # a ciphertext is never '' or 'null' (and reading it here would seal its batch)
                if copied is None or (isinstance(copied, AsIs) and copied.text in ("", "null")):
                    continue
            at += b.between(2, 40)
            b.put(
                "ServiceSecret",
                {"id": b.cuid(), "name": name, "value": copied, "serviceId": sid, "createdAt": at},
            )
        smtp = ("emailSmtpUser", "emailSmtpPassword", "emailSmtpHost", "emailSmtpPort")
        if table == "GlitchTip" and all(plain.get(k) for k in smtp):
            # `EMAIL_URL@@@${encrypt(`smtp://…`)} || ''`: the " || ''" landed in the value
            url = "smtp://{emailSmtpUser}:{emailSmtpPassword}@{emailSmtpHost}:{emailSmtpPort}"
            glued = AsIs(b.encrypt(url.format(**plain)).text + " || ''")
            at += b.between(2, 40)
            b.put(
                "ServiceSecret",
                {
                    "id": b.cuid(),
                    "name": "EMAIL_URL",
                    "value": glued,
                    "serviceId": sid,
                    "createdAt": at,
                },
            )
        for container, volume, path in spec.volumes:
            owner = detail["id"] if table == "PlausibleAnalytics" else sid
            at += b.between(2, 40)
            b.put(
                "ServicePersistentStorage",
                {
                    "id": b.cuid(),
                    "serviceId": sid,
                    "path": path,
                    "volumeName": f"{owner}-{volume}",
                    "predefined": True,
                    "containerId": f"{sid}-{container}" if container else sid,
                    "createdAt": at,
                },
            )
        service.update(type=migrated, templateVersion="1.0.0", updatedAt=at)

    def templated(self, u: int, team: str, dest: str) -> None:
        b = self.b
        kind, version, secrets, settings = TEMPLATED[u % len(TEMPLATED)]
        sid = b.cuid()
        b.put(
            "Service",
            {
                "id": sid,
                "name": f"{kind}-{self.name()}",
                "fqdn": f"https://{kind}-{sid[-6:]}.example.com",
                "type": kind,
                "version": version,
                "templateVersion": "1.0.0",
                "destinationDockerId": dest,
            },
        )
        b.link("_ServiceToTeam", sid, team)
        for name, gen in secrets:
            value: Field = b.password() if gen == "pw" else AsIs("")
            b.put("ServiceSecret", {"id": b.cuid(), "name": name, "value": value, "serviceId": sid})
        if u % 5 == 0:  # a user-added secret an old code path stored in the clear
            b.put(
                "ServiceSecret",
                {
                    "id": b.cuid(),
                    "name": "SMTP_PASSWORD",
                    "value": AsIs("Tr0ub4dor&3-" + b.password(8)),
                    "serviceId": sid,
                },
            )
        for name, value in settings:
            b.put(
                "ServiceSetting",
                {
                    "id": b.cuid(),
                    "serviceId": sid,
                    "name": name,
                    "value": value,
                    "variableName": f"$$config_{name.lower()}",
                },
            )
        b.put(
            "ServicePersistentStorage",
            {
                "id": b.cuid(),
                "serviceId": sid,
                "path": "/data",
                "volumeName": f"{sid}-data",
                "predefined": True,
                "containerId": sid,
            },
        )


# ----------------------------------------------------------------------------------------------


def create(
    data_dir: Path,
    *,
    version: str,
    installed_at_ms: int,
    rows: int = 5,
    seed: int | None = None,
    db_path: Path | None = None,
    out: Output | None = None,
) -> DemoInstance:
    """Write the instance. The caller checks that the directory holds no instance yet.

    Memory stays at the recorded plaintexts: rows are inserted every ``UNITS_PER_WRITE`` units,
    their ciphertexts made in one batch each (``AesCtrJsonCodec.encrypt_many``). The same seed
    gives the same rows and plaintexts; the IVs are random (``benchmarks/bench_demo.py``
    measures the speed against the bare encryption of the same values)."""
    out = out or Null()
    codec = AesCtrJsonCodec()
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
        # A new file nothing else reads, removed if this fails: no journal, no syncs while it is
        # built; it is made durable once, complete, before it takes the database's name.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -65536")  # KiB: fewer spills of a big transaction
        conn.executescript(_TABLES)
        builder = _Builder(conn, rng, demo, codec)
        instance = _Instance(builder, installed_at_ms)
        conn.execute("BEGIN")
        instance.base()
        bar = out.progress("building the demo's rows", max(rows, 1), "rows")
        try:
            for u in range(max(rows, 1)):
                instance.unit(u)
                if u % UNITS_PER_WRITE == UNITS_PER_WRITE - 1:  # rows go out as they are made
                    builder.write(conn)
                bar.advance()
        finally:
            bar.close()
        bar = out.progress("writing the demo's tables", len(builder.tables), "tables")
        try:
            builder.write(conn, bar)
            for index in _INDEXES:  # built once over the rows, not row by row
                conn.execute(index)
            conn.execute("COMMIT")
        finally:
            bar.close()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    fsync_file(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, db_path)
    fsync_dir(db_path.parent)
    _write_env(data_dir / ".env", version, key, installed_at_ms, rng)
    return demo


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
