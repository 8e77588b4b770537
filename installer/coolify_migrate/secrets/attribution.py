"""Which of several keys a value is under, when more than one may decode it.

A value is tried under its field's established keys in order (``keys.field_orders``: the key most
of the field's values are under first). With one key, or an authenticated codec (a wrong Fernet
key reads nothing), the first key that decodes it is its key. A short AES-CTR value, though, may
decode under two keys: a wrong key's bytes are valid UTF-8 with probability 0.09 for 4 bytes and
0.009 for 8 (``evidence.utf8_bits``), and v3.12.35's wrong-key roll left exactly such values under
their old key among their field's values under the new one. So with several keys the more
legible reading wins (printable ASCII, then other text, then bare UTF-8), and a wrong key takes a
value written in printable ASCII with probability (98/256)^n: 0.021 for 4 bytes, 0.0005 for 8.
"""

from __future__ import annotations

from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import Codec, DecryptError


def attribute(
    codec: Codec, order: tuple[Secret, ...], items: list[tuple[bytes, bytes]]
) -> list[tuple[Secret | None, bytes | None]]:
    """For each (iv, content): the key of ``order`` whose reading of it is the most legible, the
    first such key on a tie, with the plaintext bytes; (None, None) when no key decodes it.

    Each key is tried on every value still open in one batched call (``Codec.decrypt_many``).
    With one key, or an authenticated codec (a wrong Fernet key reads nothing), the first key
    that decodes a value is its key. With several, a value whose reading is less than printable
    ASCII stays open for the next keys, and a more legible reading wins (``legibility``): a wrong
    key's bytes that happen to be UTF-8 are seldom printable ASCII too."""
    out: list[tuple[Secret | None, bytes | None]] = [(None, None)] * len(items)
    best = [0] * len(items)
    pending = list(range(len(items)))
    weigh = len(order) > 1 and not codec.authenticated
    done = PRINTABLE_ASCII if weigh else UTF8
    for key in order:
        if not pending:
            break
        try:
            raws = codec.decrypt_many(key, [items[i] for i in pending])
        except DecryptError:  # a key this codec cannot use (its length): it reads nothing
            continue
        if None not in raws and _all_legible(raws, done):  # type: ignore[arg-type]
            for i, raw in zip(pending, raws, strict=True):
                out[i] = (key, raw)
            break
        still = []
        for i, raw in zip(pending, raws, strict=True):
            grade = legibility(raw, done) if raw is not None else NOT_UTF8
            if grade > best[i]:
                out[i], best[i] = (key, raw), grade
            if grade < done:
                still.append(i)
        pending = still
    return out


NOT_UTF8, UTF8, TEXT, PRINTABLE_ASCII = range(4)
_CONTROLS = bytes([*range(9), 11, 12, *range(14, 32), 127])  # ASCII's, but tab and line breaks


def legibility(raw: bytes, enough: int = PRINTABLE_ASCII) -> int:
    """How ``raw`` reads, up to ``enough``: ``PRINTABLE_ASCII`` (tab and line breaks allowed),
    ``TEXT`` (any script, with no control, private-use or unassigned character), ``UTF8`` all
    the same, else ``NOT_UTF8``.

    n random bytes are UTF-8 with probability p(n) (0.089 for 4, 0.009 for 8), printable ASCII
    with (98/256)^n (0.021, 0.0005). The grade is a tie-break between keys that both decode a
    value (``attribute``), never a reason to read or to leave one."""
    if raw.isascii():  # ASCII is UTF-8: only its control characters are left to look for
        if enough == UTF8 or len(raw.translate(None, _CONTROLS)) < len(raw):
            return UTF8
        return PRINTABLE_ASCII
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    if enough == UTF8:
        return UTF8
    layout_as_spaces = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if layout_as_spaces.isprintable():
        return TEXT
    # isprintable() also refuses what people do write: a no-break space, an emoji's zero-width
    # joiner. Only control, private-use and unassigned characters make a reading not text.
    import unicodedata  # only for a value that is neither ASCII nor printable, under two keys

    odd = {"Cc", "Co", "Cn"}
    return UTF8 if any(unicodedata.category(c) in odd for c in layout_as_spaces) else TEXT


def _all_legible(raws: list[bytes], grade: int) -> bool:
    """Whether every value reads at ``grade`` or better, in one pass: a newline can be no part of
    a multi-byte sequence, so the values joined by newlines decode exactly when each of them
    does, and the joined text is printable ASCII exactly when each value is."""
    joined = b"\n".join(raws)
    if grade == PRINTABLE_ASCII and not joined.isascii():
        return False
    return legibility(joined, grade) >= grade
