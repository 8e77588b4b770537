"""Redash: its two secrets, its two encrypted fields (PostgreSQL, Fernet), its Compose project and
its releases with their alembic heads (see ``profile``).

What tells a Redash installation from another app's is here, apart from the profile: the command
line reads it to choose the app before it imports any profile (``coolify_migrate.apps.detect``).
"""

from __future__ import annotations

from pathlib import Path

IMAGE_REPO = "redash/redash"
ENV_FILE = "env"  # /opt/redash/env: read by every service through Compose's env_file
COMPOSE_FILES = ("compose.yaml", "docker-compose.yml")  # the first found is the project's
DEFAULT_DIR = "/opt/redash"


def installed_in(directory: Path) -> bool:
    """An ``env`` file beside a Compose file naming Redash's image."""
    if not (directory / ENV_FILE).is_file():
        return False
    for name in COMPOSE_FILES:
        path = directory / name
        if path.is_file() and IMAGE_REPO in path.read_text("utf-8", "replace"):
            return True
    return False
