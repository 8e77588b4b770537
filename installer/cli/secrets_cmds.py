"""Commands: secrets (registered on import)."""
