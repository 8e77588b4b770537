"""An upgrade whose roll is decided on a sample: no full read before the stop, and the roll's
own pass meets every value. Values under a key the sample did not prove are rolled when their
own evidence proves that key, and roll everything back when it does not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from checks import active_key, assert_all_decrypt, file_hashes
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.core.output import Recording
from coolify_migrate.core.secret import Secret
from coolify_migrate.engine import upgrade
from coolify_migrate.secrets import keys
from support import REPO, LeakGuard, make_demo

MANIFEST = str(REPO / "versions.json")
CODEC = CoolifyV3().codec


def _move_rows(demo: DemoInstance, to: Secret, *, beyond: int, limit: int | None = None) -> int:
    """Every ciphertext value of at least 24 bytes in rows past the first ``beyond`` of each
    table, put under ``to`` (the same plaintext bytes): what a sample of ``beyond`` rows never
    sees. Shorter values stay: one of n bytes reads as UTF-8 under a wrong key by chance
    (p = 0.5 for 1 byte, 1e-6 for 24), and its field's majority key is tried first."""
    moved = 0
    conn = sqlite3.connect(demo.db_path)
    with conn:
        for column in CoolifyV3().encrypted_columns:
            table, name = column.table, column.column
            found = conn.execute(
                f'SELECT rowid, "{name}" FROM "{table}" WHERE rowid > ? ORDER BY rowid', (beyond,)
            ).fetchall()
            for rowid, stored in found:
                if limit is not None and moved >= limit:
                    return moved
                parts = CODEC.parts(stored) if isinstance(stored, str) else None
                if parts is None:
                    continue
                raw = CODEC.decrypt_split(demo.key, *parts)
                if len(raw) < 24:
                    continue
                conn.execute(
                    f'UPDATE "{table}" SET "{name}" = ? WHERE rowid = ?',
                    (CODEC.encrypt_raw(to, raw), rowid),
                )
                moved += 1
    conn.close()
    return moved


def _run(demo: DemoInstance) -> tuple[dict[str, object], Recording]:
    out = Recording()
    ctx = Context(profile=CoolifyV3(), data_dir=demo.data_dir, out=out)
    return upgrade.upgrade(ctx, manifest_src=MANIFEST), out


@pytest.fixture
def sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "SAMPLE_ROWS", 1)  # the sample: the first row of each table


def test_values_beyond_the_sample_under_another_known_key_are_rolled_too(
    tmp_path: Path, leak_guard: LeakGuard, sampled: None
) -> None:
    demo = make_demo(tmp_path / "inst", leak_guard, rows=3)
    other = new_key()
    leak_guard.register(other)
    assert _move_rows(demo, other, beyond=1) > 20
    env = EnvFile.load(demo.data_dir / ".env")
    env.set("COOLIFY_SECRET_KEY_OLD_1690000000000", other.reveal())
    env.save()
    result, out = _run(demo)
    assert result["outcome"] == "upgraded"
    phases = [e["phase"] for e in out.events if e["event"] == "progress"]
    assert "checking every value's key" not in phases  # no full pass: the sample decided
    assert "re-encrypting" in phases
    new = active_key(demo.data_dir)
    leak_guard.register(new)
    assert new not in (demo.key, other)
    assert assert_all_decrypt(demo, new) == demo.value_count


@pytest.mark.parametrize("limit", [None, 1])
def test_values_beyond_the_sample_that_no_key_proves_roll_everything_back(
    tmp_path: Path, leak_guard: LeakGuard, sampled: None, limit: int | None
) -> None:
    """Under a key nobody knows (limit None), or one value under a known key that a single
    value cannot prove (limit 1): the roll's pass stops before COMMIT, the upgrade is undone."""
    demo = make_demo(tmp_path / "inst", leak_guard, rows=3)
    stranger = new_key()
    leak_guard.register(stranger)
    assert _move_rows(demo, stranger, beyond=1, limit=limit)
    if limit is not None:  # the key is known, but one value does not prove it
        env = EnvFile.load(demo.data_dir / ".env")
        env.set("COOLIFY_SECRET_KEY_OLD_1690000000000", stranger.reveal())
        env.save()
    before = file_hashes(demo.data_dir)
    with pytest.raises(ChangeFailed, match="under no proven key"):
        _run(demo)
    assert file_hashes(demo.data_dir) == before
    assert active_key(demo.data_dir) == demo.key
