"""How much a value decoding as UTF-8 proves about a key (the rule ``secrets.keys`` applies).

Under a wrong AES-CTR key the bytes are uniformly random, and n random bytes are valid UTF-8 with
probability p(n): ``utf8_bits(n)`` is -log2 p(n). A candidate is *established* when the values it
decodes carry at least ``MIN_BITS`` more than log2 C(M, k), the number of ways a wrong key could
have picked k of all M values: a wrong key is established with probability below 2^-40.
"""

from __future__ import annotations

import math
from functools import lru_cache

MIN_BITS = 40.0


@lru_cache(maxsize=1)
def _utf8_table() -> tuple[float, ...]:
    """-log2 P(n uniformly random bytes form valid UTF-8), n = 0..255, by dynamic programming
    over the lead-byte classes Python's strict decoder accepts (no surrogates, no overlongs)."""
    c = 1 / 256
    # (lead bytes, allowed second-byte range size, further continuation bytes)
    classes = [(30, 64, 0), (1, 32, 1), (14, 64, 1), (1, 32, 1), (1, 48, 2), (3, 64, 2), (1, 16, 2)]
    p = [1.0]
    for n in range(1, 256):
        total = 128 * c * p[n - 1]
        for lead, second, more in classes:
            width = 2 + more
            if n >= width:
                total += lead * c * (second * c) * (64 * c) ** more * p[n - width]
        p.append(total)
    return tuple(-math.log2(x) for x in p)


def utf8_bits(n: int) -> float:
    """Evidence (bits) that a value of ``n`` bytes decoding as UTF-8 is not a wrong key's luck."""
    table = _utf8_table()
    if n < len(table):
        return table[n]
    slope = table[-1] - table[-2]
    return table[-1] + slope * (n - len(table) + 1)


def _log2_choose(m: int, k: int) -> float:
    if k <= 0 or k >= m:
        return 0.0
    return (math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)) / math.log(2)


def established(bits: float, decoded: int, total: int) -> bool:
    """The rule of the module docstring: enough evidence, after paying for the choice of values."""
    return decoded > 0 and bits >= MIN_BITS + _log2_choose(total, decoded)


def decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
