"""A Redash database on a real PostgreSQL server, written the way Redash writes it.

The tables are the ones Redash's SQLAlchemy models create (``redash/models``; 10.1 and 25.x have
the same shape for the two encrypted tables): every column NOT NULL unless the model says
otherwise, ``encrypted_options`` a ``bytea`` holding the ASCII text of one Fernet token, integer
keys from ``serial`` sequences, the indexes and constraints PostgreSQL names itself. The
``alembic_version`` row holds the head of the release the database stands for.

The encrypted values are written (and read back) by Redash's own crypto stack, not by this
project: ``sqlalchemy_utils.EncryptedType(Text, secret, FernetEngine)`` of sqlalchemy-utils 0.38.3
on SQLAlchemy 1.3.24 and psycopg2, the versions Redash 25.x pins, with the options serialised as
Redash's ``ConfigurationContainer.to_json`` does (``json.dumps(..., sort_keys=True)``). So a test
that reads a rolled database through ``read_options`` checks the tool against the library the real
app decrypts with.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import sqlalchemy as sa
from sqlalchemy_utils import EncryptedType
from sqlalchemy_utils.types.encrypted.encrypted_type import FernetEngine

HEAD_10_1 = "89bc7873a3e0"

SCHEMA = """
CREATE TABLE organizations (
    updated_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    slug varchar(255) NOT NULL UNIQUE,
    settings text NOT NULL
);
CREATE TABLE groups (
    id serial PRIMARY KEY,
    org_id integer NOT NULL REFERENCES organizations(id),
    type varchar(255) NOT NULL,
    name varchar(100) NOT NULL,
    permissions varchar(255)[] NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE users (
    updated_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    id serial PRIMARY KEY,
    org_id integer NOT NULL REFERENCES organizations(id),
    name varchar(320) NOT NULL,
    email varchar(255) NOT NULL,
    profile_image_url varchar(320),
    password_hash varchar(128),
    groups integer[],
    api_key varchar(40) NOT NULL UNIQUE,
    disabled_at timestamptz,
    details json DEFAULT '{}'
);
CREATE UNIQUE INDEX users_org_id_email ON users (org_id, email);
CREATE TABLE data_sources (
    id serial PRIMARY KEY,
    org_id integer NOT NULL REFERENCES organizations(id),
    name varchar(255) NOT NULL,
    type varchar(255) NOT NULL,
    encrypted_options bytea NOT NULL,
    queue_name varchar(255) NOT NULL,
    scheduled_queue_name varchar(255) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX data_sources_org_id_name ON data_sources (org_id, name);
CREATE TABLE data_source_groups (
    id serial PRIMARY KEY,
    data_source_id integer NOT NULL REFERENCES data_sources(id),
    group_id integer NOT NULL REFERENCES groups(id),
    view_only boolean NOT NULL
);
CREATE TABLE notification_destinations (
    id serial PRIMARY KEY,
    org_id integer NOT NULL REFERENCES organizations(id),
    user_id integer NOT NULL REFERENCES users(id),
    name varchar(255) NOT NULL,
    type varchar(255) NOT NULL,
    created_at timestamptz NOT NULL,
    encrypted_options bytea NOT NULL
);
CREATE UNIQUE INDEX notification_destinations_org_id_name
    ON notification_destinations (org_id, name);
CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
"""

# Options as Redash's query runners and destinations store them (the keys their schemas name).
DATA_SOURCE_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Production DB",
        "pg",
        {
            "host": "db.internal",
            "port": 5432,
            "user": "redash",
            "password": "pw-prod-9Xq",
            "dbname": "prod",
            "sslmode": "require",
        },
    ),
    (
        "Warehouse",
        "mysql",
        {
            "host": "wh.internal",
            "user": "bi",
            "passwd": "pw-wh-\u00e9t\u00e9",
            "db": "wh",
            "port": 3306,
        },
    ),
    (
        "Events",
        "clickhouse",
        {
            "url": "http://ch:8123",
            "user": "default",
            "password": "ch-p4ss",
            "dbname": "events",
            "timeout": 30,
        },
    ),
    ("Sheets", "google_spreadsheets", {"jsonKeyFile": "eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0="}),
    ("Metrics", "prometheus", {"url": "http://prom:9090"}),
]
DESTINATION_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Ops mail",
        "email",
        {"addresses": "ops@example.com", "subject_template": "{state}: {alert_name}"},
    ),
    ("Slack", "slack", {"url": "https://hooks.slack.com/services/T0/B0/xyz", "channel": "#alerts"}),
    ("Pager", "pagerduty", {"integration_key": "pd-0123456789abcdef", "description": "redash"}),
]


def engine(conninfo: str) -> sa.engine.Engine:
    return sa.create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(conninfo))


def _table(name: str, secret: str) -> sa.Table:
    """The ad-hoc table Redash's own ``manage database reencrypt`` builds: id and the options
    typed as Redash's models type them."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("encrypted_options", EncryptedType(sa.Text, secret, FernetEngine)),
    )


def to_json(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, ensure_ascii=False)


def create(
    conninfo: str,
    *,
    secret: str,
    destinations_secret: str | None = None,
    head: str = HEAD_10_1,
) -> None:
    """The schema, one organisation, then ``fill``."""
    eng = engine(conninfo)
    with eng.begin() as conn:
        conn.execute(sa.text(SCHEMA))
        conn.execute(
            sa.text(
                "INSERT INTO organizations (updated_at, created_at, name, slug, settings) "
                "VALUES (now(), now(), 'Default', 'default', '{}')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO groups (org_id, type, name, permissions, created_at) VALUES "
                "(1, 'builtin', 'admin', '{admin,super_admin}', now()), "
                "(1, 'builtin', 'default', '{create_dashboard,view_query}', now())"
            )
        )
        conn.execute(sa.text("INSERT INTO alembic_version VALUES (:h)"), h=head)
    eng.dispose()
    fill(conninfo, secret=secret, destinations_secret=destinations_secret)


def fill(conninfo: str, *, secret: str, destinations_secret: str | None = None) -> None:
    """What an admin adds through the app on a database its ``create_db`` made: a user, the data
    sources and alert destinations (options encrypted by sqlalchemy-utils under ``secret``; the
    destinations under ``destinations_secret`` when given: the mixed state Redash's migrations
    left)."""
    eng = engine(conninfo)
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (updated_at, created_at, org_id, name, email, password_hash, "
                "groups, api_key, details) VALUES (now(), now(), 1, 'Admin', 'admin@example.com', "
                "'$6$rounds=656000$x$y', '{1,2}', 'tZ1ZmKqGvBq7oN2Xq3w1kJ9Q0yZ3aN4bC5dE6fG7', "
                "'{\"is_invitation_pending\": false}')"
            )
        )
        for name, kind, _ in DATA_SOURCE_OPTIONS:
            conn.execute(
                sa.text(
                    "INSERT INTO data_sources (org_id, name, type, encrypted_options, queue_name, "
                    "scheduled_queue_name, created_at) VALUES (1, :n, :t, '\\x00', 'queries', "
                    "'scheduled_queries', now())"
                ),
                n=name,
                t=kind,
            )
        for name, kind, _ in DESTINATION_OPTIONS:
            conn.execute(
                sa.text(
                    "INSERT INTO notification_destinations (org_id, user_id, name, type, "
                    "created_at, encrypted_options) VALUES (1, 1, :n, :t, now(), '\\x00')"
                ),
                n=name,
                t=kind,
            )
    eng.dispose()
    want = expected()
    write_options(conninfo, "data_sources", want["data_sources"], secret)
    other = destinations_secret if destinations_secret is not None else secret
    write_options(conninfo, "notification_destinations", want["notification_destinations"], other)


