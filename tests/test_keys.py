"""Which key the data are under: the evidence rule (UTF-8 of all values together, with its bound),
instances under several keys, and values that are not ciphertext."""

from __future__ import annotations

import os
import random
import sqlite3

import pytest
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.crypto.codecs import AesCtrJsonCodec
from coolify_migrate.secrets import attribution, evidence, keys, verdicts
from coolify_migrate.stores.sqlite import SQLiteStore

V3 = AesCtrJsonCodec()


def test_the_utf8_bound_matches_a_monte_carlo_estimate() -> None:
    rng = random.Random(7)
    for n, trials in ((1, 20000), (2, 20000), (4, 40000)):
        ok = sum(evidence.decodes(rng.randbytes(n)) for _ in range(trials))
        measured = ok / trials
        assert measured == pytest.approx(2 ** -evidence.utf8_bits(n), rel=0.1), n
    assert evidence.utf8_bits(1) == pytest.approx(1.0)
    assert 19 < evidence.utf8_bits(24) < 21  # a generated 24-character password: ~20 bits
    assert evidence.utf8_bits(1000) > 800


def test_the_rule_pays_for_the_choice_of_values() -> None:
    # a wrong key reading half of 1000 one-byte values by chance is not established ...
    assert not evidence.established(500 * evidence.utf8_bits(1), 500, 1000)
    # ... but the right key reading all of them is, and so is one reading 40 long values
    assert evidence.established(1000 * evidence.utf8_bits(1), 1000, 1000)
    assert evidence.established(40 * evidence.utf8_bits(24), 40, 100)
    assert not evidence.established(2 * evidence.utf8_bits(24), 2, 100)


def test_a_wrong_key_is_never_established_on_random_values() -> None:
    right, wrong = new_key(), new_key()
    rng = random.Random(3)
    sample = []
    for i in range(300):
        text = "".join(rng.choice("abcdef0123456789") for _ in range(rng.randint(1, 40)))
        iv, content = V3.split(V3.encrypt(right, text))
        sample.append((f"f{i % 5}", iv, content))
    codecs = keys.FieldCodecs(CoolifyV3())
    good = keys.key_stats(codecs, KeyCandidate("right", right), sample)
    bad = keys.key_stats(codecs, KeyCandidate("wrong", wrong), sample)
    assert good.established and good.failed == 0
    assert not bad.established and bad.decoded < 60  # only short values decode by chance


def _demo_db(demo: DemoInstance) -> Connection:
    return SQLiteStore(demo.db_path).connect(readonly=True)


def test_identify_proves_the_demo_key_by_evidence(ctx: Context, demo: DemoInstance) -> None:
    stranger = new_key()
    conn = _demo_db(demo)
    try:
        found = verdicts.identify(
            ctx, conn, [KeyCandidate("stranger", stranger), KeyCandidate("demo", demo.key)]
        )
    finally:
        conn.close()
    assert found.key == demo.key and found.method == "evidence"
    results = {t["source"]: t for t in found.tried}
    assert results["demo"]["established"] and not results["stranger"]["established"]


@pytest.mark.parametrize("pool", [False, True])
def test_values_under_two_keys_are_attributed_each_to_its_own(
    ctx: Context, demo: DemoInstance, monkeypatch: pytest.MonkeyPatch, pool: bool
) -> None:
    """v3's own roll re-encrypted 16 fields and left the 43 legacy ones: both keys are proven,
    every value is attributed, none is unknown."""
    other = new_key()
    rolled = {c.label for c in ctx.profile.encrypted_columns if not c.missed_by_app_roll}
    conn = sqlite3.connect(demo.db_path)
    with conn:
        for col in ctx.profile.encrypted_columns:
            if col.label not in rolled:
                continue
            rows = conn.execute(f'SELECT rowid, "{col.column}" FROM "{col.table}"').fetchall()
            for rowid, stored in rows:
                if stored and V3.is_encrypted(stored):
                    raw = V3.decrypt_bytes(demo.key, stored)
                    conn.execute(
                        f'UPDATE "{col.table}" SET "{col.column}" = ? WHERE rowid = ?',
                        (V3.encrypt_raw(other, raw), rowid),
                    )
    conn.close()
    # a garbled value and one not ciphertext: named the same whether read here or by workers
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute('UPDATE "Secret" SET "value" = ? WHERE rowid = 2', ("plain",))
    conn.close()
    if pool:  # forked workers, tiny batches: the counts must be the ones read here
        monkeypatch.setattr(keys, "POOL_FROM_ROWS", 0)
        monkeypatch.setattr(keys, "POOL_TASK", 2)
    conn = _demo_db(demo)
    try:
        cands = [KeyCandidate("demo", demo.key), KeyCandidate("other", other)]
        analysis = keys.analyse(ctx, conn, cands, full=True)
    finally:
        conn.close()
    assert analysis.text.count >= 1 and "Secret.value." in " ".join(analysis.text.labels)
    under = analysis.under()
    assert set(under) == {demo.key.fingerprint, other.fingerprint}
    assert sum(under.values()) == demo.value_count - 1 and analysis.unknown.count == 0
    for label, count in analysis.counts.items():
        if count.cipher:
            want = other if label in rolled else demo.key
            assert set(count.by_key) == {want.fingerprint}, label


