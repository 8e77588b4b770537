"""What Coolify v3's own Node.js code made of a stored value, reproduced byte for byte.

``secrets repair`` must recognise the garbage that v3's start-up roll wrote when it re-ran with the
wrong "old" key. That roll did ``encrypt(decrypt(stored, old), new)`` per value, where:

- ``decrypt`` returned nothing for an empty value or key; parsed the stored text as JSON; took
  ``iv`` and ``content`` through ``Buffer.from(x, 'hex')`` (which stops at the first pair that is
  not hex, silently); let Node's AES-256-CTR refuse a key that is not 32 bytes or an IV that is not
  16; and turned the result into a string with ``Buffer.toString()``: UTF-8 where every invalid
  sequence becomes U+FFFD. Any exception returned the stored text unchanged.
- ``encrypt`` returned nothing for an empty text, else encrypted ``text.trim()`` (JavaScript's
  white space set) as UTF-8 under a fresh IV.

So the plaintext a re-roll wrote is ``utf8(js_trim(lossy_utf8(ctr(old, stored))))``, or the
trimmed stored text itself when decryption threw. These functions compute exactly that; the tests
check them against Node itself on random and malformed input.
"""

from __future__ import annotations

import json
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from coolify_migrate.crypto.codecs import js_trim

_HEX_PAIR = re.compile(r"(?:[0-9A-Fa-f]{2})*")


def node_hex(text: str) -> bytes:
    """``Buffer.from(text, 'hex')``: decodes pairs until the first one that is not hex."""
    return bytes.fromhex(_HEX_PAIR.match(text).group(0))  # type: ignore[union-attr]


def node_decrypt(stored: str | None, key: bytes) -> str | None:
    """v3's ``decrypt(hashString, secret)``: None where it returned ``undefined``."""
    if not stored or not key:
        return None
    try:
        doc = json.loads(stored)
    except ValueError:
        return stored
    if not isinstance(doc, dict):
        # JSON.parse gave a number, string, array or null: reading .iv of it either threw or
        # gave undefined, and Buffer.from(undefined) throws: the catch returned the text.
        return stored
    iv, content = doc.get("iv"), doc.get("content")
    if not isinstance(iv, str) or not isinstance(content, str):
        return stored  # Buffer.from of a non-string here threw (arrays aside: never written)
    raw_iv = node_hex(iv)
    if len(key) != 32 or len(raw_iv) != 16:
        return stored  # createDecipheriv refused the key or IV length
    dec = Cipher(algorithms.AES(key), modes.CTR(raw_iv)).decryptor()
    plain = dec.update(node_hex(content)) + dec.finalize()
    return plain.decode("utf-8", errors="replace")


def reroll_plaintext(stored: str | None, old_key: bytes) -> bytes | None:
    """The bytes v3's roll encrypted under its new key for ``stored``, or None when it left the
    value unchanged (``encrypt`` of an empty text returned ``undefined``: Prisma skipped it)."""
    text = node_decrypt(stored, old_key)
    if not text:
        return None
    return js_trim(text).encode("utf-8")
