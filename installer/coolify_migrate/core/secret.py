"""Secret values that cannot leak by accident, and the fingerprints that name them.

A ``Secret`` prints as ``***`` in every repr, str and format, refuses to be pickled, and compares
in constant time. Its fingerprint is an HMAC of a fixed label under the key: it names a key in
output, manifests and keyrings without revealing it. The full HMAC is the key-check value stored
in the database, so the tool can tell which key encrypted the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LABEL = b"coolify-migrate key check v1"
FINGERPRINT_LEN = 16


class Secret:
    __slots__ = ("_check", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._check: str | None = None  # the HMAC, made once: a Secret never changes

    def reveal(self) -> str:
        return self._value

    def encode(self) -> bytes:
        return self._value.encode("utf-8")

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here: hashlib and hmac load OpenSSL, not a cost of every start (--help)

        return hmac.compare_digest(self.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(self.check_value)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Secret values cannot be pickled")

    @property
    def check_value(self) -> str:
        """Full HMAC-SHA256 hex: stored beside the data to prove which key encrypted it."""
        if self._check is None:
            import hashlib
            import hmac

            self._check = hmac.new(self.encode(), _LABEL, hashlib.sha256).hexdigest()
        return self._check

    @property
    def fingerprint(self) -> str:
        """Short public name of the key; safe to print and store."""
        return self.check_value[:FINGERPRINT_LEN]


def check_state(recorded: str | None, key: Secret) -> str:
    """``match``/``mismatch`` of the key-check value stored in the database, or ``not recorded``."""
    if not recorded:
        return "not recorded"
    return "match" if recorded == key.check_value else "mismatch"


def fingerprint_matches(fingerprint_or_check: str, key: Secret) -> bool:
    return key.check_value.startswith(fingerprint_or_check) and len(fingerprint_or_check) >= 8


class Redactor:
    """Replaces every registered secret value in text with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        for v in values:
            self.add(v)

    def add(self, value: str | Secret | None) -> None:
        raw = value.reveal() if isinstance(value, Secret) else value
        if raw and len(raw) >= 6:  # very short values would redact ordinary words
            self._values.add(raw)

    def redact(self, text: str) -> str:
        for v in sorted(self._values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, "***")
        return _STORED.sub("***", text)


# Stored encrypted values (Coolify v3's {"iv":..,"content":..}, also JSON-escaped, and Fernet
# tokens) are never printed either: no key is needed to recognise one, and an error quoting a
# row must not carry it out.
_STORED = re.compile(
    r'\{\s*\\?"iv\\?"\s*:\s*\\?"[0-9a-fA-F]{32}\\?"\s*,'
    r'\s*\\?"content\\?"\s*:\s*\\?"[0-9a-fA-F]*\\?"\s*\}'
    r"|\bgAAAAA[A-Za-z0-9_\-]{40,}={0,2}"
)
