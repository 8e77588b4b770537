"""The apps this tool knows, each a package that fills in ``coolify_migrate.core.app``.

Nothing below this package names an app: the CLI picks one here (``--app``, else found from the
install directory) and hands it down in the context. Finding the app reads only each package's
own small module; the profile of the app found is the only one imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from coolify_migrate.apps import coolify_v3, redash
from coolify_migrate.core.errors import UsageError

if TYPE_CHECKING:
    from coolify_migrate.core.app import Profile

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


def recognises(name: str, directory: Path) -> bool:
    """Whether ``directory`` holds an installation of app ``name`` (``Profile.recognises``)."""
    return {"coolify-v3": coolify_v3.installed_in, "redash": redash.installed_in}[name](directory)


def default_dir(name: str) -> Path:
    """Where app ``name`` is installed when no directory is given (``Profile.default_dir``)."""
    found = {"coolify-v3": coolify_v3.DEFAULT_DIR, "redash": redash.DEFAULT_DIR}[name]
    return Path(found).expanduser().absolute()


def detect(directory: Path) -> str | None:
    """The app whose layout ``directory`` has, or None: Redash's ``env`` beside a Compose file
    naming its image; Coolify v3's ``.env``."""
    for name in ("redash", "coolify-v3"):
        if recognises(name, directory):
            return name
    return None
