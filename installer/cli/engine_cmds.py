"""Commands: engine (registered on import)."""
