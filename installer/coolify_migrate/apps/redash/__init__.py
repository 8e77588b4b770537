"""Redash: its two secrets, its two encrypted fields (PostgreSQL, Fernet), its Compose project and
its releases with their alembic heads (see ``profile``)."""
