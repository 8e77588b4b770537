"""Codecs: how apps store an encrypted value, byte-compatible with the apps themselves.

- ``AesCtrJsonCodec``: AES-256-CTR, the key is the secret's UTF-8 bytes (32 of them), a random
  16-byte IV per value, stored as ``{"iv":"<hex>","content":"<hex>"}``; the plaintext is trimmed
  as JavaScript trims (``js_trim``) first. No MAC: a wrong key yields garbage, never an error (see
  ``coolify_migrate.secrets.keys``). Coolify v3 stores its secrets this way.
- ``FernetCodec``: Fernet with key = urlsafe-base64(SHA-256(secret)), as sqlalchemy-utils'
  FernetEngine derives it (Redash); a wrong key raises.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from coolify_migrate.core.codec import Codec, DecryptError
from coolify_migrate.core.secret import Secret

__all__ = ["AesCtrJsonCodec", "Codec", "DecryptError", "FernetCodec", "decrypt_text", "js_trim"]

_HEX = re.compile(r"[0-9a-fA-F]*")
_HEAD, _MIDDLE, _TAIL = '{"iv":"', '","content":"', '"}'


def _exact(stored: object) -> tuple[bytes, bytes] | None:
    """(iv, content) of ``{"iv":"<32 hex>","content":"<hex>"}`` spelled exactly so, else None.
    ``bytes.fromhex`` refuses what is not hex but skips blanks between bytes, so the lengths are
    checked too: the same values as the JSON path, without a parse (a regex costs more)."""
    if not (isinstance(stored, str) and stored.startswith(_HEAD) and stored.endswith(_TAIL)):
        return None
    if stored[39:52] != _MIDDLE:
        return None
    iv_hex, content_hex = stored[7:39], stored[52:-2]
    try:
        iv, content = bytes.fromhex(iv_hex), bytes.fromhex(content_hex)
    except ValueError:
        return None
    if len(iv) != _BLOCK or 2 * len(content) != len(content_hex):
        return None
    return iv, content


_BLOCK = 16
_COUNTERS = 1 << 128  # CTR increments the whole 16-byte IV as one big-endian number, wrapping


@functools.lru_cache(maxsize=256)
def _ramp(blocks: int) -> tuple[int, int]:
    """(R, S) such that ``iv * R + S``, written big-endian in ``16 * blocks`` bytes, is the
    counter blocks iv, iv + 1, ..., iv + blocks - 1 end to end (when none of them wraps)."""
    one = (1).to_bytes(_BLOCK, "big")
    steps = b"".join(j.to_bytes(_BLOCK, "big") for j in range(blocks))
    return int.from_bytes(one * blocks, "big"), int.from_bytes(steps, "big")


def _counter_blocks(iv: bytes, blocks: int) -> bytes:
    start = int.from_bytes(iv, "big")
    if start + blocks <= _COUNTERS:
        ones, steps = _ramp(blocks)
        return (start * ones + steps).to_bytes(_BLOCK * blocks, "big")
    return b"".join(((start + j) % _COUNTERS).to_bytes(_BLOCK, "big") for j in range(blocks))


# What JavaScript's String.prototype.trim() removes (WhiteSpace and LineTerminator): Coolify v3
# trims with it before encrypting. Python's str.strip() differs: it also strips U+001C..U+001F and
# U+0085 and keeps U+FEFF, so it would encrypt some values differently from the app.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_trim(text: str) -> str:
    """``text.trim()`` as JavaScript defines it: what a Node app encrypts after trimming."""
    return text.strip(JS_WHITESPACE)


def decrypt_text(codec: Codec, key: Secret, stored: str) -> str:
    """Decrypt and decode strictly as UTF-8 (invalid bytes mean garbage, i.e. a wrong key)."""
    raw = codec.decrypt_bytes(key, stored)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DecryptError("decrypted bytes are not UTF-8") from err


class AesCtrJsonCodec:
    name = "aes-256-ctr-json"
    authenticated = False
    KEY_LEN = 32

    def __init__(self) -> None:
        self._aes: dict[bytes, algorithms.AES] = {}

    def _algo(self, key: Secret) -> algorithms.AES:
        raw = key.encode()
        algo = self._aes.get(raw)
        if algo is None:
            if len(raw) != self.KEY_LEN:
                raise DecryptError(f"a Coolify v3 key must be {self.KEY_LEN} bytes, not {len(raw)}")
            algo = algorithms.AES(raw)
            if len(self._aes) > 16:
                self._aes.clear()
            self._aes[raw] = algo
        return algo

    def encrypt(self, key: Secret, plaintext: str, *, iv: bytes | None = None) -> str:
        return self.encrypt_exact(key, js_trim(plaintext), iv=iv)

    def encrypt_exact(self, key: Secret, plaintext: str, *, iv: bytes | None = None) -> str:
        return self.encrypt_raw(key, plaintext.encode("utf-8"), iv=iv)

    def encrypt_raw(self, key: Secret, raw: bytes, *, iv: bytes | None = None) -> str:
        iv = iv if iv is not None else os.urandom(16)
        enc = Cipher(self._algo(key), modes.CTR(iv)).encryptor()
        content = enc.update(raw) + enc.finalize()
        return '{"iv":"' + iv.hex() + '","content":"' + content.hex() + '"}'

    def encrypt_many(
        self, key: Secret, plaintexts: Sequence[str], *, ivs: bytes | None = None
    ) -> list[str]:
        """``encrypt`` of each plaintext (``ivs``: 16 bytes per value, random if not given) in
        one AES call (``encrypt_raw_many``). Byte-identical to ``encrypt`` with the same IVs
        (tests/test_codecs.py checks it against that and against Node)."""
        return self.encrypt_raw_many(key, [js_trim(p).encode("utf-8") for p in plaintexts], ivs=ivs)

    def encrypt_raw_many(
        self, key: Secret, raws: Sequence[bytes], *, ivs: bytes | None = None
    ) -> list[str]:
        """``encrypt_raw`` of each value, the keystreams of all of them in one AES call."""
        count = len(raws)
        ivs = ivs if ivs is not None else os.urandom(_BLOCK * count)
        if len(ivs) != _BLOCK * count:
            raise ValueError(f"encrypt_raw_many needs {_BLOCK} IV bytes per value")
        contents = self._xor_many(
            key, [ivs[_BLOCK * i : _BLOCK * (i + 1)] for i in range(count)], raws
        )
        iv_hex = ivs.hex()
        return [
            '{"iv":"' + iv_hex[32 * i : 32 * (i + 1)] + '","content":"' + c.hex() + '"}'
            for i, c in enumerate(contents)
        ]

    def decrypt_many(self, key: Secret, parts: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """``decrypt_split`` of each (iv, content), the keystreams in one AES call. AES-CTR never
        refuses a key, so no item is None (an authenticated codec's may be)."""
        return list(self._xor_many(key, [iv for iv, _ in parts], [c for _, c in parts]))

    def _xor_many(self, key: Secret, ivs: Sequence[bytes], datas: Sequence[bytes]) -> list[bytes]:
        """CTR over many values at once: its keystream is AES-ECB over the counter blocks, so
        the blocks of every value are enciphered together, then XORed with the values
        zero-padded end to end, and cut back to each value's length."""
        if not datas:
            return []
        counters: list[bytes] = []
        padded: list[bytes] = []
        for iv, data in zip(ivs, datas, strict=True):
            blocks = -(-len(data) // _BLOCK)
            counters.append(_counter_blocks(iv, blocks))
            padded.append(data + bytes(_BLOCK * blocks - len(data)))
        enc = Cipher(self._algo(key), modes.ECB()).encryptor()
        stream = enc.update(b"".join(counters)) + enc.finalize()
        if not stream:
            return [b"" for _ in datas]
        mixed = (int.from_bytes(stream, "big") ^ int.from_bytes(b"".join(padded), "big")).to_bytes(
            len(stream), "big"
        )
        out = []
        at = 0
        for data, pad in zip(datas, padded, strict=True):
            out.append(mixed[at : at + len(data)])
            at += len(pad)
        return out

    def _split(self, stored: str) -> tuple[bytes, bytes]:
        """The IV and content of v3's ``{"iv":"<32 hex>","content":"<hex>"}``; anything else
        (text that is not JSON, a suffix after the JSON, other shapes) is not ciphertext. The
        exact form the app writes is matched without a JSON parse; other spellings of the same
        JSON (spaces, key order, escapes) take the parser."""
        exact = _exact(stored)
        if exact is not None:
            return exact
        try:
            doc = json.loads(stored)
        except (ValueError, TypeError) as err:
            raise DecryptError("not a Coolify v3 encrypted value") from err
        iv = doc.get("iv") if isinstance(doc, dict) else None
        content = doc.get("content") if isinstance(doc, dict) else None
        if not (isinstance(iv, str) and isinstance(content, str)):
            raise DecryptError("not a Coolify v3 encrypted value")
        if len(iv) != 32 or len(content) % 2 or not _HEX.fullmatch(iv + content):
            raise DecryptError("not a Coolify v3 encrypted value (IV or content is not hex)")
        return bytes.fromhex(iv), bytes.fromhex(content)

    def split(self, stored: str) -> tuple[bytes, bytes]:
        return self._split(stored)

    def decrypt_split(self, key: Secret, iv: bytes, content: bytes) -> bytes:
        dec = Cipher(self._algo(key), modes.CTR(iv)).decryptor()
        return dec.update(content) + dec.finalize()

    def decrypt_bytes(self, key: Secret, stored: str) -> bytes:
        iv, content = self._split(stored)
        return self.decrypt_split(key, iv, content)

    def is_encrypted(self, stored: str) -> bool:
        return self.parts(stored) is not None

    def parts(self, stored: str) -> tuple[bytes, bytes] | None:
        """(iv, content) of a ciphertext, None for anything else: classifies and splits with
        one parse."""
        exact = _exact(stored)
        if exact is not None:
            return exact
        try:
            return self._split(stored)
        except DecryptError:
            return None


class FernetCodec:
    name = "fernet"
    authenticated = True

    def __init__(self) -> None:
        self._cache: dict[bytes, Fernet] = {}

    def _fernet(self, key: Secret) -> Fernet:
        raw = key.encode()
        f = self._cache.get(raw)
        if f is None:
            f = Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))
            self._cache[raw] = f
        return f

    def encrypt(self, key: Secret, plaintext: str) -> str:
        return self._fernet(key).encrypt(plaintext.encode("utf-8")).decode("ascii")

    encrypt_exact = encrypt

    def encrypt_raw(self, key: Secret, raw: bytes) -> str:
        return self._fernet(key).encrypt(raw).decode("ascii")

    def split(self, stored: str) -> tuple[bytes, bytes]:
        try:
            return b"", stored.encode("ascii")  # a Fernet token carries its own IV
        except UnicodeEncodeError as err:
            raise DecryptError("not a Fernet token") from err

    def decrypt_split(self, key: Secret, iv: bytes, content: bytes) -> bytes:
        return self.decrypt_bytes(key, content.decode("ascii"))

    def decrypt_bytes(self, key: Secret, stored: str) -> bytes:
        try:
            return self._fernet(key).decrypt(stored.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as err:
            raise DecryptError("token does not decrypt under this key") from err

    def is_encrypted(self, stored: str) -> bool:
        return stored.startswith("gAAAAA")

    def parts(self, stored: str) -> tuple[bytes, bytes] | None:
        if not self.is_encrypted(stored):
            return None
        try:
            return self.split(stored)
        except DecryptError:
            return None

    def decrypt_many(self, key: Secret, parts: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """``decrypt_split`` of each token; None where the key is refused (wrong key, or not
        authentic)."""
        fernet = self._fernet(key)
        out: list[bytes | None] = []
        for _, token in parts:
            try:
                out.append(fernet.decrypt(token))
            except InvalidToken:
                out.append(None)
        return out

    def encrypt_raw_many(self, key: Secret, raws: Sequence[bytes]) -> list[str]:
        fernet = self._fernet(key)
        return [fernet.encrypt(raw).decode("ascii") for raw in raws]
