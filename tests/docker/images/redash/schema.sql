-- Redash 8.0.0's tables (alembic head e5c7a4e2df4d) as its models create them, for the stand-in's
-- create_db. The encrypted options are bytea Fernet tokens; in 8.0.0 alert destinations still
-- kept plain options (d7d747033183 encrypts them in 10.x), which the stand-in leaves out: it
-- cannot encrypt, so its destinations start out in the 10.x shape.
CREATE TABLE organizations (
    updated_at timestamptz NOT NULL, created_at timestamptz NOT NULL, id serial PRIMARY KEY,
    name varchar(255) NOT NULL, slug varchar(255) NOT NULL UNIQUE, settings text NOT NULL
);
CREATE TABLE groups (
    id serial PRIMARY KEY, org_id integer NOT NULL REFERENCES organizations(id),
    type varchar(255) NOT NULL, name varchar(100) NOT NULL,
    permissions varchar(255)[] NOT NULL, created_at timestamptz NOT NULL
);
CREATE TABLE users (
    updated_at timestamptz NOT NULL, created_at timestamptz NOT NULL, id serial PRIMARY KEY,
    org_id integer NOT NULL REFERENCES organizations(id), name varchar(320) NOT NULL,
    email varchar(255) NOT NULL, profile_image_url varchar(320), password_hash varchar(128),
    groups integer[], api_key varchar(40) NOT NULL UNIQUE, disabled_at timestamptz,
    details json DEFAULT '{}'
);
CREATE TABLE dashboards (
    updated_at timestamptz NOT NULL, created_at timestamptz NOT NULL, id serial PRIMARY KEY,
    version integer NOT NULL, org_id integer NOT NULL REFERENCES organizations(id),
    slug varchar(140) NOT NULL, name varchar(100) NOT NULL, user_id integer NOT NULL,
    layout text NOT NULL, dashboard_filters_enabled boolean NOT NULL, is_archived boolean NOT NULL,
    is_draft boolean NOT NULL, tags varchar[]
);
CREATE TABLE data_sources (
    id serial PRIMARY KEY, org_id integer NOT NULL REFERENCES organizations(id),
    name varchar(255) NOT NULL, type varchar(255) NOT NULL, encrypted_options bytea NOT NULL,
    queue_name varchar(255) NOT NULL, scheduled_queue_name varchar(255) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE notification_destinations (
    id serial PRIMARY KEY, org_id integer NOT NULL REFERENCES organizations(id),
    user_id integer NOT NULL REFERENCES users(id), name varchar(255) NOT NULL,
    type varchar(255) NOT NULL, created_at timestamptz NOT NULL, encrypted_options bytea NOT NULL
);
CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO organizations (updated_at, created_at, name, slug, settings)
    VALUES (now(), now(), 'Default', 'default', '{}');
INSERT INTO groups (org_id, type, name, permissions, created_at) VALUES
    (1, 'builtin', 'admin', '{admin,super_admin}', now()),
    (1, 'builtin', 'default', '{create_dashboard,view_query}', now());
INSERT INTO alembic_version VALUES ('e5c7a4e2df4d');
