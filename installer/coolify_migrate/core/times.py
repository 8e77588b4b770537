"""Times as operators type them: ISO-8601 with a zone, or epoch milliseconds."""

from __future__ import annotations

from datetime import datetime

from coolify_migrate.core.errors import UsageError


def parse_time(text: str) -> int:
    """ISO-8601 time (``2023-07-18T10:09:02.980Z``) or epoch milliseconds -> epoch ms."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as err:
        raise UsageError(
            f"{raw!r} is not an ISO-8601 time", hint="e.g. 2023-07-18T10:09:02.980Z"
        ) from err
    if when.tzinfo is None:
        raise UsageError(f"{raw!r} has no time zone", hint="add Z (UTC) or an offset like +02:00")
    return round(when.timestamp() * 1000)
