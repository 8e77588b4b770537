"""Which key each encrypted value is under, proven from the data, never from a value's looks.

A Coolify v3 value decrypted with the wrong key is garbage, not an error, so the tool never trusts
a key because it "worked". The proofs, in this order:

1. the key-check value the tool stores beside the data whenever it sets a key (``coolify_migrate.stores.sqlite``):
   the candidate whose HMAC matches it is the key the tool last put the data under;
2. the data themselves, all values together. The app encrypts JavaScript strings as UTF-8, so
   under the right key *every* value decodes as UTF-8; under a wrong AES-CTR key the bytes are
   uniformly random, and n random bytes are valid UTF-8 with probability p(n) (0.5 for one byte,
   9e-3 for 8, 1e-6 for 24: about 0.82 bits of evidence per byte, ``utf8_bits``). A candidate is
   *established* when the values it decodes carry at least ``MIN_BITS`` (40) bits more than the
   number of ways a wrong key could have picked that many values out of all of them
   (log2 C(M, k)): the chance that a wrong key is established is below 2^-40 per candidate.

Instances are often under more than one key (v3's own roll left 43 legacy fields under the old key;
v3.12.35+ skipped values it could not read), so keys are established over all values, and each
value is attributed to the first established key it decodes under, trying first the key that most
values of its own field are under. Values that are not ciphertext (``coolify_migrate.secrets.values``) are
counted and named, never decrypted. An authenticated codec (Fernet) needs no statistics: a wrong key
fails to decrypt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.app import EncryptedColumn, KeyCandidate, Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.output import Progress
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.crypto.codecs import Codec, DecryptError
from coolify_migrate.secrets import values
from coolify_migrate.secrets.evidence import decodes, established, utf8_bits
from coolify_migrate.state.keyring import Keyring

SAMPLE_ROWS = 200  # rows per table read to identify keys (``analyse(full=False)``)
LEFTOVER_MAX = 100_000  # values under no established key kept in memory for a second look


class FieldCodecs:
    """The codec of each declared field (its own, else the app's)."""

    def __init__(self, profile: Profile) -> None:
        self.default = profile.codec
        self.by_label = {c.label: c.codec or profile.codec for c in profile.encrypted_columns}

    def of(self, label: str) -> Codec:
        return self.by_label.get(label, self.default)


# -- candidates --------------------------------------------------------------------------------


def candidates(
    ctx: Context, env: EnvFile, extra: list[KeyCandidate] | tuple[KeyCandidate, ...] = ()
) -> list[KeyCandidate]:
    """Every key this instance knows, each once: the one the app's container uses, the .env's,
    the keyring's, the container's others, then ``extra`` and ``--key-file``'s."""
    inside = [c for c in ctx.container_keys() if c.key]
    # The settings file and the keyring may hold the empty key: an app that reads ``KEY=`` as
    # the empty string (Redash) encrypts with it. Elsewhere an empty value means "none".
    found = inside[:1] + list(ctx.profile.key_candidates(env)) + inside[1:]
    for entry in Keyring(ctx).entries:
        found.append(KeyCandidate(f"keyring ({entry.status})", entry.key))
    found.extend(c for c in extra if c.key)
    found.extend(c for c in ctx.extra_keys if c.key)
    unique: list[KeyCandidate] = []
    for c in found:
        if all(c.key != u.key for u in unique):
            unique.append(c)
            ctx.redactor.add(c.key)
    return unique


# -- the analysis --------------------------------------------------------------------------------


@dataclass
class KeyStats:
    cand: KeyCandidate
    decoded: int = 0
    failed: int = 0
    bits: float = 0.0
    established: bool = False
    by_field: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.cand.source,
            "fingerprint": self.cand.key.fingerprint,
            "decoded": self.decoded,
            "failed": self.failed,
            "evidence_bits": round(self.bits, 1),
            "established": self.established,
            "result": self.result,
        }

    @property
    def result(self) -> str:
        if self.established:
            return f"decrypts {self.decoded} values (proven)"
        if self.decoded and not self.failed:
            return f"decrypts all {self.decoded} values (too few to prove)"
        return f"decrypts {self.decoded}, not {self.failed}"


