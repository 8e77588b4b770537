"""The apps this tool knows, each a package that fills in ``coolify_migrate.core.app``.

Nothing below this package names an app: the CLI picks one here and hands it down in the
context.
"""

from __future__ import annotations

from coolify_migrate.core.app import Profile
from coolify_migrate.core.errors import UsageError

NAMES = ("coolify-v3", "redash")


def get_profile(name: str = "coolify-v3") -> Profile:
    if name == "coolify-v3":
        from coolify_migrate.apps.coolify_v3.profile import CoolifyV3

        return CoolifyV3()
    if name == "redash":
        from coolify_migrate.apps.redash.profile import Redash

        return Redash()
    raise UsageError(f"unknown app profile {name!r}", hint=f"one of: {', '.join(NAMES)}")
