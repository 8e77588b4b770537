"""The v3 cipher against Node's crypto (an independent implementation), and the codecs' edges.

Node's ``aes-256-ctr`` is what Coolify v3 itself runs on; ``tests/node/v3cipher.js`` uses it the
way v3 does. Every kind of value a demo instance holds goes through both directions.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from typing import Any

import node_cipher
import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import (
    JS_WHITESPACE,
    AesCtrJsonCodec,
    DecryptError,
    FernetCodec,
    decrypt_text,
    js_trim,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

V3 = AesCtrJsonCodec()


def require_node() -> None:
    if node_cipher.node_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("node is required under CI for the cross-check", pytrace=False)
    pytest.skip("node is not installed")


def stored_values(demo: DemoInstance) -> dict[tuple[str, str, str], str]:
    conn = sqlite3.connect(demo.db_path)
    try:
        found = {}
        for (table, col, row_id), plain in demo.plaintexts.items():
            if plain is None:
                continue
            (value,) = conn.execute(
                f'SELECT "{col}" FROM "{table}" WHERE id = ?', (row_id,)
            ).fetchone()
            found[(table, col, row_id)] = value
        return found
    finally:
        conn.close()


def kinds(plaintexts: list[str]) -> set[str]:
    seen = set()
    for p in plaintexts:
        if p == "":
            seen.add("empty")
        elif "PRIVATE KEY-----" in p:
            seen.add("pem")
        elif any(ord(c) > 127 for c in p):
            seen.add("unicode")
        else:
            seen.add("ascii")
    return seen


def test_the_demo_covers_every_kind_of_value(demo: DemoInstance) -> None:
    plain = [p for p in demo.plaintexts.values() if p is not None]
    assert kinds(plain) == {"empty", "pem", "unicode", "ascii"}
    assert None in demo.plaintexts.values()  # a NULL where the schema allows it


def test_node_decrypts_what_the_demo_stored(demo: DemoInstance) -> None:
    require_node()
    stored = stored_values(demo)
    got = node_cipher.decrypt_all(demo.key.reveal(), list(stored.values()))
    assert got == [demo.plaintexts[k] for k in stored]


def test_node_decrypts_what_python_encrypts(demo: DemoInstance) -> None:
    require_node()
    key = new_key()
    plain = [p for p in demo.plaintexts.values() if p is not None]
    # Untrimmed input as well: both sides trim before encrypting.
    plain += ["  padded  ", "\n\ttabs and newlines\n", "   "]
    encrypted = [V3.encrypt(key, p) for p in plain]
    assert node_cipher.decrypt_all(key.reveal(), encrypted) == [p.strip() for p in plain]


def test_python_decrypts_what_node_encrypts(demo: DemoInstance) -> None:
    require_node()
    key = new_key()
    plain = [p for p in demo.plaintexts.values() if p is not None] + ["  padded  ", "   "]
    from_node = node_cipher.encrypt_all(key.reveal(), plain)
    assert [decrypt_text(V3, key, v) for v in from_node] == [p.strip() for p in plain]
    for value in from_node:  # the stored format v3 writes
        doc = json.loads(value)
        assert list(doc) == ["iv", "content"]
        assert len(bytes.fromhex(doc["iv"])) == 16
    empty = json.loads(from_node[-1])
    assert empty["content"] == ""  # whitespace-only encrypts to empty content, as in v3


# Every character either language calls whitespace, plus look-alikes neither trims.
EDGE_CHARS = sorted(
    {chr(c) for c in range(0x10000) if chr(c).isspace()}
    | set(JS_WHITESPACE)
    | {"\u180e", "\u200b", "\u2060"}
)


@settings(max_examples=15, deadline=None)
@given(
    texts=st.lists(
        st.text(
            alphabet=st.one_of(
                st.characters(exclude_categories=["Cs"]), st.sampled_from(EDGE_CHARS)
            ),
            max_size=200,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_random_text_round_trips_through_node_both_ways(texts: list[str]) -> None:
    require_node()
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    ours = [V3.encrypt(key, t) for t in texts]
    assert node_cipher.decrypt_all(key.reveal(), ours) == [js_trim(t) for t in texts]
    theirs = node_cipher.encrypt_all(key.reveal(), texts)
    assert [decrypt_text(V3, key, v) for v in theirs] == [js_trim(t) for t in texts]


def test_python_trims_exactly_what_javascript_trims() -> None:
    """v3 trims with JavaScript's ``trim()``, which differs from ``str.strip()`` (U+FEFF,
    U+001C..U+001F, U+0085): the codec must encrypt what the app would."""
    require_node()
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    texts = [f"{c}x{c}" for c in EDGE_CHARS]
    ours = [decrypt_text(V3, key, V3.encrypt(key, t)) for t in texts]
    theirs = [decrypt_text(V3, key, v) for v in node_cipher.encrypt_all(key.reveal(), texts)]
    assert ours == theirs
    assert "\ufeffx\ufeff".strip() != js_trim("\ufeffx\ufeff") == "x"  # where str.strip() is wrong
    assert js_trim("\x85x\x1f") == "\x85x\x1f"


# -- the codec's own edges ----------------------------------------------------------------------


def test_a_fixed_iv_gives_a_fixed_ciphertext() -> None:
    key = Secret("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1")
    iv = bytes(range(16))
    one = V3.encrypt(key, "hunter2", iv=iv)
    assert one == V3.encrypt(key, "hunter2", iv=iv)
    assert json.loads(one)["iv"] == iv.hex()
    assert len(json.loads(one)["content"]) == 2 * len("hunter2")  # CTR: no padding
    assert one != V3.encrypt(key, "hunter2")  # a random IV otherwise


# IVs whose counter wraps past 2**128 inside a value (CTR increments all 16 bytes), next to
# ordinary ones: the batch takes another path for those and must agree with OpenSSL and Node.
WRAPPING_IVS = (b"\xff" * 16, b"\xff" * 15 + b"\xfe", bytes(8) + b"\xff" * 8, bytes(16))
BATCH_TEXTS = [  # the long ones first: they get the wrapping IVs
    "-----BEGIN RSA PRIVATE KEY-----\r\n" + "QUJD" * 800 + "\r\n-----END RSA PRIVATE KEY-----",
    "seventeen bytes!!",
    "p" * 4096,
    "密码🔑秘密 パスワード",
    "",
    "x",
    "sixteen bytes!!!",
    "  padded  ",
    "\ufeff\u00a0trimmed as JavaScript trims\u3000",
]


def batch_ivs(count: int) -> bytes:
    fixed = b"".join(WRAPPING_IVS)
    return (fixed + os.urandom(16 * count))[: 16 * count]


def test_a_batch_encrypts_byte_for_byte_as_one_value_at_a_time() -> None:
    key = Secret("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1")
    texts = [t for t in BATCH_TEXTS for _ in range(2)]
    ivs = batch_ivs(len(texts))
    batch = V3.encrypt_many(key, texts, ivs=ivs)
    assert batch == [V3.encrypt(key, t, iv=ivs[16 * i : 16 * i + 16]) for i, t in enumerate(texts)]
    assert [decrypt_text(V3, key, v) for v in batch] == [js_trim(t) for t in texts]
    fresh = V3.encrypt_many(key, texts)  # random IVs, one per value
    assert len({json.loads(v)["iv"] for v in fresh}) == len(texts)
    assert [decrypt_text(V3, key, v) for v in fresh] == [js_trim(t) for t in texts]
    assert V3.encrypt_many(key, []) == []
    with pytest.raises(ValueError):
        V3.encrypt_many(key, ["a", "b"], ivs=bytes(16))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=1, max_size=30))
def test_any_batch_equals_the_values_one_by_one(texts: list[str]) -> None:
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    ivs = batch_ivs(len(texts))
    assert V3.encrypt_many(key, texts, ivs=ivs) == [
        V3.encrypt(key, t, iv=ivs[16 * i : 16 * i + 16]) for i, t in enumerate(texts)
    ]


def test_node_decrypts_a_batch_including_counters_that_wrap() -> None:
    require_node()
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    batch = V3.encrypt_many(key, BATCH_TEXTS, ivs=batch_ivs(len(BATCH_TEXTS)))
    assert [json.loads(v)["iv"] for v in batch[:2]] == ["ff" * 16, "ff" * 15 + "fe"]
    assert node_cipher.decrypt_all(key.reveal(), batch) == [js_trim(t) for t in BATCH_TEXTS]


def _ranges(stored: list[str]) -> list[tuple[int, int]]:
    """Each value's counter blocks as [first, last + 1), from its IV and its length."""
    out = []
    for value in stored:
        doc = json.loads(value)
        first = int(doc["iv"], 16)
        out.append((first, first + max(1, -(-len(doc["content"]) // 32))))
    return out


def test_a_batch_with_its_own_ivs_never_reuses_a_counter_block() -> None:
    """Without given IVs a batch's values take consecutive counter ranges from one random start
    (one OpenSSL CTR call): no two values' ranges overlap, an empty value has a block of its
    own, each value decrypts on its own through OpenSSL's CTR from its stored IV and through
    the batched path, and two batches start far apart."""
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    texts = [t for t in BATCH_TEXTS for _ in range(3)]
    stored = V3.encrypt_many(key, texts)
    ranges = _ranges(stored)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # end to end
    assert len({r[0] for r in ranges}) == len(texts)  # every IV differs, the empty ones too
    for value, text in zip(stored, texts, strict=True):
        doc = json.loads(value)
        one = Cipher(algorithms.AES(key.encode()), modes.CTR(bytes.fromhex(doc["iv"])))
        assert one.decryptor().update(bytes.fromhex(doc["content"])) == js_trim(text).encode()
    assert [decrypt_text(V3, key, v) for v in stored] == [js_trim(t) for t in texts]
    parts = [V3.parts(v) for v in stored]
    assert V3.decrypt_many(key, [p for p in parts if p]) == [js_trim(t).encode() for t in texts]
    other = _ranges(V3.encrypt_many(key, texts))
    assert other[-1][1] <= ranges[0][0] or ranges[-1][1] <= other[0][0]


def test_node_decrypts_a_batch_with_its_own_ivs() -> None:
    require_node()
    key = Secret("0123456789abcdefghijklmnopqrstuv")
    batch = V3.encrypt_many(key, BATCH_TEXTS)
    assert node_cipher.decrypt_all(key.reveal(), batch) == [js_trim(t) for t in BATCH_TEXTS]


def test_a_wrong_key_gives_garbage_not_an_error() -> None:
    right, wrong = new_key(), new_key()
    stored = V3.encrypt(right, "database password")
    garbage = V3.decrypt_bytes(wrong, stored)  # no MAC: nothing fails here
    assert garbage != b"database password"
    assert len(garbage) == len("database password")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain text",
        "{}",
        '{"iv": "zz", "content": "00"}',
        '{"iv": "00", "content": "00"}',
        '{"iv": null, "content": "00"}',
        '["iv", "content"]',
        '{"iv": "' + "0" * 32 + '"}',
    ],
)
def test_malformed_values_are_decrypt_errors(stored: str) -> None:
    assert not V3.is_encrypted(stored)
    with pytest.raises(DecryptError):
        V3.decrypt_bytes(new_key(), stored)


def test_is_encrypted_accepts_the_v3_format() -> None:
    assert V3.is_encrypted(V3.encrypt(new_key(), "x"))
    assert V3.is_encrypted('{"iv":"' + "ab" * 16 + '","content":""}')


@pytest.mark.parametrize("key", ["short", "x" * 31, "x" * 33, "é" * 16 + "x" * 16])
def test_a_key_must_be_32_bytes(key: str) -> None:
    with pytest.raises(DecryptError, match="32 bytes"):
        V3.encrypt(Secret(key), "x")


def test_non_utf8_plaintext_is_a_decrypt_error() -> None:
    key = new_key()
    stored = V3.encrypt(key, "x")
    doc = json.loads(stored)
    # Flip the one content byte so the plaintext becomes 0xff, which is not UTF-8.
    flipped = bytes([bytes.fromhex(doc["content"])[0] ^ ord("x") ^ 0xFF]).hex()
    bad = json.dumps({"iv": doc["iv"], "content": flipped})
    assert V3.decrypt_bytes(key, bad) == b"\xff"
    with pytest.raises(DecryptError, match="not UTF-8"):
        decrypt_text(V3, key, bad)


def test_fernet_round_trip_and_wrong_key() -> None:
    codec = FernetCodec()
    key = Secret("a redash secret key of any length")
    token = codec.encrypt(key, " kept as is ")
    assert codec.is_encrypted(token)
    assert not codec.is_encrypted("plain")
    assert decrypt_text(codec, key, token) == " kept as is "  # Fernet does not trim
    with pytest.raises(DecryptError):
        codec.decrypt_bytes(Secret("another key"), token)
    with pytest.raises(DecryptError):
        codec.decrypt_bytes(key, "gAAAAA-not-a-token")
    with pytest.raises(DecryptError):
        codec.decrypt_bytes(key, "non-ascii é")


def test_demo_values_in_the_database_decrypt_in_python(demo: DemoInstance) -> None:
    stored: dict[Any, str] = stored_values(demo)
    for where, value in stored.items():
        assert decrypt_text(V3, demo.key, value) == demo.plaintexts[where]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30), st.booleans())
