"""The demo instance's rows: what Coolify v3's first start, its seed script and the first
registrations wrote, then each unit of what users added (SSH keys, a remote destination,
registries, certificates, Git sources with their apps, a database; its applications and services
come from ``demo_app_rows`` and ``demo_service_rows``)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from coolify_migrate.apps.coolify_v3.demo_app_rows import AppRows
from coolify_migrate.apps.coolify_v3.demo_keys import key_pool
from coolify_migrate.apps.coolify_v3.demo_random import BCRYPT
from coolify_migrate.apps.coolify_v3.demo_schema import MIGRATIONS
from coolify_migrate.apps.coolify_v3.demo_service_rows import ServiceRows
from coolify_migrate.apps.coolify_v3.demo_services import DB_TYPES, LEGACY
from coolify_migrate.apps.coolify_v3.demo_writer import AsIs, Builder

ROOT_TEAM = "0"


class Instance:
    """What the first start and the first registrations created (``base``), then ``rows`` units of
    what the users added (``unit``)."""

    def __init__(self, b: Builder, ts: int) -> None:
        self.b = b
        self.rng = b.rng
        self.ts = ts
        self.pool = key_pool()
        self.apps = AppRows(b)
        self.services = ServiceRows(b, self.pool)
        self.team2 = ""
        self.local = ""
        self.gitlab_public = ""
        self.root_name = ""

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
        self.apps.github_public, self.gitlab_public = b.cuid(), b.cuid()
        b.put(
            "GitSource",
            {
                "id": self.apps.github_public,
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
        self.root_name = b.name()
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
        b.put("Team", {"id": self.team2, "name": b.name()})
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
        hashed = "$2b$10$" + "".join(self.rng.choices(BCRYPT, k=53))
        b.put("User", {"id": uid, "email": email, "type": "email", "password": hashed})
        return uid

    # -- one unit ------------------------------------------------------------------------------

    def unit(self, u: int) -> None:
        b, rng, pool = self.b, self.rng, self.pool
        b.now = max(b.now, self.ts + 86_400_000 + u * 3_600_000) + rng.randrange(60_000, 3_000_000)
        team = self.team2 if u % 4 == 3 else ROOT_TEAM
        org = b.org(u)
        migrated_at = b.now + rng.randrange(86_400_000, 40 * 86_400_000)

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
        self.apps.apps(u, org, team, dest, registry, db, gh_app, gh_source, gl_app, gl_source)
        for table in LEGACY:
            self.services.service(table, u % 2, team, dest, migrated_at)
        if u == 0:  # the variants the first unit cannot hold in its single row of each
            self.services.service("GlitchTip", 1, team, dest, migrated_at)
            self.services.service("Wordpress", 1, team, dest, migrated_at)
        self.services.templated(u, team, dest)

    def database(self, u: int, team: str, dest: str) -> dict[str, Any]:
        b = self.b
        dtype, version, port = DB_TYPES[u % len(DB_TYPES)]
        db: dict[str, Any] = {
            "id": b.cuid(),
            "name": b.name(),
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
