ALTER TABLE dashboards ADD COLUMN options json NOT NULL DEFAULT '{}';
UPDATE alembic_version SET version_num = '89bc7873a3e0';