@dataclass
class FieldCount:
    name: str
    absent: bool = False
    cipher: int = 0
    text: int = 0
    empty: int = 0
    null: int = 0
    by_key: dict[str, int] = field(default_factory=dict)  # fingerprint -> values
    unknown: int = 0
    left: int = 0  # under no known key, and named by the operator to be left as they are

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.name,
            "absent": self.absent,
            "ciphertext": self.cipher,
            "not_ciphertext": self.text,
            "empty": self.empty,
            "null": self.null,
            "by_key": dict(self.by_key),
            "under_no_known_key": self.unknown,
            "left_as_asked": self.left,
        }


@dataclass
class Analysis:
    fields: values.Fields
    stats: list[KeyStats]
    primary: KeyCandidate | None
    method: str  # key-check, evidence, only-consistent, no-data, none
    full: bool
    text: values.Named = field(default_factory=values.Named)
    unknown: values.Named = field(default_factory=values.Named)
    left: values.Named = field(default_factory=values.Named)  # unknown, but named in ctx.leave
    left_labels: set[str] = field(default_factory=set)
    counts: dict[str, FieldCount] = field(default_factory=dict)
    order: dict[str, tuple[Secret, ...]] = field(default_factory=dict)  # field -> keys to try

    @property
    def keys(self) -> list[KeyCandidate]:
        """Established keys, the primary first."""
        out = [self.primary] if self.primary is not None else []
        out += [s.cand for s in self.stats if s.established and s.cand not in out]
        return out

    def under(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for count in self.counts.values():
            for fp, n in count.by_key.items():
                total[fp] = total.get(fp, 0) + n
        return total

    @property
    def cipher_values(self) -> int:
        return sum(c.cipher for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.primary.key.fingerprint if self.primary else None,
            "source": self.primary.source if self.primary else None,
            "method": self.method,
            "complete": self.full,
            "candidates": [s.as_dict() for s in self.stats],
            "fields": len(self.fields.present) + len(self.fields.absent),
            "fields_absent": [c.label for c in self.fields.absent],
            "values": self.cipher_values,
            "not_ciphertext": self.text.as_dict(),
            "under_no_known_key": self.unknown.as_dict(),
            "left_as_asked": self.left.as_dict(),
            "under": self.under(),
        }


def analyse(
    ctx: Context,
    conn: Connection,
    cands: list[KeyCandidate],
    *,
    full: bool = False,
    recorded_check: str | None = None,
) -> Analysis:
    """Decide which keys the data are under (see the module docstring). Read-only.

    Keys are established on the first ``SAMPLE_ROWS`` rows of each table, which bounds the work
    however large the database is; ``full=True`` then reads every value and attributes each one.
    """
    codecs = FieldCodecs(ctx.profile)
    found = conn.fields(ctx.profile.encrypted_columns)
    if recorded_check is None:
        recorded_check = conn.read_meta().get("key_check")
    sample_counts: dict[str, FieldCount] = {}
    sample_text = values.Named()
    sample: list[tuple[str, bytes, bytes]] = []
    for column, row_id, stored in stored_values(ctx, conn, found, limit=SAMPLE_ROWS):
        _classify(
            codecs.of(column.label), column, row_id, stored, sample_counts, sample_text, sample
        )
    stats = [key_stats(codecs, c, sample) for c in cands]
    primary, method = _primary(stats, sample, recorded_check)
    analysis = Analysis(found, stats, primary, method, full)
    analysis.order = field_orders(analysis.keys, stats, [c.label for c in found.present])
    if full:
        _attribute_all(ctx, conn, analysis, cands)
    else:  # the sample's own attribution: which keys hold values, and roughly how many
        analysis.counts, analysis.text = sample_counts, sample_text
        for label, iv, content in sample:
            key = first_key(codecs.of(label), analysis.order.get(label, ()), iv, content)
            count = sample_counts[label]
            if key is None:
                count.unknown += 1
            else:
                count.by_key[key.fingerprint] = count.by_key.get(key.fingerprint, 0) + 1
    for column in found.absent:
        analysis.counts[column.label] = FieldCount(column.label, absent=True)
    return analysis


def stored_values(
    ctx: Context,
    conn: Connection,
    found: values.Fields,
    *,
    limit: int | None,
    bar: Progress | None = None,
) -> Iterator[tuple[EncryptedColumn, Any, Any]]:
    """(field, row id, stored value) of every present field, table by table; ``bar`` counts
    the rows read."""
    for table, columns in found.by_table().items():
        names = [c.column for c in columns]
        for rows in conn.rows(table, names, id_column=ctx.profile.id_column, limit=limit):
            if bar is not None:
                bar.advance(len(rows))
            for row in rows:
                for i, column in enumerate(columns):
                    yield column, row[1], row[2 + i]


def _classify(
    codec: Codec,
    column: EncryptedColumn,
    row_id: Any,
    stored: Any,
    counts: dict[str, FieldCount],
    text: values.Named,
    sample: list[tuple[str, bytes, bytes]] | None,
) -> tuple[bytes, bytes] | None:
    """Count the value; returns (iv, content) when it is ciphertext."""
    count = counts.setdefault(column.label, FieldCount(column.label))
    if stored is None:
        count.null += 1
        return None
    if stored == "":
        count.empty += 1
        return None
    parts = values.parts(codec, stored)
    if parts is None:
        count.text += 1
        text.add(values.label(column, row_id))
        return None
    count.cipher += 1
    if sample is not None:
        sample.append((column.label, *parts))
    return parts


def split(codec: Codec, stored: str) -> tuple[bytes, bytes]:
    """(iv, content) of a ciphertext the caller classified as such."""
    return codec.split(stored)


def decrypt_parts(codec: Codec, key: Secret, iv: bytes, content: bytes) -> bytes | None:
    """The plaintext bytes if they can be this key's (valid UTF-8; authentic for Fernet)."""
    try:
        raw = codec.decrypt_split(key, iv, content)
    except DecryptError:
        return None
    return raw if decodes(raw) else None


def key_stats(
    codecs: FieldCodecs, cand: KeyCandidate, sample: list[tuple[str, bytes, bytes]]
) -> KeyStats:
    """Decode counts and evidence of one candidate over (field, iv, content) values. A value an
    authenticated codec (Fernet) accepts proves the key on its own; the others count by the
    evidence rule."""
    st = KeyStats(cand)
    informative = decoded_informative = 0
    authentic = False
    for label, iv, content in sample:
        codec = codecs.of(label)
        informative += bool(content) and not codec.authenticated
        if decrypt_parts(codec, cand.key, iv, content) is None:
            st.failed += 1
            continue
        st.decoded += 1
        st.by_field[label] = st.by_field.get(label, 0) + 1
        if codec.authenticated:
            authentic = True
        elif content:
            decoded_informative += 1
            st.bits += utf8_bits(len(content))
    st.established = authentic or established(st.bits, decoded_informative, informative)
    return st


def _primary(
    stats: list[KeyStats],
    sample: list[tuple[str, bytes, bytes]],
    recorded_check: str | None,
) -> tuple[KeyCandidate | None, str]:
    if recorded_check:
        for st in stats:
            if st.cand.key.check_value == recorded_check:
                st.established = True
                return st.cand, "key-check"
    if not sample:
        return (stats[0].cand if stats else None), "no-data"
    proven = [st for st in stats if st.established]
    if proven:
        # the key the app uses (first candidate) when proven, else the one most values are under
        best = max(proven, key=lambda st: (st is stats[0], st.decoded))
        return best.cand, "evidence"
    consistent = [st for st in stats if st.decoded and not st.failed]
    if len(consistent) == 1:
        consistent[0].established = True  # the only key that reads everything: little data
        return consistent[0].cand, "only-consistent"
    return None, "none"


def field_orders(
    keys: list[KeyCandidate], stats: list[KeyStats], labels: list[str]
) -> dict[str, tuple[Secret, ...]]:
    """Per field, the established ``keys`` to try: the one most of the field's values are under
    first (a short value may decode under two keys by chance; its field decides), then in the
    given order (the primary first)."""
    by_fp = {s.cand.key.fingerprint: s for s in stats}
    order: dict[str, tuple[Secret, ...]] = {}
    for label in labels:
        ranked = sorted(
            enumerate(keys),
            key=lambda ic: (
                -(by_fp[ic[1].key.fingerprint].by_field.get(label, 0))
                if ic[1].key.fingerprint in by_fp
                else 0,
                ic[0],
            ),
        )
        order[label] = tuple(c.key for _, c in ranked)
    return order


def _attribute_all(
    ctx: Context, conn: Connection, analysis: Analysis, cands: list[KeyCandidate]
) -> None:
    """Every value of every field: which established key it is under, or none."""
    codecs = FieldCodecs(ctx.profile)
    leftovers: list[tuple[str, str, bytes, bytes]] = []  # (field, label, iv, content)
    tables = analysis.fields.by_table()
    bar = ctx.out.progress("checking every value's key", sum(conn.count(t) for t in tables), "rows")
    try:
        _attribute_rows(ctx, conn, analysis, codecs, leftovers, bar)
    finally:
        bar.close()
    _second_look(codecs, analysis, cands, leftovers, ctx.leave)


def _attribute_rows(
    ctx: Context,
    conn: Connection,
    analysis: Analysis,
    codecs: FieldCodecs,
    leftovers: list[tuple[str, str, bytes, bytes]],
    bar: Progress,
) -> None:
    """Batch by batch of rows, field by field: one parse per value, and each field's keys
    tried on all of the batch's values at once (``attribute``)."""
    counts = analysis.counts
    for table, columns in analysis.fields.by_table().items():
        names = [c.column for c in columns]
        for rows in conn.rows(table, names, id_column=ctx.profile.id_column):
            bar.advance(len(rows))
            for i, column in enumerate(columns):
                codec = codecs.of(column.label)
                where: list[Any] = []
                items: list[tuple[bytes, bytes]] = []
                for row in rows:
                    parts = _classify(
                        codec, column, row[1], row[2 + i], counts, analysis.text, None
                    )
                    if parts is not None:
                        where.append(row[1])
                        items.append(parts)
                found = attribute(codec, analysis.order.get(column.label, ()), items)
                by_key = counts[column.label].by_key
                for row_id, parts, (key, _) in zip(where, items, found, strict=True):
                    if key is not None:
                        by_key[key.fingerprint] = by_key.get(key.fingerprint, 0) + 1
                    elif len(leftovers) < LEFTOVER_MAX:
                        leftovers.append((column.label, values.label(column, row_id), *parts))
                    else:
                        _unread(analysis, column.label, values.label(column, row_id), ctx.leave)


def attribute(
    codec: Codec, order: tuple[Secret, ...], items: list[tuple[bytes, bytes]]
) -> list[tuple[Secret | None, bytes | None]]:
    """For each (iv, content): the first key of ``order`` it decodes under, and its plaintext
    bytes; (None, None) when none does. Each key is tried on every value still unread in one
    batched call (``Codec.decrypt_many``): the same answers as ``first_key`` value by value."""
    out: list[tuple[Secret | None, bytes | None]] = [(None, None)] * len(items)
    pending = list(range(len(items)))
    for key in order:
        if not pending:
            break
        raws = codec.decrypt_many(key, [items[i] for i in pending])
        unread = []
        for i, raw in zip(pending, raws, strict=True):
            if raw is not None and decodes(raw):
                out[i] = (key, raw)
            else:
                unread.append(i)
        pending = unread
    return out


def _unread(analysis: Analysis, field_: str, where: str, leave: frozenset[str]) -> None:
    """A value no known key reads: unknown, unless the operator named it to be left."""
    if where in leave:
        analysis.counts[field_].left += 1
        analysis.left.add(where)
        analysis.left_labels.add(where)
    else:
        analysis.counts[field_].unknown += 1
        analysis.unknown.add(where)


def first_key(codec: Codec, order: tuple[Secret, ...], iv: bytes, content: bytes) -> Secret | None:
    for key in order:
        if decrypt_parts(codec, key, iv, content) is not None:
            return key
    return None


def _second_look(
    codecs: FieldCodecs,
    analysis: Analysis,
    cands: list[KeyCandidate],
    leftovers: list[tuple[str, str, bytes, bytes]],
    leave: frozenset[str] = frozenset(),
) -> None:
    """Values no established key reads: a key the sample did not prove may still be proven by
    them alone (the same rule, over just these values); what stays unread is named."""
    proven = {c.key.fingerprint for c in analysis.keys}
    rest = [c for c in cands if c.key.fingerprint not in proven]
    sample = [(field_, iv, content) for field_, _, iv, content in leftovers]
    for cand in rest:
        if not leftovers:
            break
        st = key_stats(codecs, cand, sample)
        if not st.established:
            continue
        for s in analysis.stats:
            if s.cand.key == cand.key:
                s.established = True
        kept = []
        for item in leftovers:
            if decrypt_parts(codecs.of(item[0]), cand.key, item[2], item[3]) is not None:
                by_key = analysis.counts[item[0]].by_key
                by_key[cand.key.fingerprint] = by_key.get(cand.key.fingerprint, 0) + 1
            else:
                kept.append(item)
        leftovers = kept
        sample = [(field_, iv, content) for field_, _, iv, content in leftovers]
        for field_ in analysis.order:
            analysis.order[field_] = (*analysis.order[field_], cand.key)
    for field_, where, _, _ in leftovers:
        _unread(analysis, field_, where, leave)