def test_batched_decryption_and_raw_encryption_equal_the_values_one_by_one(
    raws: list[bytes], wrapping: bool
) -> None:
    """What a roll does in batches (``decrypt_many``, ``encrypt_raw_many``) is byte for byte
    what the one-value calls do, for any bytes, empty ones included, in a batch whose counters
    may pass 2^128 (made value by value) or not (made in one addition)."""
    key, other = Secret("0123456789abcdefghijklmnopqrstuv"), Secret("v" * 32)
    ivs = batch_ivs(len(raws)) if wrapping else os.urandom(16 * len(raws))
    one_iv = [ivs[16 * i : 16 * i + 16] for i in range(len(raws))]
    stored = V3.encrypt_raw_many(key, raws, ivs=ivs)
    assert stored == [V3.encrypt_raw(key, r, iv=iv) for r, iv in zip(raws, one_iv, strict=True)]
    parts = [V3.parts(s) for s in stored]
    assert all(p is not None for p in parts)
    split = [p for p in parts if p is not None]
    assert V3.decrypt_many(key, split) == raws
    assert V3.decrypt_many(other, split) == [V3.decrypt_split(other, iv, c) for iv, c in split]


@pytest.mark.parametrize(
    "stored",
    [
        '{"iv":"' + "0" * 32 + '","content":"0a"}',  # the form the app writes
        '{"content": "0A", "iv": "' + "0" * 32 + '"}',  # other spellings of the same JSON
        '{"iv":"\\u0030' + "0" * 31 + '","content":"0a"}',
    ],
)
def test_every_spelling_of_a_ciphertext_splits_the_same(stored: str) -> None:
    assert V3.parts(stored) == (bytes(16), b"\n")
    assert V3.split(stored) == (bytes(16), b"\n")


@pytest.mark.parametrize(
    "stored",
    [
        '{"iv":"' + "0" * 32 + '","content":"0"}',  # odd hex
        '{"iv":"' + "0" * 30 + '","content":"00"}',  # short IV
        '{"iv":"' + "0" * 32 + '","content":"00"}' + " || ''",
        '{"iv":"' + "g" * 32 + '","content":"00"}',
        # the content's closing quote missing: not JSON; its tail overlaps the separator's quote
        '{"iv":"' + "0" * 32 + '","content":"}',
    ],
)
def test_near_misses_are_not_ciphertext(stored: str) -> None:
    assert V3.parts(stored) is None
    assert not V3.is_encrypted(stored)


def test_fernet_batches_refuse_a_wrong_key_value_by_value() -> None:
    codec = FernetCodec()
    key, other = Secret("redash-secret"), Secret("another")
    stored = [*codec.encrypt_raw_many(key, [b"a", b"", "é".encode()]), codec.encrypt(other, "x")]
    parts = [codec.parts(s) for s in stored]
    assert all(p is not None for p in parts)
    got = codec.decrypt_many(key, [p for p in parts if p is not None])
    assert got == [b"a", b"", "\u00e9".encode(), None]
    assert codec.parts("not a token") is None
