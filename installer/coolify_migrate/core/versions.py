"""Version strings: one normalised form everywhere (``v3.12.32`` is ``3.12.32``)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from coolify_migrate.core.errors import UsageError


def parse_version(text: str, *, what: str = "version") -> Version:
    raw = text.strip()
    try:
        return Version(raw)
    except InvalidVersion as err:
        raise UsageError(
            f"{what} {raw!r} is not a version number",
            hint="write it like 3.12.36 (a leading v is accepted)",
        ) from err


def normalize(text: str) -> str:
    """``'v3.12.32'`` -> ``'3.12.32'``; the form image tags use (they have no ``v``)."""
    return str(parse_version(text))
