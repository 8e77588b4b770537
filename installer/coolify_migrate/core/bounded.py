"""Reading what comes from outside the tool with limits: at most so many bytes, JSON at most so
deep. ``--manifest /dev/zero`` or a file of a million ``[`` is refused in one line instead of
filling memory or overflowing the parser's stack.

Each reader takes the error class to raise, so a manifest's problem is a ``ManifestError`` and a
``.env``'s an ``EnvFileError``: the message names the file and the limit it broke.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coolify_migrate.core.errors import MigrateError

MANIFEST_BYTES = 4 << 20  # versions.json is a few KiB; a thousand releases fit easily
SIGNATURE_BYTES = 4 << 10  # an Ed25519 signature is 88 characters of base64
ENV_BYTES = 1 << 20  # an app's .env is a few dozen lines
HOOK_OUTPUT_BYTES = 1 << 20  # what one hook may write into the run log
STATE_JSON_BYTES = 16 << 20  # the tool's own JSON files: journal, keyring, backup manifests
JSON_DEPTH = 32  # the deepest document the tool reads nests 4 levels


def read_bytes(path: Path, limit: int, error: type[MigrateError], what: str) -> bytes:
    """The file's bytes, or ``error`` when it holds more than ``limit`` (an endless device too).
    OSError is left to the caller, who knows what a missing file means."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise error(
            f"{what} {path} is larger than {limit >> 10} KiB; refusing to read it",
            hint=f"check that {path} is the file you meant",
        )
    return data


def too_deep(raw: bytes, limit: int = JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than ``limit`` (strings skipped),
    checked on the bytes before the parser recurses into them."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def loads_json(raw: bytes, error: type[MigrateError], what: str, *, depth: int = JSON_DEPTH) -> Any:
    """Parse JSON text, refusing (``error``) invalid UTF-8, invalid JSON and nesting deeper than
    ``depth``."""
    if too_deep(raw, depth):
        raise error(f"{what} nests deeper than {depth} levels; refusing to parse it")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise error(f"{what} is not valid JSON: {err}") from err
