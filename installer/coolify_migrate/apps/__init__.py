"""The apps this tool knows, each a package that fills in ``coolify_migrate.core.app``.

Nothing below this package names an app: the CLI picks one here (``--app``, else found from the
install directory) and hands it down in the context.
"""

from __future__ import annotations

from pathlib import Path

from coolify_migrate.core.app import Profile
from coolify_migrate.core.errors import UsageError

NAMES = ("coolify-v3", "redash")
DEFAULT = "coolify-v3"


def get_profile(name: str = DEFAULT) -> Profile:
    if name == "coolify-v3":
        from coolify_migrate.apps.coolify_v3.profile import CoolifyV3

        return CoolifyV3()
    if name == "redash":
        from coolify_migrate.apps.redash.profile import Redash

        return Redash()
    raise UsageError(f"unknown app {name!r}", hint=f"--app takes one of: {', '.join(NAMES)}")


def detect(directory: Path) -> str | None:
    """The app whose layout ``directory`` has, or None: Redash's ``env`` beside a Compose file
    naming its image; Coolify v3's ``.env``."""
    for name in ("redash", "coolify-v3"):
        if get_profile(name).recognises(directory):
            return name
    return None
