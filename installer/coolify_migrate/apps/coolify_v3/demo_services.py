"""The demo's one-click services: Coolify v3's legacy per-service tables, how its
``configureServiceType`` filled them and what ``migrateServicesToNewTemplate`` copied from them,
the services that only ever had a template, and the database types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The legacy per-service tables: how configureServiceType filled them, and what
# migrateServicesToNewTemplate (apps/api/src/lib.ts) copied from them into ServiceSecret and
# ServiceSetting. Generators: pw/pw32/pw64 (alphanumeric), sym64 (with symbols), hex64,
# cuid, email, "=text" (literal), "{sid}…" (formatted with the service id).


@dataclass(frozen=True)
class Legacy:
    type: str  # Service.type as created
    migrated: str | None  # Service.type after the template migration; None: never migrated
    version: str
    fields: dict[str, Any]
    secrets: tuple[tuple[str, str], ...] = ()  # name, column copied verbatim or "~url template"
    settings: tuple[tuple[str, str], ...] = ()  # name, column, "=text" or "@column" (stored text)
    volumes: tuple[tuple[str, str, str], ...] = ()  # container suffix, volume suffix, path


PG_URL = (
    "~postgres://{postgresqlUser}:{postgresqlPassword}@{sid}-postgresql:5432/{postgresqlDatabase}"
)
LEGACY: dict[str, Legacy] = {
    "PlausibleAnalytics": Legacy(
        "plausibleanalytics",
        "plausibleanalytics",
        "stable",
        {
            "email": "email",
            "username": "=admin",
            "password": "pw",
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=plausibleanalytics",
            "secretKeyBase": "pw64",
            "scriptName": "=plausible.js",
        },
        (
            ("ADMIN_USER_PWD", "password"),
            ("SECRET_KEY_BASE", "secretKeyBase"),
            ("POSTGRESQL_PASSWORD", "postgresqlPassword"),
            ("DATABASE_URL", PG_URL),
        ),
        (
            ("BASE_URL", "=$$generate_fqdn"),
            ("ADMIN_USER_EMAIL", "email"),
            ("ADMIN_USER_NAME", "username"),
            ("DISABLE_AUTH", "=false"),
            ("DISABLE_REGISTRATION", "=true"),
            ("POSTGRESQL_USERNAME", "postgresqlUser"),
            ("POSTGRESQL_DATABASE", "postgresqlDatabase"),
            ("SCRIPT_NAME", "scriptName"),
        ),
        (
            ("postgresql", "postgresql-data", "/bitnami/postgresql"),
            ("clickhouse", "clickhouse-data", "/var/lib/clickhouse"),
        ),
    ),
    "Minio": Legacy(
        "minio",
        "minio",
        "latest",
        {"rootUser": "cuid", "rootUserPassword": "pw", "apiFqdn": "{api}"},
        (("MINIO_ROOT_PASSWORD", "rootUserPassword"),),
        (
            ("MINIO_ROOT_USER", "rootUser"),
            ("MINIO_SERVER_URL", "apiFqdn"),
            ("MINIO_BROWSER_REDIRECT_URL", "=$$generate_fqdn"),
            ("MINIO_DOMAIN", "=$$generate_domain"),
        ),
        (("", "minio-data", "/data"),),
    ),
    "Vscodeserver": Legacy(
        "vscodeserver",
        "vscodeserver",
        "latest",
        {"password": "pw"},
        (("PASSWORD", "password"),),
        (),
        (
            ("", "vscodeserver-data", "/root/.local/share/code-server"),
            ("", "vscodeserver-project-data", "/home/coder"),
        ),
    ),
    "Wordpress": Legacy(
        "wordpress",
        "wordpress",
        "latest",
        {
            "extraConfig": "=define('WP_MEMORY_LIMIT', '256M');",
            "tablePrefix": "=wp_",
            "ownMysql": False,
            "mysqlPort": 3306,
            "mysqlUser": "cuid",
            "mysqlPassword": "pw",
            "mysqlRootUser": "cuid",
            "mysqlRootUserPassword": "pw",
            "mysqlDatabase": "=wordpress",
        },
        (
            ("MYSQL_ROOT_PASSWORD", "mysqlRootUserPassword"),
            ("MYSQL_PASSWORD", "mysqlPassword"),
            ("COOLIFY_FTP_PASSWORD", "ftpPassword"),
            ("COOLIFY_FTP_HOST_KEY_PRIVATE", "ftpHostKeyPrivate"),
            ("COOLIFY_FTP_HOST_KEY", "ftpHostKey"),
        ),
        (
            ("MYSQL_ROOT_USER", "mysqlRootUser"),
            ("MYSQL_USER", "mysqlUser"),
            ("MYSQL_DATABASE", "mysqlDatabase"),
            ("MYSQL_HOST", "{sid}-mysql"),
            ("MYSQL_PORT", "mysqlPort"),
            ("WORDPRESS_CONFIG_EXTRA", "extraConfig"),
            ("WORDPRESS_TABLE_PREFIX", "tablePrefix"),
            ("WORDPRESS_DB_HOST", "{sid}-mysql"),
            ("COOLIFY_OWN_DB", "ownMysql"),
            ("COOLIFY_FTP_ENABLED", "ftpEnabled"),
            ("COOLIFY_FTP_USER", "ftpUser"),
            ("COOLIFY_FTP_PUBLIC_PORT", "ftpPublicPort"),
        ),
        (("", "wordpress-data", "/var/www/html"), ("mysql", "mysql-data", "/bitnami/mysql/data")),
    ),
    "Ghost": Legacy(
        "ghost",
        "ghost-mariadb",
        "latest",
        {
            "defaultEmail": "email",
            "defaultPassword": "pw",
            "mariadbUser": "cuid",
            "mariadbPassword": "pw",
            "mariadbRootUser": "cuid",
            "mariadbRootUserPassword": "pw",
            "mariadbDatabase": "=ghost",
        },
        (
            ("GHOST_PASSWORD", "defaultPassword"),
            ("MARIADB_PASSWORD", "mariadbPassword"),
            ("MARIADB_ROOT_PASSWORD", "mariadbRootUserPassword"),
            ("GHOST_DATABASE_PASSWORD", "mariadbPassword"),
        ),
        (
            ("GHOST_EMAIL", "defaultEmail"),
            ("GHOST_DATABASE_HOST", "{sid}-mariadb"),
            ("GHOST_DATABASE_USER", "mariadbUser"),
            ("GHOST_DATABASE_NAME", "mariadbDatabase"),
            ("GHOST_DATABASE_PORT_NUMBER", "=3306"),
            ("MARIADB_USER", "mariadbUser"),
            ("MARIADB_DATABASE", "mariadbDatabase"),
            ("MARIADB_ROOT_USER", "mariadbRootUser"),
            ("GHOST_HOST", "=$$generate_domain"),
            ("url", "=$$generate_fqdn"),
            ("GHOST_ENABLE_HTTPS", "=yes"),
        ),
        (("", "ghost-data", "/bitnami/ghost"), ("mariadb", "mariadb-data", "/bitnami/mariadb")),
    ),
    "MeiliSearch": Legacy(
        "meilisearch",
        "meilisearch",
        "latest",
        {"masterKey": "pw32"},
        (("MEILI_MASTER_KEY", "masterKey"),),
        (),
        (("", "datams", "/meili_data/data.ms"), ("", "data", "/meili_data")),
    ),
    "Umami": Legacy(
        "umami",
        "umami-postgresql",
        "postgresql-latest",
        {
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=umami",
            "umamiAdminPassword": "pw",
            "hashSalt": "pw64",
        },
        (
            ("HASH_SALT", "hashSalt"),
            ("POSTGRES_PASSWORD", "postgresqlPassword"),
            ("ADMIN_PASSWORD", "umamiAdminPassword"),
            ("DATABASE_URL", PG_URL),
        ),
        (
            ("DATABASE_TYPE", "=postgresql"),
            ("POSTGRES_USER", "postgresqlUser"),
            ("POSTGRES_DB", "postgresqlDatabase"),
        ),
        (("postgresql", "postgresql-data", "/bitnami/postgresql"),),
    ),
    "Hasura": Legacy(
        "hasura",
        "hasura",
        "v2.10.0",
        {
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=hasura",
            "graphQLAdminPassword": "pw",
        },
        (
            ("HASURA_GRAPHQL_ADMIN_SECRET", "graphQLAdminPassword"),
            ("HASURA_GRAPHQL_METADATA_DATABASE_URL", PG_URL),
            ("POSTGRES_PASSWORD", "postgresqlPassword"),
        ),
        (("POSTGRES_USER", "postgresqlUser"), ("POSTGRES_DB", "postgresqlDatabase")),
        (("postgresql", "postgresql-data", "/bitnami/postgresql"),),
    ),
    "Fider": Legacy(
        "fider",
        "fider",
        "stable",
        {
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=fider",
            "jwtSecret": "sym64",
            "emailNoreply": "=noreply@example.com",
        },
        (
            ("JWT_SECRET", "jwtSecret"),
            ("EMAIL_MAILGUN_API", "emailMailgunApiKey"),
            ("EMAIL_SMTP_PASSWORD", "emailSmtpPassword"),
            ("POSTGRES_PASSWORD", "postgresqlPassword"),
            (
                "DATABASE_URL",
                "~postgresql://{postgresqlUser}:{postgresqlPassword}@{sid}-postgresql:5432/"
                "{postgresqlDatabase}?sslmode=disable",
            ),
        ),
        (
            ("BASE_URL", "=$$generate_fqdn"),
            ("EMAIL_NOREPLY", "emailNoreply"),
            ("EMAIL_MAILGUN_DOMAIN", "emailMailgunDomain"),
            ("EMAIL_MAILGUN_REGION", "emailMailgunRegion"),
            ("EMAIL_SMTP_HOST", "emailSmtpHost"),
            ("EMAIL_SMTP_PORT", "emailSmtpPort"),
            ("EMAIL_SMTP_USER", "emailSmtpUser"),
            ("EMAIL_SMTP_PASSWORD", "@emailSmtpPassword"),  # the ciphertext, in a plain column
            ("EMAIL_SMTP_ENABLE_STARTTLS", "emailSmtpEnableStartTls"),
            ("POSTGRES_USER", "postgresqlUser"),
            ("POSTGRES_DB", "postgresqlDatabase"),
        ),
        (("postgresql", "postgresql-data", "/bitnami/postgresql"),),
    ),
    "Moodle": Legacy(
        "moodle",
        None,
        "v4.0.2",
        {
            "defaultUsername": "cuid",
            "defaultPassword": "pw",
            "defaultEmail": "=user@example.com",
            "mariadbUser": "cuid",
            "mariadbPassword": "pw",
            "mariadbRootUser": "cuid",
            "mariadbRootUserPassword": "pw",
            "mariadbDatabase": "=moodle_db",
        },
    ),
    "Appwrite": Legacy(
        "appwrite",
        "appwrite",
        "1.0",
        {
            "opensslKeyV1": "pw",
            "executorSecret": "pw",
            "redisPassword": "pw",
            "mariadbHost": "{sid}-mariadb",
            "mariadbUser": "cuid",
            "mariadbPassword": "pw",
            "mariadbRootUser": "cuid",
            "mariadbRootUserPassword": "pw",
            "mariadbDatabase": "=appwrite",
        },
        (
            ("_APP_EXECUTOR_SECRET", "executorSecret"),
            ("_APP_OPENSSL_KEY_V1", "opensslKeyV1"),
            ("_APP_DB_PASS", "mariadbPassword"),
            ("_APP_DB_ROOT_PASS", "mariadbRootUserPassword"),
        ),
        (
            ("_APP_DB_HOST", "mariadbHost"),
            ("_APP_DB_PORT", "mariadbPort"),
            ("_APP_DB_USER", "mariadbUser"),
            ("_APP_DB_SCHEMA", "mariadbDatabase"),
        ),
        (
            ("mariadb", "appwrite-mariadb", "/var/lib/mysql"),
            ("redis", "appwrite-redis", "/data"),
            ("", "appwrite-uploads", "/storage/uploads"),
        ),
    ),
    "GlitchTip": Legacy(
        "glitchTip",
        "glitchtip",
        "v2.0",
        {
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=glitchTip",
            "secretKeyBase": "pw64",
            "defaultEmail": "email",
            "defaultUsername": "cuid",
            "defaultPassword": "pw",
        },
        (
            ("POSTGRES_PASSWORD", "postgresqlPassword"),
            ("SECRET_KEY", "secretKeyBase"),
            ("MAILGUN_API_KEY", "mailgunApiKey"),
            ("SENDGRID_API_KEY", "sendgridApiKey"),
            ("DJANGO_SUPERUSER_PASSWORD", "defaultPassword"),
            # EMAIL_URL is added by _service (a ciphertext with " || ''" glued on)
            (
                "DATABASE_URL",
                "~postgres://{postgresqlUser}:{postgresqlPassword}@{sid}-postgresql:5432/"
                "{postgresqlDatabase}",
            ),
            ("REDIS_URL", "~redis://{sid}-redis:6379"),
        ),
        (
            ("POSTGRES_USER", "postgresqlUser"),
            ("POSTGRES_DB", "postgresqlDatabase"),
            ("DEFAULT_FROM_EMAIL", "defaultEmailFrom"),
            ("EMAIL_USE_TLS", "emailSmtpUseTls"),
            ("EMAIL_USE_SSL", "emailSmtpUseSsl"),
            ("EMAIL_BACKEND", "emailBackend"),
            ("ENABLE_OPEN_USER_REGISTRATION", "enableOpenUserRegistration"),
            ("DJANGO_SUPERUSER_EMAIL", "defaultEmail"),
            ("DJANGO_SUPERUSER_USERNAME", "defaultUsername"),
        ),
        (
            ("postgresql", "postgresql-data", "/var/lib/postgresql/data"),
            ("", "uploads", "/code/uploads"),
        ),
    ),
    "Searxng": Legacy(
        "searxng",
        "searxng",
        "latest",
        {"secretKey": "hex64", "redisPassword": "pw"},
        (("SECRET_KEY", "secretKey"), ("REDIS_PASSWORD", "redisPassword")),
        (("SEARXNG_BASE_URL", "=$$generate_fqdn"),),
        (("", "searxng", "/etc/searxng"), ("redis", "redis-data", "/data")),
    ),
    "Weblate": Legacy(
        "weblate",
        "weblate",
        "latest",
        {
            "adminPassword": "pw",
            "postgresqlHost": "{sid}-postgresql",
            "postgresqlPort": 5432,
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=weblate",
        },
        (("WEBLATE_ADMIN_PASSWORD", "adminPassword"), ("POSTGRES_PASSWORD", "postgresqlPassword")),
        (
            ("WEBLATE_SITE_DOMAIN", "=$$generate_domain"),
            ("POSTGRES_USER", "postgresqlUser"),
            ("POSTGRES_DATABASE", "postgresqlDatabase"),
            ("POSTGRES_DB", "postgresqlDatabase"),
            ("POSTGRES_HOST", "{sid}-postgres"),
            ("POSTGRES_PORT", "=5432"),
            ("REDIS_HOST", "{sid}-redis"),
        ),
        (
            ("", "weblate-data", "/app/data"),
            ("postgresql", "postgresql-data", "/var/lib/postgresql/data"),
            ("redis", "redis-data", "/data"),
        ),
    ),
    "Taiga": Legacy(
        "taiga",
        None,
        "latest",
        {
            "secretKey": "pw",
            "erlangSecret": "pw",
            "djangoAdminPassword": "pw",
            "djangoAdminUser": "cuid",
            "rabbitMQUser": "cuid",
            "rabbitMQPassword": "pw",
            "postgresqlHost": "{sid}-postgresql",
            "postgresqlPort": 5432,
            "postgresqlUser": "cuid",
            "postgresqlPassword": "pw",
            "postgresqlDatabase": "=taiga",
        },
    ),
}

# Services with no legacy table: only a Service row with its template's secrets and settings.
# (type, version, secrets, settings); a secret with an empty default is stored as
# ``encrypt('') || ''``, that is ''.
TEMPLATED = (
    ("nocodb", "latest", (("NC_AUTH_JWT_SECRET", "pw"),), (("NC_PUBLIC_URL", "$$generate_fqdn"),)),
    ("vaultwarden", "latest", (("ADMIN_TOKEN", ""),), (("DOMAIN", "$$generate_fqdn"),)),
    ("n8n", "latest", (), (("WEBHOOK_URL", "$$generate_fqdn"), ("GENERIC_TIMEZONE", "UTC"))),
    ("uptimekuma", "1", (), ()),
)
DB_TYPES = (
    ("postgresql", "14.8.0", 5432),
    ("mysql", "8.0.33", 3306),
    ("mariadb", "10.11.3", 3306),
    ("mongodb", "6.0.6", 27017),
    ("redis", "7.0.11", 6379),
    ("couchdb", "3.3.2", 5984),
    ("edgedb", "3.0", 5656),
)
