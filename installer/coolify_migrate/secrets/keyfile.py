"""``--key-file FILE``: keys the operator hands in, never on the command line, never printed.

One key per line. A line ``NAME=value`` counts as the key ``value`` (so the app container's
``/app/.env``, copied out with ``docker cp coolify:/app/.env keys``, can be given as it is); blank
lines and lines starting with ``#`` are skipped. The file is read once, bounded in size; its keys
are candidates only: each must still be proven by the data before anything uses it.
"""

from __future__ import annotations

import re
from pathlib import Path

from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.errors import UsageError
from coolify_migrate.core.secret import Secret

MAX_BYTES = 64 * 1024
MAX_KEYS = 1000


def load(path: Path, *, names: re.Pattern[str] | None = None) -> list[KeyCandidate]:
    """The keys in ``path``; of its ``NAME=value`` lines only those whose name ``names`` matches
    (the profile's secret names) when given."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise UsageError(
            f"cannot read the key file {path}: {err.strerror}",
            hint="give a readable file with one key per line",
        ) from err
    if len(data) > MAX_BYTES:
        raise UsageError(
            f"the key file {path} is larger than {MAX_BYTES // 1024} KiB",
            hint="a key file holds one key per line, nothing else",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"the key file {path} is not UTF-8 text") from err
    found: list[KeyCandidate] = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip().replace("_", "").isalnum():
            if names is not None and not names.fullmatch(name.strip()):
                continue  # another setting of the app, not a key
            line, where = value.strip(), f"key file {path.name} ({name.strip()})"
        else:
            where = f"key file {path.name} line {n}"
        if line:
            found.append(KeyCandidate(where, Secret(line)))
        if len(found) > MAX_KEYS:
            raise UsageError(f"the key file {path} holds more than {MAX_KEYS} keys")
    if not found:
        raise UsageError(f"the key file {path} holds no key", hint="one key per line")
    return found
