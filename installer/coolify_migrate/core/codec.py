"""What a codec is: how an app stores one encrypted value. Implementations live in
``coolify_migrate.crypto``; an app names the one its fields use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from coolify_migrate.core.secret import Secret


class DecryptError(Exception):
    """A stored value is malformed, or (for authenticated codecs) the key is wrong."""


class Codec(Protocol):
    name: str
    authenticated: bool

    def encrypt(self, key: Secret, plaintext: str) -> str:
        """Encrypt as the app does when it stores a value (v3 trims first)."""
        ...

    def encrypt_exact(self, key: Secret, plaintext: str) -> str:
        """Encrypt exactly these characters: a key roll must not change any plaintext."""
        ...

    def decrypt_bytes(self, key: Secret, stored: str) -> bytes: ...

    def encrypt_raw(self, key: Secret, raw: bytes) -> str:
        """Encrypt these exact bytes (a roll re-encrypts what it decrypted, never decoding it)."""
        ...

    def split(self, stored: str) -> tuple[bytes, bytes]:
        """(iv, content) of a stored ciphertext; DecryptError when it is not one."""
        ...

    def decrypt_split(self, key: Secret, iv: bytes, content: bytes) -> bytes:
        """Decrypt what ``split`` returned (DecryptError when an authenticated codec refuses)."""
        ...

    def is_encrypted(self, stored: str) -> bool: ...

    def parts(self, stored: str) -> tuple[bytes, bytes] | None:
        """``split`` for a ciphertext, None for anything else: one parse, never an exception."""
        ...

    def parts_many(self, stored: Sequence[object]) -> list[tuple[bytes, bytes] | None]:
        """``parts`` of each value; None for NULL, empty and values that are not text too."""
        ...

    def decrypt_many(self, key: Secret, parts: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """``decrypt_split`` of many values at once; None where an authenticated codec refuses."""
        ...

    def encrypt_raw_many(self, key: Secret, raws: Sequence[bytes]) -> list[str]:
        """``encrypt_raw`` of many values at once."""
        ...
