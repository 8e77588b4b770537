"""The date-seeded key of Coolify v3's installers before 2023-07-14, and the search that proves it.

The installer ran ``echo <unix-ms> | sha256sum | base64 | head -c 32``. ``sha256sum`` prints 64 hex
digits, two spaces, ``-`` and a newline; 32 base64 characters cover exactly the first 24 of those
hex digits. So a key of this scheme is the base64 of 24 lowercase hex digits, and those digits
are the first 12 bytes of SHA-256(``"<ms>\\n"``). That gives a fast test of the *form* (a key that
does not decode to 24 hex digits cannot be date-seeded) and a cheap search: compare 12 digest bytes
per candidate millisecond.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_HEX24 = re.compile(rb"[0-9a-f]{24}")


def date_seeded_key(ms: int) -> str:
    digest = hashlib.sha256(f"{ms}\n".encode()).hexdigest()
    return base64.b64encode(digest[:24].encode()).decode()


def digest_prefix(key: str) -> bytes | None:
    """The 12 digest bytes a date-seeded key encodes, or None when the key has another form."""
    if len(key) != 32:
        return None
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not _HEX24.fullmatch(raw):
        return None
    return bytes.fromhex(raw.decode())


def scan(prefix: bytes, start_ms: int, stop_ms: int) -> int | None:
    """Return the first ms in [start_ms, stop_ms) whose key has this digest prefix."""
    sha = hashlib.sha256
    for ms in range(start_ms, stop_ms):
        if sha(b"%d\n" % ms).digest()[:12] == prefix:
            return ms
    return None
