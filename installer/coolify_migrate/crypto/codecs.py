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
import binascii
import contextlib
import functools
import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from coolify_migrate.core.codec import Codec, DecryptError
from coolify_migrate.core.secret import Secret

__all__ = ["AesCtrJsonCodec", "Codec", "DecryptError", "FernetCodec", "decrypt_text", "js_trim"]

_HEX = re.compile(r"[0-9a-fA-F]*")
_HEAD, _MIDDLE, _TAIL = '{"iv":"', '","content":"', '"}'
_SHORTEST = len(_HEAD) + 32 + len(_MIDDLE) + len(_TAIL)  # an empty content


def _exact(stored: object) -> tuple[bytes, bytes] | None:
    """(iv, content) of ``{"iv":"<32 hex>","content":"<hex>"}`` spelled exactly so, else None."""
    return _exact_many((stored,))[0]


def _exact_many(stored: Sequence[object]) -> list[tuple[bytes, bytes] | None]:
    """``_exact`` of each value, in one loop (a roll parses every value twice). ``unhexlify``
    refuses what is not hex (blanks and non-ASCII too; the lengths are checked besides): the
    same values as the JSON path, without a parse (a regex costs more). It is about twice as
    fast as ``bytes.fromhex`` on the lengths v3 stores (docs/performance.md)."""
    out: list[tuple[bytes, bytes] | None] = []
    fromhex = binascii.unhexlify
    for value in stored:
        if not (
            type(value) is str
            and len(value) >= _SHORTEST  # else the tail's quote could be the separator's
            and value.startswith(_HEAD)
            and value.endswith(_TAIL)
            and value[39:52] == _MIDDLE
        ):
            out.append(None)
            continue
        content_hex = value[52:-2]
        try:
            iv, content = fromhex(value[7:39]), fromhex(content_hex)
        except ValueError:
            out.append(None)
            continue
        if len(iv) != _BLOCK or 2 * len(content) != len(content_hex):
            out.append(None)
            continue
        out.append((iv, content))
    return out


_BLOCK = 16
_COUNTERS = 1 << 128  # CTR increments the whole 16-byte IV as one big-endian number, wrapping
_PADS = [bytes(n) for n in range(_BLOCK)]  # zeros that fill a value's last block


@functools.cache
def _numpy() -> Any:
    """NumPy, imported when a batch is first decrypted (the commands that never decrypt a
    batch, ``status`` among them, do not pay for its import)."""
    import numpy

    return numpy


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
        """``encrypt_raw`` of each value. Without ``ivs``: the values' counter ranges follow
        one another from one random 128-bit start (each value's IV is where its range starts,
        an empty value still gets a block of its own), so OpenSSL's CTR mode encrypts the whole
        batch, zero-padded end to end, in one call. CTR needs every (key, counter block) pair
        used once: consecutive ranges from a random start give that as random IVs per value do
        (docs/architecture.md). With ``ivs`` (16 bytes per value, as tests give them): the
        keystreams of those IVs in one AES call (``_xor_many``)."""
        count = len(raws)
        if ivs is not None:
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
        if not count:
            return []
        padded: list[bytes] = []
        for raw in raws:
            padded.append(raw)
            padded.append(_PADS[-len(raw) % _BLOCK] if raw else _PADS[0] + bytes(_BLOCK))
        buffer = b"".join(padded)
        while True:  # a start whose range would wrap is drawn again (chance ~ 2^-100)
            start = int.from_bytes(os.urandom(_BLOCK), "big")
            if start + len(buffer) // _BLOCK <= _COUNTERS:
                break
        enc = Cipher(self._algo(key), modes.CTR(start.to_bytes(_BLOCK, "big"))).encryptor()
        content_hex = (enc.update(buffer) + enc.finalize()).hex()
        out = []
        at = 0  # in hex digits
        for raw in raws:
            size = 2 * len(raw)
            out.append(f'{{"iv":"{start:032x}","content":"{content_hex[at : at + size]}"}}')
            blocks = max(1, -(-len(raw) // _BLOCK))
            at += 2 * _BLOCK * blocks
            start += blocks
        return out

    def decrypt_many(self, key: Secret, parts: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """``decrypt_split`` of each (iv, content), the keystreams in one AES call. AES-CTR never
        refuses a key, so no item is None (an authenticated codec's may be)."""
        return list(self._xor_many(key, [iv for iv, _ in parts], [c for _, c in parts]))

    def _xor_many(self, key: Secret, ivs: Sequence[bytes], datas: Sequence[bytes]) -> list[bytes]:
        """CTR over many values at once, computed from first principles (not with OpenSSL's CTR
        mode, which ``encrypt_raw_many`` uses: in a roll the two check each other). A value's
        keystream is AES-ECB over its counter blocks iv, iv + 1, .. (mod 2^128). NumPy builds
        the counter blocks of every value at once (each IV repeated once per block, plus 0, 1,
        2, .. as two 64-bit halves, the low half's carry added to the high one: both wrap as
        CTR does), they are enciphered in one call, XORed with the values zero-padded end to
        end, and cut back to each value's length."""
        if not datas:
            return []
        np = _numpy()
        sizes = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
        blocks = (sizes + (_BLOCK - 1)) // _BLOCK
        total = int(blocks.sum())
        if not total:
            return [b"" for _ in datas]
        halves = np.frombuffer(b"".join(ivs), dtype=">u8").reshape(-1, 2)
        first = np.repeat(halves, blocks, axis=0).astype(np.uint64)
        step = np.arange(total, dtype=np.uint64) - np.repeat(
            (np.cumsum(blocks) - blocks).astype(np.uint64), blocks
        )
        counters = np.empty((total, 2), dtype=">u8")
        low = first[:, 1] + step  # wraps mod 2^64: then it is below the step it added
        counters[:, 1] = low
        counters[:, 0] = first[:, 0] + (low < step)
        enc = Cipher(self._algo(key), modes.ECB()).encryptor()
        stream = enc.update(counters.tobytes()) + enc.finalize()
        padded: list[bytes] = []
        for data in datas:
            padded.append(data)
            padded.append(_PADS[-len(data) % _BLOCK])
        mixed = (
            np.frombuffer(stream, dtype=np.uint8) ^ np.frombuffer(b"".join(padded), dtype=np.uint8)
        ).tobytes()
        out = []
        at = 0
        for data in datas:
            size = len(data)
            out.append(mixed[at : at + size])
            at += size + (-size % _BLOCK)
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
        return self.parts_many((stored,))[0]

    def parts_many(self, stored: Sequence[object]) -> list[tuple[bytes, bytes] | None]:
        """``parts`` of each value (None, empty, not text: None): the exact form in one loop,
        any other spelling through the JSON path."""
        out = _exact_many(stored)
        for k, found in enumerate(out):
            value = stored[k]
            if found is None and type(value) is str and value:
                with contextlib.suppress(DecryptError):
                    out[k] = self._split(value)
        return out


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

    def parts_many(self, stored: Sequence[object]) -> list[tuple[bytes, bytes] | None]:
        return [self.parts(v) if type(v) is str and v else None for v in stored]

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
