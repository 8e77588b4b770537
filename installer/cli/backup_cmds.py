"""Commands: backup (registered on import)."""
