"""The date-seeded key of Coolify v3's old installer, against the real shell pipeline."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key, digest_prefix, scan
from coolify_migrate.apps.coolify_v3.profile import new_key

KNOWN_MS = 1689674942980  # 2023-07-18T10:09:02.980Z
KNOWN_KEY = "YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"


def test_the_known_example() -> None:
    assert date_seeded_key(KNOWN_MS) == KNOWN_KEY


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "sha256sum", "base64", "head")),
    reason="needs coreutils",
)
@pytest.mark.parametrize("ms", [KNOWN_MS, 0, 1, 999, 1600000000000, 1689292800000, 4102444800000])
def test_matches_the_installer_pipeline(ms: int) -> None:
    """The installer ran exactly this; the Python version must agree for any timestamp."""
    shell = subprocess.run(
        ["bash", "-c", f"echo {ms} | sha256sum | base64 | head -c 32"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == date_seeded_key(ms)


def test_a_key_is_32_base64_characters_of_24_hex_digits() -> None:
    key = date_seeded_key(KNOWN_MS)
    assert len(key) == 32
    decoded = base64.b64decode(key).decode()
    assert decoded == hashlib.sha256(f"{KNOWN_MS}\n".encode()).hexdigest()[:24]


def test_digest_prefix_recognises_the_form() -> None:
    assert digest_prefix(KNOWN_KEY) == hashlib.sha256(f"{KNOWN_MS}\n".encode()).digest()[:12]
    assert digest_prefix(date_seeded_key(12345)) == hashlib.sha256(b"12345\n").digest()[:12]


@pytest.mark.parametrize(
    "key",
    [
        "",
        KNOWN_KEY[:-1],  # 31 characters
        KNOWN_KEY + "A",  # 33
        "!" * 32,  # not base64
        base64.b64encode(b"ABCDEF0123456789abcdef01").decode(),  # base64 of non-lowercase hex
        base64.b64encode(b"x" * 24).decode(),  # base64, but not of hex digits
    ],
)
def test_digest_prefix_rejects_other_forms(key: str) -> None:
    assert digest_prefix(key) is None


def test_keys_this_tool_generates_are_never_of_that_form() -> None:
    for _ in range(200):
        assert digest_prefix(new_key().reveal()) is None


def test_scan_finds_the_millisecond_within_a_window() -> None:
    prefix = digest_prefix(KNOWN_KEY)
    assert prefix is not None
    assert scan(prefix, KNOWN_MS - 5000, KNOWN_MS + 5000) == KNOWN_MS
    assert scan(prefix, KNOWN_MS, KNOWN_MS + 1) == KNOWN_MS  # start is inclusive
    assert scan(prefix, KNOWN_MS - 5000, KNOWN_MS) is None  # stop is exclusive
    assert scan(prefix, KNOWN_MS + 1, KNOWN_MS + 5000) is None


def test_scan_of_a_whole_second_is_quick() -> None:
    # One day is 86.4 million candidates; this only checks the loop stays cheap per candidate.
    prefix = digest_prefix(date_seeded_key(1_700_000_000_999))
    assert prefix is not None
    assert scan(prefix, 1_700_000_000_000, 1_700_000_001_000) == 1_700_000_000_999
