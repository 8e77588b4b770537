"""The app's database behind one interface: SQLite files (Coolify) and PostgreSQL (Redash)."""
