"""Plausibility: what a correctly decrypted value may hold, and what garbage looks like."""

from __future__ import annotations

import contextlib
import os

import pytest

from installer.crypto.codecs import CoolifyV3Codec, DecryptError, decrypt_text
from installer.keys import plausible
from installer.profiles import EncryptedColumn
from installer.profiles.coolify_v3 import new_key

TEXT = EncryptedColumn("Secret", "value")
PEM = EncryptedColumn("SshKey", "privateKey", pem=True)


@pytest.mark.parametrize(
    "value",
    [
        "hunter2",
        "",
        "pässwörd",
        "a\u00a0b",
        "full\u3000width",
        "family 👨\u200d👩\u200d👧",
        "multi\nline\ttext",
        "postgres://u:p@db:5432/x",
    ],
)
def test_real_text_is_plausible(value: str) -> None:
    assert plausible(TEXT, value)


@pytest.mark.parametrize(
    "value", ["nul\x00", "bell\x07", "esc\x1b[0m", "\ufffd", "priv\ue000", "\x7f"]
)
def test_control_and_replacement_characters_are_not(value: str) -> None:
    assert not plausible(TEXT, value)


def test_private_key_columns_need_pem_structure() -> None:
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    assert plausible(PEM, pem)
    assert not plausible(PEM, "just a password")
    assert not plausible(PEM, pem.replace("END OPENSSH", "END RSA"))


def test_a_wrong_key_almost_never_yields_plausible_long_values() -> None:
    codec, right, wrong = CoolifyV3Codec(), new_key(), new_key()
    passed = 0
    for _ in range(200):
        stored = codec.encrypt(right, os.urandom(12).hex() + " some longer secret value")
        with contextlib.suppress(DecryptError):
            passed += plausible(TEXT, decrypt_text(codec, wrong, stored))
    assert passed == 0
