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

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.app import EncryptedColumn, KeyCandidate, Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.crypto.codecs import Codec, DecryptError
from coolify_migrate.secrets import values
from coolify_migrate.state.keyring import Keyring

MIN_BITS = 40.0
SAMPLE_ROWS = 200  # rows per table read to identify keys (``analyse(full=False)``)
LEFTOVER_MAX = 100_000  # values under no established key kept in memory for a second look


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
    for column, row_id, stored in _values(ctx, conn, found, limit=SAMPLE_ROWS):
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


def _values(
    ctx: Context, conn: Connection, found: values.Fields, *, limit: int | None
) -> Iterator[tuple[EncryptedColumn, Any, Any]]:
    """(field, row id, stored value) of every present field, table by table."""
    for table, columns in found.by_table().items():
        names = [c.column for c in columns]
        for rows in conn.rows(table, names, id_column=ctx.profile.id_column, limit=limit):
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
    what = values.kind(codec, stored)
    if what == "null":
        count.null += 1
    elif what == "empty":
        count.empty += 1
    elif what == "text":
        count.text += 1
        text.add(values.label(column, row_id))
    else:
        count.cipher += 1
        parts = split(codec, stored)
        if sample is not None:
            sample.append((column.label, *parts))
        return parts
    return None


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
    counts = analysis.counts
    leftovers: list[tuple[str, str, bytes, bytes]] = []  # (field, label, iv, content)
    for column, row_id, stored in _values(ctx, conn, analysis.fields, limit=None):
        codec = codecs.of(column.label)
        parts = _classify(codec, column, row_id, stored, counts, analysis.text, None)
        if parts is None:
            continue
        key = first_key(codec, analysis.order.get(column.label, ()), *parts)
        if key is not None:
            by_key = counts[column.label].by_key
            by_key[key.fingerprint] = by_key.get(key.fingerprint, 0) + 1
        elif len(leftovers) < LEFTOVER_MAX:
            leftovers.append((column.label, values.label(column, row_id), *parts))
        else:
            _unread(analysis, column.label, values.label(column, row_id), ctx.leave)
    _second_look(codecs, analysis, cands, leftovers, ctx.leave)


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


# -- what the commands ask -----------------------------------------------------------------------


@dataclass
class Verdict:
    key: Secret | None
    source: str | None
    method: str  # "key-check", "evidence", "only-consistent", "no-data"
    analysis: Analysis | None = None

    @property
    def tried(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.analysis.stats] if self.analysis else []

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.key.fingerprint if self.key else None,
            "source": self.source,
            "method": self.method,
            "candidates": self.tried,
        }


def identify(
    ctx: Context, conn: Connection, cands: list[KeyCandidate], *, full: bool = False
) -> Verdict:
    """The key the data are (mostly) under, or KeyProblem (nothing changed)."""
    recorded = conn.read_meta().get("key_check")
    analysis = analyse(ctx, conn, cands, full=full, recorded_check=recorded)
    if analysis.primary is not None:
        return Verdict(analysis.primary.key, analysis.primary.source, analysis.method, analysis)
    if recorded:
        raise KeyProblem(
            f"the database was encrypted with key {recorded[:16]}, which this instance no longer knows",
            hint="put that key back in .env (or the keyring, or --key-file) - 'backup list' "
            "shows which backups use which key",
            needed=recorded[:16],
        )
    tried = ", ".join(f"{s.cand.source}: {s.result}" for s in analysis.stats) or "no keys"
    consistent = [s for s in analysis.stats if s.decoded and not s.failed]
    if len(consistent) > 1:
        raise KeyProblem(
            "too few encrypted values to tell which key they are under: "
            + ", ".join(f"{s.cand.source} ({s.cand.key.fingerprint})" for s in consistent)
            + " each read all of them",
            hint="remove the keys that are not in use from .env, or keep only the right one",
        )
    raise KeyProblem(
        f"no known key decrypts the data ({tried})",
        hint="give the right key with --key-file FILE (one per line), add it to .env as "
        "COOLIFY_SECRET_KEY_OLD_<ms>=..., or restore a backup",
    )


def live_key(
    ctx: Context,
    conn: Connection,
    env: EnvFile,
    extra: list[KeyCandidate] | tuple[KeyCandidate, ...] = (),
) -> Verdict:
    return identify(ctx, conn, candidates(ctx, env, extra))


@dataclass
class ColumnCount:
    """``secrets verify``: one field's values against the active key."""

    column: str
    ok: int = 0
    failed: int = 0  # ciphertext not under the active key (under another key, or none)
    null: int = 0  # NULL or empty: no secret
    text: int = 0  # not ciphertext: left as it is
    other_keys: dict[str, int] = field(default_factory=dict)
    absent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "absent": self.absent,
            "ok": self.ok,
            "failed": self.failed,
            "null": self.null,
            "not_ciphertext": self.text,
            "under_other_keys": dict(self.other_keys),
        }


def verify_all(
    ctx: Context,
    conn: Connection,
    key: Secret,
    cands: list[KeyCandidate] | None = None,
) -> list[ColumnCount]:
    """Every value of every declared field against ``key``; never stops early. Values that are
    not under ``key`` are attributed to the other known keys where those are proven."""
    others = [c for c in (cands or []) if c.key != key]
    analysis = analyse(ctx, conn, [KeyCandidate("active", key), *others], full=True)
    return column_counts(ctx, analysis, key)


def column_counts(ctx: Context, analysis: Analysis, key: Secret) -> list[ColumnCount]:
    fp = key.fingerprint
    out = []
    for column in ctx.profile.encrypted_columns:
        count = analysis.counts.get(column.label, FieldCount(column.label))
        ok = count.by_key.get(fp, 0)
        out.append(
            ColumnCount(
                column.label,
                ok=ok,
                failed=count.cipher - ok,
                null=count.null + count.empty,
                text=count.text,
                other_keys={k: n for k, n in count.by_key.items() if k != fp},
                absent=count.absent,
            )
        )
    return out


def undecryptable(ctx: Context, key: Secret) -> int:
    """How many ciphertext values of the instance's database are not under ``key``."""
    conn = ctx.store().connect(readonly=True)
    try:
        return sum(c.failed for c in verify_all(ctx, conn, key))
    finally:
        conn.close()


def unreadable(ctx: Context) -> int:
    """How many ciphertext values of the instance's database are under no key it knows."""
    from coolify_migrate import instance

    conn = ctx.store().connect(readonly=True)
    try:
        cands = candidates(ctx, instance.load_env(ctx))
        return analyse(ctx, conn, cands, full=True).unknown.count
    finally:
        conn.close()


def check_state(recorded: str | None, key: Secret) -> str:
    """``match``/``mismatch`` of the key-check value stored in the database, or ``not recorded``."""
    if not recorded:
        return "not recorded"
    return "match" if recorded == key.check_value else "mismatch"
