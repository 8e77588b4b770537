"""coolify_migrate.apps.coolify_v3.node_roll against Node.js itself: what v3's decrypt returned and what its
start-up roll wrote, for random bytes (mostly invalid UTF-8) and for malformed stored values."""

from __future__ import annotations

import json
import os

import node_cipher
import pytest
from coolify_migrate.apps.coolify_v3.node_roll import node_decrypt, node_hex, reroll_plaintext
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec
from hypothesis import given, settings
from hypothesis import strategies as st

V3 = AesCtrJsonCodec()
OLD = Secret("0123456789abcdefghijklmnopqrstuv")
NEW = Secret("vutsrqponmlkjihgfedcba9876543210")


def require_node() -> None:
    if not node_cipher.node_available():
        if os.environ.get("CI"):
            pytest.fail("node is required under CI")
        pytest.skip("node is not installed")


MALFORMED = [
    "",
    "plain text password",
    "null",
    "123",
    "[1, 2]",
    '"a string"',
    '{"iv": 5, "content": "00"}',
    '{"content": "abcd"}',
    '{"iv": "00112233445566778899aabbccddeeff"}',
    '{"iv": "0011", "content": "abcd"}',  # IV too short: createDecipheriv throws
    '{"iv": "00112233445566778899aabbccddeeff", "content": "abc"}',  # odd hex: truncated
    '{"iv": "00112233445566778899aabbccddeeff", "content": "ab zz cd"}',  # stops at " z"
    '{"iv": "00112233445566778899AABBCCDDEEFF", "content": "ABCDEF0123"}',
    '{"iv": "00112233445566778899aabbccddeeffgg", "content": "abcd"}',  # IV hex stops: 16 bytes
]


def _stored_variants(raw: bytes) -> list[str]:
    good = V3.encrypt_raw(OLD, raw)
    return [good, good + " || ''", good.replace('"}', '", "extra": 1}')]


def test_node_hex_stops_at_the_first_pair_that_is_not_hex() -> None:
    assert node_hex("abcd") == b"\xab\xcd"
    assert node_hex("abc") == b"\xab"
    assert node_hex("ab zzcd") == b"\xab"
    assert node_hex("") == b""


def test_malformed_values_match_node() -> None:
    require_node()
    theirs = node_cipher.v3_decrypt_all(OLD.reveal(), MALFORMED)
    assert [node_decrypt(v, OLD.encode()) for v in MALFORMED] == theirs
    rolled = node_cipher.v3_roll_all(OLD.reveal(), NEW.reveal(), MALFORMED)
    for value, got in zip(MALFORMED, rolled, strict=True):
        mine = reroll_plaintext(value, OLD.encode())
        if got is None:
            assert mine is None, value
        else:
            assert mine == V3.decrypt_bytes(NEW, got), value


@settings(max_examples=20, deadline=None)
@given(blobs=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=30))
def test_random_bytes_decode_and_reroll_exactly_as_node(blobs: list[bytes]) -> None:
    require_node()
    stored = [v for raw in blobs for v in _stored_variants(raw)]
    theirs = node_cipher.v3_decrypt_all(OLD.reveal(), stored)
    assert [node_decrypt(v, OLD.encode()) for v in stored] == theirs
    rolled = node_cipher.v3_roll_all(OLD.reveal(), NEW.reveal(), stored)
    for value, got in zip(stored, rolled, strict=True):
        mine = reroll_plaintext(value, OLD.encode())
        if got is None:
            assert mine is None
        else:
            assert json.loads(got).keys() == {"iv", "content"}
            assert mine == V3.decrypt_bytes(NEW, got)


def test_a_wrong_key_reroll_is_recognised_but_a_right_key_one_is_not_garbage() -> None:
    """The property repair relies on: under the wrong old key the roll's plaintext is (almost
    always) not the value's real plaintext; under the right one it is the trimmed plaintext."""
    require_node()
    secret = "postgres://app:Sup3rSecret@db:5432/app"
    under_new = V3.encrypt(NEW, secret)
    wrong = node_cipher.v3_roll_all(OLD.reveal(), NEW.reveal(), [under_new])[0]
    assert wrong is not None
    assert V3.decrypt_bytes(NEW, wrong) == reroll_plaintext(under_new, OLD.encode())
    assert V3.decrypt_bytes(NEW, wrong) != secret.encode()
    right = node_cipher.v3_roll_all(NEW.reveal(), NEW.reveal(), [under_new])[0]
    assert right is not None and V3.decrypt_bytes(NEW, right) == secret.encode()
