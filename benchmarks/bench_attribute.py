"""What weighing two keys' readings costs when an instance is under more than one key.

A roll gives each value to the key that reads it most legibly (``secrets.attribution.attribute``). With
one established key nothing is weighed; with several, a value read as less than printable ASCII
is tried under the next keys as well. This prints, over a demo instance's own plaintexts (the
app's shapes: passwords, PEM keys, short settings, a few non-ASCII values), the time of
``attribute`` with the field's keys in order, as a ratio to the same values under one key read
with that one key (the floor, measured in the same run), for several shares of values under the
second key.

Asserts nothing. Usage: ``python benchmarks/bench_attribute.py [--rows N] [--repeat K]``.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "installer"))

from coolify_migrate.apps.coolify_v3.demo import create
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec
from coolify_migrate.secrets import attribution

BATCH = 1000  # values per call, as a roll's batches


def _plaintexts(rows: int) -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        demo = create(Path(tmp) / "inst", version="3.12.32", installed_at_ms=1, rows=rows)
        return [p.encode() for p in demo.plaintexts.values() if p]


def _items(
    codec: AesCtrJsonCodec, plains: list[bytes], share: float, a: Secret, b: Secret
) -> list[tuple[bytes, bytes]]:
    rng = random.Random(1)
    return [codec.split(codec.encrypt_raw(b if rng.random() < share else a, p)) for p in plains]


def _first_that_decodes(
    codec: AesCtrJsonCodec, order: tuple[Secret, ...], items: list[tuple[bytes, bytes]]
) -> list[Secret | None]:
    """The rule before weighing (0.1.x): each value to the first key it decodes under at all."""
    out: list[Secret | None] = [None] * len(items)
    pending = list(range(len(items)))
    for key in order:
        raws = codec.decrypt_many(key, [items[i] for i in pending])
        still = []
        for i, raw in zip(pending, raws, strict=True):
            try:
                raw.decode("utf-8")  # type: ignore[union-attr]
                out[i] = key
            except UnicodeDecodeError:
                still.append(i)
        pending = still
    return out


def _time(
    rule: Callable[..., object],
    codec: AesCtrJsonCodec,
    order: tuple[Secret, ...],
    items: list[tuple[bytes, bytes]],
    repeat: int,
) -> float:
    """The median over ``repeat`` passes of one pass over ``items`` in batches."""
    runs = []
    for _ in range(repeat):
        begun = time.perf_counter()
        for at in range(0, len(items), BATCH):
            rule(codec, order, items[at : at + BATCH])
        runs.append(time.perf_counter() - begun)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="demo units (about 119 values each)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    plains = _plaintexts(args.rows)
    codec = AesCtrJsonCodec()
    a, b = new_key(), new_key()
    floor_items = _items(codec, plains, 0.0, a, b)
    _time(attribution.attribute, codec, (a,), floor_items, 2)  # warm the ciphers and the allocator
    print(f"{len(plains):,} values of a demo instance ({args.rows} units), batches of {BATCH}")
    print(
        f"{'under the 2nd key':<18}{'weighed ms':>11}{'floor ms':>9}{'ratio':>7}"
        f"{'first-decodes ms':>17}{'ratio':>7}"
    )
    for share in (0.0, 0.1, 0.5):
        items = _items(codec, plains, share, a, b)
        floor = _time(attribution.attribute, codec, (a,), floor_items, args.repeat)
        weighed = _time(attribution.attribute, codec, (a, b), items, args.repeat)
        before = _time(_first_that_decodes, codec, (a, b), items, args.repeat)
        print(
            f"{share:<18.0%}{weighed * 1000:>11.1f}{floor * 1000:>9.1f}{weighed / floor:>6.2f}x"
            f"{before * 1000:>17.1f}{weighed / before:>6.2f}x"
        )
    print("floor: the same plaintexts, all under one key, read with that key alone")
    print("first-decodes: the same values and keys under the rule before weighing")


if __name__ == "__main__":
    main()
