"""The demo's applications, as the app made them: three per unit (public GitHub, private GitHub
App, GitLab App), each with its settings, secrets and their preview twins, builds and logs."""

from __future__ import annotations

from typing import Any

from coolify_migrate.apps.coolify_v3.demo_writer import AsIs, Builder, Field

UNICODE_SAMPLES = (
    "pässwörd-ßü Grüße",
    "密码🔑秘密 パスワード",
    "пароль-ключ",
    "👩‍💻 deploy by 👨‍👩‍👧‍👦 family",
    "pass\u00a0phrase with a no-break space",
    "ḱéý·with spaces inside",
    "emoji 🚀✨ launch",
)

# The columns of the tables with many rows (a fifth of them): their rows are put whole
BUILD_LOG = ("id", "applicationId", "buildId", "line", "time")
SECRET = (
    "id",
    "name",
    "value",
    "isPRMRSecret",
    "isBuildSecret",
    "createdAt",
    "updatedAt",
    "applicationId",
)


class AppRows:
    """A unit's three applications, put through the unit's builder."""

    def __init__(self, b: Builder) -> None:
        self.b = b
        self.rng = b.rng
        b.declare("BuildLog", BUILD_LOG)
        b.declare("Secret", SECRET)
        self.github_public = ""  # the seed's public GitHub source, once it exists

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
            stored = b.add(
                "Secret", (b.cuid(), secret_name, value, False, build, created, created, app_id)
            )
            # The preview (PR/MR) copy is created with the same stored text.
            twin = stored["value"]
            b.add("Secret", (b.cuid(), secret_name, twin, True, build, created, created, app_id))
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
            b.add("BuildLog", (b.cuid(), app_id, build_id, line, b.tick(200, 20_000)))