def test_no_known_key_is_refused_and_not_ciphertext_is_named(
    ctx: Context, demo: DemoInstance
) -> None:
    conn = _demo_db(demo)
    try:
        with pytest.raises(KeyProblem, match="no known key decrypts the data"):
            verdicts.identify(ctx, conn, [KeyCandidate("stranger", new_key())])
        analysis = keys.analyse(ctx, conn, [KeyCandidate("demo", demo.key)], full=True)
    finally:
        conn.close()
    texts = {".".join(w) for w, raw in demo.as_is.items() if raw}
    assert analysis.text.count == len(texts) and set(analysis.text.labels) == texts


def test_too_few_values_to_tell_two_keys_apart_is_refused(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    from coolify_migrate.config.envfile import EnvFile

    data = Path(tmp_path) / "tiny"
    (data / "db").mkdir(parents=True)
    key, twin = new_key(), new_key()
    conn = sqlite3.connect(data / "db" / "prod.db")
    conn.execute('CREATE TABLE "Secret" (id TEXT PRIMARY KEY, value TEXT NOT NULL)')
    conn.execute("INSERT INTO \"Secret\" VALUES ('a', ?)", (V3.encrypt_exact(key, ""),))
    conn.commit()
    conn.close()
    env = EnvFile(data / ".env", "")
    env.set("COOLIFY_SECRET_KEY", key)
    env.save()
    ctx = Context(profile=CoolifyV3(), data_dir=data)
    conn = SQLiteStore(data / "db" / "prod.db").connect(readonly=True)
    try:  # an empty content decodes under any key: nothing tells them apart
        with pytest.raises(KeyProblem, match="too few encrypted values"):
            verdicts.identify(ctx, conn, [KeyCandidate("a", key), KeyCandidate("b", twin)])
        sole = verdicts.identify(ctx, conn, [KeyCandidate("a", key)])
    finally:
        conn.close()
    assert sole.key == key and sole.method == "only-consistent"


def _ctr(key: Secret, iv: bytes, data: bytes) -> bytes:
    """AES-256-CTR from ``cryptography`` itself: what a key reads, not the tool's codec."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    out = Cipher(algorithms.AES(key.encode()), modes.CTR(iv)).encryptor()
    return out.update(data) + out.finalize()


def _misread_iv(rng: random.Random, right: Secret, wrong: Secret, raw: bytes) -> bytes:
    """An IV with which ``raw`` under ``right`` decodes under ``wrong`` as UTF-8 with a control
    character in it: the value a rule taking the first key that decodes gives to ``wrong``."""
    controls = set(range(32)) - {9, 10, 13}
    while True:
        iv = rng.randbytes(16)
        misread = _ctr(wrong, iv, _ctr(right, iv, raw))
        if evidence.decodes(misread) and controls & set(misread):
            return iv


def test_a_short_value_goes_to_the_key_that_reads_it_legibly() -> None:
    """A value under a field's second key whose bytes the first key also decodes (0.09 of 4-byte
    values): the first key reads control characters, the second text, so the second."""
    first, second = new_key(), new_key()
    rng = random.Random(11)
    plains = [b"3000", b"true", b"production", b"pg-5432", "grüße".encode()]
    items = []
    for raw in plains:
        iv = _misread_iv(rng, second, first, raw)
        items.append((iv, _ctr(second, iv, raw)))
    found = attribution.attribute(V3, (first, second), items)
    assert [k for k, _ in found] == [second] * len(plains)
    assert [raw for _, raw in found] == plains
    # the first key's own values stay its own, whatever the second key reads
    mine = []
    for raw in plains:
        iv = _misread_iv(rng, first, second, raw)
        mine.append((iv, _ctr(first, iv, raw)))
    assert [k for k, _ in attribution.attribute(V3, (first, second), mine)] == [first] * len(plains)


def test_what_people_write_reads_as_text() -> None:
    """The demo's non-ASCII values (a no-break space, an emoji's zero-width joiner, Cyrillic,
    CJK) are text; control and private-use characters are not."""
    for value in ("пароль-ключ", "correct\xa0horse", "👩\u200d💻 deploy", "密码🔑 パスワード"):
        assert attribution.legibility(value.encode()) == attribution.TEXT, value
    assert attribution.legibility(b"3000\n-----END KEY-----\r\n") == attribution.PRINTABLE_ASCII
    for value in ("abc\x1bdef", "ключ\x00", "pass\ue000word", "x\U000e0080y"):
        assert attribution.legibility(value.encode()) == attribution.UTF8, repr(value)
    assert attribution.legibility(b"\xff\xfe") == attribution.NOT_UTF8


def test_a_wrong_first_key_takes_a_short_value_at_the_rate_of_printable_ascii() -> None:
    """20,000 four-character values under a field's second key, keys and IVs from a seeded
    generator (the count is the same in every run): the first key takes one only when its reading
    is printable ASCII (with tab and line breaks), (98/256)^4 = 0.021, where taking the first key
    that decodes would take 0.089 of them."""
    rng = random.Random(5)
    first, second = (Secret(rng.randbytes(16).hex()) for _ in range(2))
    items = []
    for _ in range(20_000):
        raw = "".join(rng.choice("0123456789abcdefxyz") for _ in range(4)).encode()
        iv = rng.randbytes(16)
        items.append((iv, _ctr(second, iv, raw)))
    found = attribution.attribute(V3, (first, second), items)
    taken = sum(k == first for k, _ in found) / len(items)
    assert taken == pytest.approx((98 / 256) ** 4, rel=0.2), taken
    assert all(k is not None for k, _ in found)
