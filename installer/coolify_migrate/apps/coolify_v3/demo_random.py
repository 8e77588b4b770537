"""The demo's random values, all drawn from one seeded generator (the same seed gives the same
values): the app's cuids, generate-password's strings, hex, the clock the rows are created by,
and the names users gave things."""

from __future__ import annotations

import random
import re
import string

ALNUM = string.ascii_lowercase + string.ascii_uppercase + string.digits  # generate-password
SYMBOLS = '!@#$%^&*()+_-=}{[]|:;"/?.><,`~'
BASE36 = string.digits + string.ascii_lowercase
HEX = "0123456789abcdef"
BCRYPT = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits

_ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "lucky",
    "quiet",
    "swift",
)
_NOUNS = (
    "otter",
    "falcon",
    "maple",
    "comet",
    "harbor",
    "meadow",
    "pixel",
    "river",
    "tiger",
    "willow",
)


class Letters:
    """Uniform random strings over one alphabet, from the seeded generator a block at a time:
    a random byte below the largest multiple of the alphabet's size becomes one letter, the
    others are dropped (rejection, so no letter is more likely than another)."""

    CHUNK = 4096

    def __init__(self, rng: random.Random, alphabet: str) -> None:
        size = len(alphabet)
        keep = 256 - 256 % size
        self.rng = rng
        self.table = bytes(ord(alphabet[b % size]) if b < keep else 0 for b in range(256))
        self.dropped = bytes(range(keep, 256))
        self.text = ""
        self.at = 0

    def take(self, k: int) -> str:
        at, end = self.at, self.at + k
        if end > len(self.text):
            while len(self.text) - at < k:
                fresh = self.rng.randbytes(self.CHUNK).translate(self.table, self.dropped)
                self.text = self.text[at:] + fresh.decode("ascii")
                at = 0
            end = k
        self.at = end
        return self.text[at:end]


# generate-password's `strict`: at least one character of each pool it draws from
_STRICT = re.compile(r"(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])", re.S)
_STRICT_SYMBOLS = re.compile(_STRICT.pattern + f"(?=.*[{re.escape(SYMBOLS)}])", re.S)
PAIRS = [a + b for a in BASE36 for b in BASE36]  # two base-36 digits of 0..1295


class RandomValues:
    """The values rows are made of; ``now`` is the instance's clock (ms), moved on by ``tick``."""

    def __init__(self, rng: random.Random, now: int) -> None:
        self.rng = rng
        self.random = rng.random
        self.now = now
        self.counter = rng.randrange(36**4)
        self.fingerprint = "".join(rng.choices(BASE36, k=4))
        self.base36 = Letters(rng, BASE36)
        self.alnum = Letters(rng, ALNUM)
        self.symbolic = Letters(rng, ALNUM + SYMBOLS)
        self.hexes = Letters(rng, HEX)
        self.stamp = (-1, "")  # the last `now`, and "c" and its eight base-36 digits

    def between(self, lo: int, hi: int) -> int:
        """``rng.randrange(lo, hi)`` for the hot paths, at a third of its cost."""
        return lo + int(self.random() * (hi - lo))

    def tick(self, lo: int = 5, hi: int = 1500) -> int:
        self.now += lo + int(self.random() * (hi - lo))
        return self.now

    def cuid(self) -> str:
        """cuid v1 as the app's ``cuid()``: c, time, counter, fingerprint, random (25 chars)."""
        self.counter = counter = (self.counter + 1) % 1_679_616  # 36**4
        now = self.now
        if self.stamp[0] != now:
            high, low = divmod(now % 2_821_109_907_456, 1_679_616)  # 36**8, 36**4
            pairs = PAIRS
            self.stamp = (
                now,
                "c"
                + pairs[high // 1296]
                + pairs[high % 1296]
                + pairs[low // 1296]
                + pairs[low % 1296],
            )
        # base36.take(8), inline: a few million calls per big demo
        letters = self.base36
        at = letters.at
        end = at + 8
        if end <= len(letters.text):
            letters.at = end
            tail = letters.text[at:end]
        else:
            tail = letters.take(8)
        return f"{self.stamp[1]}{PAIRS[counter // 1296]}{PAIRS[counter % 1296]}{self.fingerprint}{tail}"

    def password(self, length: int = 24, symbols: bool = False) -> str:
        """generate-password with numbers and strict: at least one of each pool it draws from."""
        letters, strict = (self.symbolic, _STRICT_SYMBOLS) if symbols else (self.alnum, _STRICT)
        while True:
            out = letters.take(length)
            if strict.match(out):
                return out

    def hex(self, chars: int) -> str:
        return self.hexes.take(chars)

    def name(self) -> str:
        """A name as users pick them: adjective-noun-number."""
        rng = self.rng
        return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000, 9999)}"

    def org(self, u: int) -> str:
        """A GitHub/GitLab organisation's name, unique by the unit's number."""
        rng = self.rng
        return f"{rng.choice(_ADJECTIVES)}{rng.choice(_NOUNS)}{u}"
