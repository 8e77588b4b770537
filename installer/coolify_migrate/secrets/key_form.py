"""What can be said about a key from its characters alone: its length against what the app
needs, its alphabet, an upper estimate of its entropy, the app's date-seeded form, a published
value. ``secrets audit`` starts with it, and proves a date-seeded key by a search after it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from coolify_migrate.config.envfile import SAFE_VALUE
from coolify_migrate.core.app import Profile, SecretSpec
from coolify_migrate.core.secret import Secret

MIN_LENGTH = 16  # for apps that take a secret of any length
# Below this estimate a key is weak whatever its form: 2**64 guesses are within reach.
MIN_ENTROPY_BITS = 64.0


@dataclass(frozen=True)
class KeyForm:
    """What can be said about a key from its characters alone."""

    length: int
    alphabet: str
    entropy_bits: float
    date_seeded_form: bool
    compromised: bool
    reasons: tuple[str, ...]  # why it is weak on its face (empty: not weak on its face)
    notes: tuple[str, ...]


def key_form(key: Secret, profile: Profile, spec: SecretSpec | None = None) -> KeyForm:
    """What can be said of ``key`` as a value of ``spec`` (the data key by default)."""
    raw = key.reveal()
    length = (spec or profile.data_secret).length
    reasons: list[str] = []
    notes: list[str] = []
    derived = profile.derived_form(key)
    seeded = derived is not None
    compromised = any(key == Secret(c) for c in profile.compromised_keys)
    nbytes = len(raw.encode("utf-8"))
    if not raw:
        reasons.append("the key is empty")
    elif length is not None and nbytes != length:
        reasons.append(f"the key is {nbytes} bytes; the app needs exactly {length}")
    elif length is None and nbytes < MIN_LENGTH:
        reasons.append(f"the key is only {nbytes} characters (fewer than {MIN_LENGTH})")
    if not raw.isascii() or not raw.isprintable():
        reasons.append("the key has non-ASCII or control characters")
    elif not SAFE_VALUE.fullmatch(raw):
        notes.append("the key has characters that docker --env-file, Compose and sh disagree on")
    bits = entropy_bits(raw)
    if derived is not None:
        bits = min(bits, derived.bits)
    if bits < MIN_ENTROPY_BITS:
        reasons.append(f"about {bits:.0f} bits of entropy (less than {MIN_ENTROPY_BITS:.0f})")
    if compromised:
        reasons.append("the key is a published value (known compromised)")
    if derived is not None:
        notes.append(
            f"the key has the date-seeded form ({derived.describe}, at most "
            f"{derived.bits:.0f} bits)"
        )
    alphabet = derived.alphabet if derived is not None else _alphabet(raw)
    return KeyForm(len(raw), alphabet, bits, seeded, compromised, tuple(reasons), tuple(notes))


def _alphabet(raw: str) -> str:
    if re.fullmatch(r"[0-9a-f]+", raw):
        return "hex"
    tests = (
        ("lower", str.islower),
        ("upper", str.isupper),
        ("digits", str.isdigit),
        ("symbols", lambda c: not c.isalnum()),
    )
    return "+".join(name for name, test in tests if any(test(c) for c in raw)) or "empty"


def entropy_bits(raw: str) -> float:
    """An upper estimate: the smaller of length (or repeat period) x log2(character pool) and
    the string's own symbol statistics ('aaaa...' scores 0)."""
    if not raw:
        return 0.0
    pool = 0
    pool += 26 if any(c.islower() and c.isascii() for c in raw) else 0
    pool += 26 if any(c.isupper() and c.isascii() for c in raw) else 0
    pool += 10 if any(c.isdigit() and c.isascii() for c in raw) else 0
    pool += 33 if any(c.isascii() and not c.isalnum() for c in raw) else 0
    pool += 100 if any(not c.isascii() for c in raw) else 0
    # a repeated pattern ("0123456789" * 3 ...) carries no more than one period of it
    period = next(
        p for p in range(1, len(raw) + 1) if all(raw[i] == raw[i % p] for i in range(len(raw)))
    )
    by_pool = period * math.log2(max(pool, 2))
    counts = [raw.count(c) for c in set(raw)]
    shannon = -sum(n / len(raw) * math.log2(n / len(raw)) for n in counts) * len(raw)
    bits = min(by_pool, shannon)
    return round(bits, 1)