def write_options(conninfo: str, table: str, rows: dict[int, dict[str, Any]], secret: str) -> None:
    """``UPDATE`` each row's options through the library, encrypted under ``secret``."""
    eng = engine(conninfo)
    tbl = _table(table, secret)
    with eng.begin() as conn:
        for row_id, options in rows.items():
            update = tbl.update().where(tbl.c.id == row_id)
            conn.execute(update.values(encrypted_options=to_json(options)))
    eng.dispose()


def read_options(conninfo: str, table: str, secret: str) -> dict[int, dict[str, Any] | None]:
    """Each row's options as the library decrypts them under ``secret``; None for a row that
    does not decrypt (the library raises ``InvalidToken``)."""
    from cryptography.fernet import InvalidToken

    eng = engine(conninfo)
    tbl = _table(table, secret)
    out: dict[int, dict[str, Any] | None] = {}
    with eng.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id"))]
        for row_id in ids:
            try:
                query = sa.select([tbl.c.encrypted_options]).where(tbl.c.id == row_id)
                found = conn.execute(query).scalar()
                out[row_id] = json.loads(found)
            except InvalidToken:
                out[row_id] = None
    eng.dispose()
    return out


def expected() -> dict[str, dict[int, dict[str, Any]]]:
    return {
        "data_sources": {i + 1: o for i, (_, _, o) in enumerate(DATA_SOURCE_OPTIONS)},
        "notification_destinations": {i + 1: o for i, (_, _, o) in enumerate(DESTINATION_OPTIONS)},
    }


def raw(conninfo: str) -> dict[tuple[str, int], bytes]:
    """Every stored ``encrypted_options``, byte for byte."""
    conn = psycopg2.connect(conninfo)
    try:
        out = {}
        with conn.cursor() as cur:
            for table in ("data_sources", "notification_destinations"):
                cur.execute(f"SELECT id, encrypted_options FROM {table} ORDER BY id")
                for row_id, value in cur.fetchall():
                    out[(table, row_id)] = bytes(value)
        return out
    finally:
        conn.close()


def url(conninfo: str) -> str:
    """The ``postgresql://`` URL of a ``key=value`` conninfo (for ``REDASH_DATABASE_URL``)."""
    parts = dict(item.split("=", 1) for item in conninfo.split())
    query = "&".join(f"{k}={parts[k]}" for k in ("host", "user", "port") if k in parts)
    return f"postgresql:///{parts['dbname']}" + (f"?{query}" if query else "")
