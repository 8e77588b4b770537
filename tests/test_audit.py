"""secrets audit: face checks, install-time evidence, the date-seeded search, read-only."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coolify_migrate.apps.coolify_v3 import seed_search
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3, new_key
from coolify_migrate.apps.coolify_v3.seed_search import plan_chunks
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import UsageError
from coolify_migrate.core.output import Recording
from coolify_migrate.core.secret import Secret
from coolify_migrate.secrets import audit
from coolify_migrate.secrets.audit import Evidence, parse_window
from coolify_migrate.secrets.key_form import key_form
from support import DEMO_MS, DEMO_TIME, REPO, SRC, LeakGuard, make_demo, tree_hash

OTHER_MS = 1_650_000_123_456  # a date-seeded key that is not the published example
# The estimate for a fresh 32-character key is the key's own symbol statistics, so it varies:
# 146 bits by the median, 120.0 the least of a million keys (1 in 6,000 below 128). Below 100
# would need some 43 pairs of equal characters where 8 are expected: far past any run's luck.
# Still well above the date-seeded form's 96 bits and the 64-bit floor for a weak key.
GENERATED_KEY_BITS = 100


def _move_evidence(demo: DemoInstance, to_ms: int) -> None:
    """Make every piece of install-time evidence point at ``to_ms`` instead of the real time."""
    os.utime(demo.data_dir / ".env", (to_ms / 1000, to_ms / 1000))
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute('UPDATE "Setting" SET "createdAt" = ?', (to_ms,))
        conn.execute('UPDATE "User" SET "createdAt" = ?', (to_ms,))
    conn.close()


def test_audit_proves_the_demo_key_and_names_its_seed_time(
    ctx: Context, demo: DemoInstance
) -> None:
    before = tree_hash(demo.data_dir)
    report = audit.audit(ctx)
    d = report.as_dict()
    assert d["weak"] and d["proven"]
    assert d["seed_ms"] == DEMO_MS and d["seed_time"] == DEMO_TIME
    assert d["compromised"]  # the demo key is the published example
    assert (
        d["length"] == 32 and d["alphabet"] == "base64 of hex digits" and d["entropy_bits"] == 96.0
    )
    assert d["live_key"]["fingerprint"] == demo.key.fingerprint
    assert d["key_fingerprint"] == demo.key.fingerprint
    assert {e["what"] for e in d["evidence"]} >= {".env modified", "first Setting.createdAt"}
    assert d["searched"] <= 10, "the .env mtime is the install time: found at once"
    assert any(DEMO_TIME in line for line in report.lines())
    assert tree_hash(demo.data_dir) == before, "audit must never write"


def test_search_rings_outward_on_every_core(tmp_path: Path, leak_guard: LeakGuard) -> None:
    made = make_demo(tmp_path / "far", leak_guard, rows=1, at_ms=OTHER_MS)
    _move_evidence(made, OTHER_MS + 1_500_000)  # 25 minutes after the real seed
    out = Recording()
    ctx = Context(profile=CoolifyV3(), data_dir=made.data_dir, out=out)
    report = audit.audit(ctx, window_s=parse_window("1h"), workers=2)
    assert report.seed_ms == OTHER_MS and report.weak and not report.form.compromised
    assert report.searched > 1_500_000  # it had to walk out to it
    bars = [e for e in out.events if e["event"] == "progress"]
    assert bars and bars[0]["total"] >= 2 * 3_600_000


def test_not_proven_outside_the_window_and_not_weak(tmp_path: Path, leak_guard: LeakGuard) -> None:
    made = make_demo(tmp_path / "post", leak_guard, rows=1, at_ms=OTHER_MS)
    _move_evidence(made, OTHER_MS + 10 * 86_400_000)  # ten days off
    ctx = Context(profile=CoolifyV3(), data_dir=made.data_dir)
    report = audit.audit(ctx, window_s=2.0, workers=1)
    d = report.as_dict()
    assert d["date_seeded_form"] and not d["proven"] and d["seed_ms"] is None
    assert not d["weak"], d["reasons"]  # 96 bits of form, unproven: not weak on its face
    # every window searched once: .env+Setting+User share one centre, the db file its own
    assert d["searched"] == 2 * (2 * 2000 + 1)


def test_installed_at_option_and_json_exit_code(tmp_path: Path, leak_guard: LeakGuard, cli) -> None:
    made = make_demo(tmp_path / "opt", leak_guard, rows=1, at_ms=OTHER_MS)
    _move_evidence(made, OTHER_MS - 30 * 86_400_000)
    hint = audit.iso(OTHER_MS + 20_000)
    before = tree_hash(made.data_dir)
    proc = cli(
        "secrets",
        "audit",
        "--data-dir",
        str(made.data_dir),
        "--installed-at",
        hint,
        "--window",
        "1m",
        "--json",
    )
    assert proc.returncode == 6, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["weak"] and doc["seed_ms"] == OTHER_MS
    assert doc["evidence"][0] == {"what": "--installed-at", "ms": OTHER_MS + 20_000, "time": hint}
    assert tree_hash(made.data_dir) == before
    assert made.key.reveal() not in proc.stdout + proc.stderr


def test_strong_key_exits_zero(tmp_path: Path, leak_guard: LeakGuard, cli) -> None:
    made = make_demo(tmp_path / "strong", leak_guard, rows=1)
    strong = new_key()
    leak_guard.register(strong)
    env = EnvFile.load(made.data_dir / ".env")
    env.set("COOLIFY_SECRET_KEY", strong)  # not the key of the data: reported, not fatal
    env.save()
    proc = cli("secrets", "audit", "--data-dir", str(made.data_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["weak"] and doc["searched"] == 0 and doc["entropy_bits"] > GENERATED_KEY_BITS
    assert doc["live_key"] is None and "no known key decrypts" in doc["live_key_problem"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a" * 32, "bits of entropy"),
        ("abcdef", "6 bytes"),
        ("YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1", "known compromised"),
        ("0123456789" * 3 + "01", "bits of entropy"),
    ],
)
def test_face_checks_flag_weak_keys(value: str, why: str) -> None:
    form = key_form(Secret(value), CoolifyV3())
    assert any(why in r for r in form.reasons), form.reasons


def test_face_checks_pass_a_generated_key() -> None:
    for _ in range(20):
        form = key_form(new_key(), CoolifyV3())
        assert not form.reasons and not form.date_seeded_form
        assert form.entropy_bits > GENERATED_KEY_BITS


def test_date_seeded_form_is_recognised() -> None:
    form = key_form(Secret(date_seeded_key(OTHER_MS)), CoolifyV3())
    assert form.date_seeded_form and form.entropy_bits <= 96 and not form.reasons


def test_plan_chunks_cover_each_window_once_nearest_first() -> None:
    a, b, w = 10**12, 10**12 + 5_000_000, 3_000_000
    chunks = plan_chunks([a, b, a], w)
    spans = sorted(chunks)
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi <= lo, "no candidate is searched twice"
    assert sum(hi - lo for lo, hi in chunks) == (b + w + 1) - (a - w)  # the union, exactly
    assert chunks[0][0] == a and chunks[1][1] == a and chunks[2][0] == b  # rings start at centres
    assert max(hi - lo for lo, hi in chunks) <= seed_search.MAX_CHUNK


def test_plan_chunks_never_below_zero() -> None:
    assert plan_chunks([10], 100) == [(10, 111), (0, 10)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("6h", 21600), ("2d", 172800), ("1.5h", 5400)],
)
def test_parse_window(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "3w", "abc"])
def test_parse_window_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_window(text)


def test_evidence_from_app_backups_and_iso_dates(ctx: Context, demo: DemoInstance) -> None:
    (demo.db_path.parent / "prod.db_1689675555000").write_bytes(b"")
    (demo.db_path.parent / "prod.db_3.12.35_1689600000123").write_bytes(b"")
    (demo.db_path.parent / "prod.db-journal").write_bytes(b"")
    (demo.db_path.parent / "prod.db_1600000000000").write_bytes(b"")  # ours: has a manifest
    (demo.db_path.parent / "prod.db_1600000000000.json").write_bytes(b"{}")
    conn = sqlite3.connect(demo.db_path)
    with conn:
        conn.execute('UPDATE "Setting" SET "createdAt" = ?', ("2023-07-18 10:09:02.980",))
    conn.close()
    conn = ctx.store().connect(readonly=True)
    try:
        found = {e.what: e.ms for e in audit.gather_evidence(ctx, conn, None)}
    finally:
        conn.close()
    assert found["oldest app backup prod.db_3.12.35_1689600000123"] == 1689600000123
    assert found["first Setting.createdAt"] == DEMO_MS
    assert Evidence("x", DEMO_MS).as_dict()["time"] == DEMO_TIME


def test_database_birth_time(tmp_path: Path) -> None:
    f = tmp_path / "born"
    f.write_bytes(b"x")
    birth = audit._birth_ms(f)
    if birth is None:
        pytest.skip("this filesystem or libc does not report file birth times")
    assert abs(birth - time.time() * 1000) < 60_000


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_search_workers_die_with_a_killed_parent() -> None:
    """A SIGKILLed `secrets roll` must not leave search workers holding its lock descriptor."""
    code = (
        "from coolify_migrate.apps.coolify_v3 import seed_search; from coolify_migrate.core.output import Null; "
        "seed_search.FIRST_CHUNK = seed_search.MAX_CHUNK; "  # every chunk takes a worker about a second
        "seed_search.search(bytes(12), [10**12], 10**9, workers=2, out=Null())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(SRC)}
    )
    try:
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the search did not start its workers"
        time.sleep(0.3)  # mid-chunk: without the fix a worker runs on to the end of it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 0.15
    while [w for w in workers if _running(w)] and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _running(w)]
    assert not alive, f"workers {alive} outlived their parent"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap an orphan)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
