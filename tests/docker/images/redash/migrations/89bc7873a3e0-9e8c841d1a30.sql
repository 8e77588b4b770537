ALTER TABLE users ALTER COLUMN details TYPE jsonb USING details::jsonb;
ALTER TABLE organizations ALTER COLUMN settings TYPE jsonb USING settings::jsonb;
UPDATE alembic_version SET version_num = '9e8c841d1a30';
