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
value is attributed to an established key it decodes under, trying first the key that most values
of its own field are under; a value two keys decode goes to the more legible reading
(``coolify_migrate.secrets.attribution``). Values that are not ciphertext
(``coolify_migrate.secrets.values``) are counted and named, never decrypted. An authenticated
codec (Fernet) needs no statistics: a wrong key fails to decrypt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.app import EncryptedColumn, KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.core.output import Progress
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.core.workers import Workers
from coolify_migrate.crypto.codecs import Codec, DecryptError
from coolify_migrate.secrets import values
from coolify_migrate.secrets.analysis import Analysis as Analysis
from coolify_migrate.secrets.analysis import FieldCodecs as FieldCodecs
from coolify_migrate.secrets.analysis import FieldCount as FieldCount
from coolify_migrate.secrets.analysis import KeyStats as KeyStats
from coolify_migrate.secrets.attribution import attribute
from coolify_migrate.secrets.evidence import decodes, established, utf8_bits
from coolify_migrate.state.keyring import Keyring

SAMPLE_ROWS = 200  # rows per table read to identify keys (``analyse(full=False)``)
POOL_FROM_ROWS = 20_000  # a full analysis of fewer rows stays in this process
POOL_TASK = 1000  # rows per batch sent to a worker (as ``reencrypt.POOL_TASK``)
LEFTOVER_MAX = 100_000  # values under no established key kept in memory for a second look


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
        by_field: dict[str, list[tuple[bytes, bytes]]] = {}
        for label, iv, content in sample:
            by_field.setdefault(label, []).append((iv, content))
        for label, items in by_field.items():
            count = sample_counts[label]
            for key, _ in attribute(codecs.of(label), analysis.order.get(label, ()), items):
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
    reads = _reads(codecs, cand.key, sample)
    for (label, _, content), read in zip(sample, reads, strict=True):
        codec = codecs.of(label)
        informative += bool(content) and not codec.authenticated
        if not read:
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


def _reads(codecs: FieldCodecs, key: Secret, sample: list[tuple[str, bytes, bytes]]) -> list[bool]:
    """Whether each (field, iv, content) decodes under ``key`` (``decrypt_parts``), a field's
    values in one batched call."""
    by_field: dict[str, list[int]] = {}
    for k, (label, _, _) in enumerate(sample):
        by_field.setdefault(label, []).append(k)
    out = [False] * len(sample)
    for label, where in by_field.items():
        found = attribute(codecs.of(label), (key,), [(sample[k][1], sample[k][2]) for k in where])
        for k, (hit, _) in zip(where, found, strict=True):
            out[k] = hit is not None
    return out


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
    rows = sum(conn.count(t) for t in analysis.fields.by_table())
    bar = ctx.out.progress("checking every value's key", rows, "rows")
    try:
        _attribute_rows(ctx, conn, analysis, codecs, leftovers, bar, rows)
    finally:
        bar.close()
    _second_look(codecs, analysis, cands, leftovers, ctx.leave)


@dataclass(frozen=True)
class _Look:
    """What every batch of a full analysis needs (inherited by forked workers, never sent)."""

    codecs: FieldCodecs
    order: dict[str, tuple[Secret, ...]]


@dataclass
class _Seen:
    """One batch's attribution: counts per field, values that are not ciphertext, and the
    values no established key reads (for ``_second_look``)."""

    rows: int
    counts: dict[str, FieldCount] = field(default_factory=dict)
    text: values.Named = field(default_factory=values.Named)
    leftovers: list[tuple[str, str, bytes, bytes]] = field(default_factory=list)


def _look(job: _Look, task: tuple[list[EncryptedColumn], list[Any]]) -> _Seen:
    """Field by field over a batch of rows: one parse per value, and each field's keys tried
    on all of the batch's values at once (``attribute``)."""
    columns, rows = task
    seen = _Seen(len(rows))
    for i, column in enumerate(columns):
        codec = job.codecs.of(column.label)
        where: list[Any] = []
        items: list[tuple[bytes, bytes]] = []
        for row in rows:
            parts = _classify(codec, column, row[1], row[2 + i], seen.counts, seen.text, None)
            if parts is not None:
                where.append(row[1])
                items.append(parts)
        found = attribute(codec, job.order.get(column.label, ()), items)
        by_key = seen.counts[column.label].by_key
        for row_id, parts, (key, _) in zip(where, items, found, strict=True):
            if key is not None:
                by_key[key.fingerprint] = by_key.get(key.fingerprint, 0) + 1
            else:
                seen.leftovers.append((column.label, values.label(column, row_id), *parts))
    return seen


def _attribute_rows(
    ctx: Context,
    conn: Connection,
    analysis: Analysis,
    codecs: FieldCodecs,
    leftovers: list[tuple[str, str, bytes, bytes]],
    bar: Progress,
    rows: int,
) -> None:
    """Batch by batch, on every core for a large database (``core.workers``): this process
    reads, the workers decrypt, and their counts are added here in order."""
    cores = (os.cpu_count() or 1) if rows >= POOL_FROM_ROWS else 1
    with Workers(_look, _Look(codecs, analysis.order), cores, died=_worker_died) as pool:
        for table, columns in analysis.fields.by_table().items():
            names = [c.column for c in columns]
            batches = conn.rows(table, names, id_column=ctx.profile.id_column, batch=POOL_TASK)
            for seen in pool.map((columns, batch) for batch in batches):
                bar.advance(seen.rows)
                _add_seen(analysis, seen, leftovers, ctx.leave)


def _add_seen(
    analysis: Analysis,
    seen: _Seen,
    leftovers: list[tuple[str, str, bytes, bytes]],
    leave: frozenset[str],
) -> None:
    for label, got in seen.counts.items():
        count = analysis.counts.setdefault(label, FieldCount(label))
        count.cipher += got.cipher
        count.text += got.text
        count.empty += got.empty
        count.null += got.null
        for fp, n in got.by_key.items():
            count.by_key[fp] = count.by_key.get(fp, 0) + n
    analysis.text.count += seen.text.count
    room = values.NAMED_MAX - len(analysis.text.labels)
    analysis.text.labels.extend(seen.text.labels[: max(room, 0)])
    for item in seen.leftovers:
        if len(leftovers) < LEFTOVER_MAX:
            leftovers.append(item)
        else:
            _unread(analysis, item[0], item[1], leave)


def _worker_died() -> ChangeFailed:
    return ChangeFailed(
        "a worker process died while reading the values; nothing was changed",
        hint="run the command again; see the system log if a worker was killed",
    )


def _unread(analysis: Analysis, field_: str, where: str, leave: frozenset[str]) -> None:
    """A value no known key reads: unknown, unless the operator named it to be left."""
    if where in leave:
        analysis.counts[field_].left += 1
        analysis.left.add(where)
        analysis.left_labels.add(where)
    else:
        analysis.counts[field_].unknown += 1
        analysis.unknown.add(where)


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
