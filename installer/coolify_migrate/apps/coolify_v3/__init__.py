"""Coolify v3: its keys, its 59 encrypted fields, its images and container, its migration steps,
its real schema and a demo instance shaped like it (see ``profile``).

What tells a Coolify v3 installation is here, apart from the profile: the command line reads it
to choose the app before it imports any profile (``coolify_migrate.apps.detect``).
"""

from __future__ import annotations

from pathlib import Path

ENV_FILE = ".env"
DEFAULT_DIR = "~/coolify"


def installed_in(directory: Path) -> bool:
    """A ``.env`` file."""
    return (directory / ENV_FILE).is_file()
