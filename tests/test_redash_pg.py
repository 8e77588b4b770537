"""Redash's data key on a real PostgreSQL server, checked with Redash's own crypto library.

The database is written by sqlalchemy-utils' FernetEngine (``redash_db``); after each command
the rows are read back by that same library. The tool runs as the real CLI in a subprocess
(``--app redash``, no runtime: the database is reached through ``REDASH_DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redash_db
from coolify_migrate.apps.redash.profile import Redash
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.state.keyring import Keyring
from pg import fresh_database
from support import SRC, CliRunner, LeakGuard, ProcWatch

COOKIE = "Xr2bQk9LmW4pZt7vNc3sHy6dJf8gAe5u"  # 32 letters and digits, as the setup script makes
WEAK = "changeme"  # a data key an operator typed
PUBLISHED = "c292a0a3aa32397cdb050e233733900f"  # CVE-2021-41192


@pytest.fixture(autouse=True)
def _no_secret_on_a_command_line(leak_guard: LeakGuard) -> Iterator[None]:
    """Every process's command line, sampled during the test: no registered secret in one."""
    with ProcWatch() as watch:
        yield
    leaks = watch.leaks(leak_guard.secrets)
    assert not leaks, "\n".join(leaks[:5])


def _instance(tmp: Path, conninfo: str, guard: LeakGuard, *, env_lines: list[str]) -> Path:
    data = tmp / "redash"
    data.mkdir(parents=True, exist_ok=True)
    lines = [
        "PYTHONUNBUFFERED=0",
        "REDASH_LOG_LEVEL=INFO",
        "REDASH_REDIS_URL=redis://redis:6379/0",
        *env_lines,
        f"REDASH_DATABASE_URL={redash_db.url(conninfo)}",
        "REDASH_ENFORCE_CSRF=true",
    ]
    (data / "env").write_text("\n".join(lines) + "\n")
    for line in env_lines:
        guard.register(line.split("=", 1)[1])
    return data


def _cli(cli: CliRunner, data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--app", "redash", "--data-dir", str(data), "--runtime", "none", env=env)


def _env(data: Path) -> EnvFile:
    return EnvFile.load(data / "env")


def _assert_all_read(conninfo: str, secret: str) -> None:
    for table, want in redash_db.expected().items():
        got = redash_db.read_options(conninfo, table, secret)
        assert got == want, f"{table}: the library reads {got}"


def test_roll_puts_every_row_under_one_new_key_that_redash_reads(
    tmp_path: Path, pg_database: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    # the mixed state Redash's migrations left: data sources under the data key, alert
    # destinations under the cookie secret
    redash_db.create(pg_database, secret=WEAK, destinations_secret=COOKIE)
    data = _instance(
        tmp_path,
        pg_database,
        leak_guard,
        env_lines=[f"REDASH_COOKIE_SECRET={COOKIE}", f"REDASH_SECRET_KEY={WEAK}"],
    )
    audit = _cli(cli, data, "secrets", "audit", "--json")
    assert audit.returncode == 6, audit.stderr
    report = json.loads(audit.stdout)
    assert report["key_source"] == "REDASH_SECRET_KEY"
    assert any("entropy" in r for r in report["reasons"]), report["reasons"]

    dry = _cli(cli, data, "secrets", "roll", "--yes", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["values"] == 8 and planned["reencrypted"] == 8, planned
    assert redash_db.read_options(pg_database, "data_sources", WEAK)[1] is not None

    rolled = _cli(cli, data, "secrets", "roll", "--yes", "--json")
    assert rolled.returncode == 0, rolled.stderr
    result = json.loads(rolled.stdout.splitlines()[-1])
    assert result["rolled"] and result["reencrypted"] == 8, result
    froms = {c["column"]: c["from_keys"] for c in result["columns"]}
    assert len(froms["data_sources.encrypted_options"]) == 1
    assert len(froms["notification_destinations.encrypted_options"]) == 1
    assert (
        froms["data_sources.encrypted_options"]
        != froms["notification_destinations.encrypted_options"]
    )

    env = _env(data)
    new = env.get("REDASH_SECRET_KEY")
    assert new and new not in (WEAK, COOKIE) and len(new) == 32 and new.isalnum()
    leak_guard.register(new)
    assert env.get("REDASH_COOKIE_SECRET") == COOKIE  # the cookie secret did not move
    kept = [env.get(k) for k in env.keys() if k.startswith("REDASH_SECRET_KEY_OLD_")]  # noqa: SIM118
    assert kept == [WEAK]
    _assert_all_read(pg_database, new)
    for table in ("data_sources", "notification_destinations"):
        old = redash_db.read_options(pg_database, table, WEAK)
        assert all(v is None for v in old.values()), f"{table} still reads under the old key"
    keyring = Keyring(Context(profile=Redash(), data_dir=data))
    assert {e.key.reveal() for e in keyring.entries} >= {WEAK, COOKIE, new}

    verify = _cli(cli, data, "secrets", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = _cli(cli, data, "secrets", "roll", "--yes", "--json")
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["rolled"] is False


def test_a_row_under_an_unknown_key_stops_the_roll_with_every_byte_unchanged(
    tmp_path: Path, pg_database: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    redash_db.create(pg_database, secret=WEAK)
    stranger = "someone-elses-key-0123456789"
    leak_guard.register(stranger)
    redash_db.write_options(pg_database, "data_sources", {4: {"jsonKeyFile": "e30="}}, stranger)
    data = _instance(
        tmp_path,
        pg_database,
        leak_guard,
        env_lines=[f"REDASH_COOKIE_SECRET={COOKIE}", f"REDASH_SECRET_KEY={WEAK}"],
    )
    before_rows, before_env = redash_db.raw(pg_database), (data / "env").read_bytes()

    refused = _cli(cli, data, "secrets", "roll", "--yes")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "data_sources.encrypted_options.4" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert redash_db.raw(pg_database) == before_rows
    assert (data / "env").read_bytes() == before_env

    # a name that is not an unreadable value is refused too, before anything changes
    wrong = _cli(
        cli, data, "secrets", "roll", "--yes", "--leave", "data_sources.encrypted_options.1"
    )
    assert wrong.returncode != 0 and redash_db.raw(pg_database) == before_rows

    # the operator names the row to leave: everything else moves, that row stays as it was
    left = _cli(
        cli, data, "secrets", "roll", "--yes", "--leave", "data_sources.encrypted_options.4"
    )
    assert left.returncode == 0, left.stderr
    assert "left as asked" in left.stdout
    after = redash_db.raw(pg_database)
    assert after[("data_sources", 4)] == before_rows[("data_sources", 4)]
    assert all(after[k] != v for k, v in before_rows.items() if k != ("data_sources", 4))
    new = _env(data).get("REDASH_SECRET_KEY")
    assert new
    leak_guard.register(new)
    sources = redash_db.read_options(pg_database, "data_sources", new)
    assert sources[4] is None and all(sources[i] for i in (1, 2, 3, 5))
    assert redash_db.read_options(pg_database, "data_sources", stranger)[4] == {
        "jsonKeyFile": "e30="
    }


def test_the_empty_key_and_the_published_fallback_are_found_and_rolled(
    tmp_path: Path, pg_server: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    # `REDASH_SECRET_KEY=` with nothing after it: Redash encrypts with the empty string
    with fresh_database(pg_server) as conninfo:
        redash_db.create(conninfo, secret="")
        data = _instance(
            tmp_path / "empty",
            conninfo,
            leak_guard,
            env_lines=[f"REDASH_COOKIE_SECRET={COOKIE}", "REDASH_SECRET_KEY="],
        )
        audit = _cli(cli, data, "secrets", "audit", "--json")
        assert audit.returncode == 6
        assert "the key is empty" in json.loads(audit.stdout)["reasons"]
        rolled = _cli(cli, data, "secrets", "roll", "--yes")
        assert rolled.returncode == 0, rolled.stderr
        new = _env(data).get("REDASH_SECRET_KEY")
        assert new
        leak_guard.register(new)
        _assert_all_read(conninfo, new)
    # no REDASH_SECRET_KEY at all and the cookie secret Redash once shipped as its default:
    # the data are under that public value
    with fresh_database(pg_server) as conninfo:
        redash_db.create(conninfo, secret=PUBLISHED)
        data = _instance(
            tmp_path / "default",
            conninfo,
            leak_guard,
            env_lines=[f"REDASH_COOKIE_SECRET={PUBLISHED}"],
        )
        audit = _cli(cli, data, "secrets", "audit", "--json")
        assert audit.returncode == 6
        report = json.loads(audit.stdout)
        assert report["key_source"].startswith("REDASH_COOKIE_SECRET")
        reasons = " | ".join(report["reasons"])
        assert "published value" in reasons and "cookie-secret's value" in reasons, reasons
        assert report["other_secrets"][0]["reasons"], report["other_secrets"]
        rolled = _cli(cli, data, "secrets", "roll", "--yes")
        assert rolled.returncode == 0, rolled.stderr
        new = _env(data).get("REDASH_SECRET_KEY")
        assert new and new != PUBLISHED
        leak_guard.register(new)
        _assert_all_read(conninfo, new)


def test_a_cookie_secret_roll_pins_the_data_key_first(
    tmp_path: Path, pg_database: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    # no REDASH_SECRET_KEY: the data are under the cookie secret through Redash's fallback
    redash_db.create(pg_database, secret=COOKIE)
    data = _instance(
        tmp_path, pg_database, leak_guard, env_lines=[f"REDASH_COOKIE_SECRET={COOKIE}"]
    )
    before = redash_db.raw(pg_database)
    rolled = _cli(cli, data, "secrets", "roll", "--yes", "--secret", "cookie-secret")
    assert rolled.returncode == 0, rolled.stderr
    assert "logged out" in rolled.stdout and "invite" in rolled.stdout
    env = _env(data)
    cookie = env.get("REDASH_COOKIE_SECRET")
    assert cookie and cookie != COOKIE
    leak_guard.register(cookie)
    assert env.get("REDASH_SECRET_KEY") == COOKIE  # pinned: the data key did not move
    assert redash_db.raw(pg_database) == before
    _assert_all_read(pg_database, COOKIE)
    keyring = Keyring(Context(profile=Redash(), data_dir=data))
    assert COOKIE in {e.key.reveal() for e in keyring.entries}
    verify = _cli(cli, data, "secrets", "verify")
    assert verify.returncode == 0, verify.stdout


def _one_key(conninfo: str, keys: list[str]) -> str | None:
    """The key every row decrypts under (read by the library), or None."""
    for key in keys:
        if all(
            all(v is not None for v in redash_db.read_options(conninfo, t, key).values())
            for t in ("data_sources", "notification_destinations")
        ):
            return key
    return None


def _host_keys(data: Path) -> list[str]:
    env = _env(data)
    secret = ("REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY")
    found = [env.get(k) or "" for k in env.keys() if k.startswith(secret)]  # noqa: SIM118
    found += [e.key.reveal() for e in Keyring(Context(profile=Redash(), data_dir=data)).entries]
    return found


def test_a_kill_at_any_moment_leaves_one_key_for_all_rows(
    tmp_path: Path, pg_server: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    env_lines = [f"REDASH_COOKIE_SECRET={COOKIE}", f"REDASH_SECRET_KEY={WEAK}"]
    with fresh_database(pg_server) as conninfo:
        redash_db.create(conninfo, secret=WEAK)
        data = _instance(tmp_path / "trace", conninfo, leak_guard, env_lines=env_lines)
        trace = tmp_path / "trace.txt"
        traced = _cli(cli, data, "secrets", "roll", "--yes", COOLIFY_MIGRATE_TRACE=str(trace))
        assert traced.returncode == 0, traced.stderr
        leak_guard.register(_env(data).get("REDASH_SECRET_KEY"))
    points = list(dict.fromkeys(trace.read_text().split()))
    assert "roll:before-commit#1" in points and "roll:committed#1" in points, points
    # every durable step, then kills at arbitrary moments (by the clock, not by a checkpoint)
    runs: list[tuple[str, dict[str, str] | float]] = [
        (p, {"COOLIFY_MIGRATE_CRASH_AT": p}) for p in points
    ]
    runs += [(f"after {d:.2f}s", d) for d in (0.3, 0.8, 1.5, 2.5)]
    failures: list[str] = []
    for i, (what, how) in enumerate(runs):
        with fresh_database(pg_server) as conninfo:
            redash_db.create(conninfo, secret=WEAK)
            data = _instance(tmp_path / f"k{i}", conninfo, leak_guard, env_lines=env_lines)
            if isinstance(how, dict):
                killed = _cli(cli, data, "secrets", "roll", "--yes", **how)
                if killed.returncode != -signal.SIGKILL:
                    failures.append(f"{what}: not killed (exit {killed.returncode})")
                    continue
            else:
                _kill_after(data, how)
            for key in _host_keys(data):
                leak_guard.register(key)
            holder = _one_key(conninfo, _host_keys(data))
            if holder is None:
                failures.append(f"{what}: the rows are not all under one key the host holds")
                continue
            again = _cli(cli, data, "secrets", "roll", "--yes")
            if again.returncode != 0:
                failures.append(
                    f"{what}: roll again exit {again.returncode}: {again.stderr[-300:]}"
                )
                continue
            new = _env(data).get("REDASH_SECRET_KEY") or ""
            leak_guard.register(new)
            if new == WEAK or _one_key(conninfo, [new]) != new:
                failures.append(f"{what}: after completing, the env key does not read every row")
    assert not failures, "\n".join(failures)


def _kill_after(data: Path, delay: float) -> None:
    """Start a roll and SIGKILL it after ``delay`` seconds, wherever it is."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coolify_migrate",
            "secrets",
            "roll",
            "--yes",
            "--app",
            "redash",
            "--data-dir",
            str(data),
            "--runtime",
            "none",
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


pytestmark = pytest.mark.postgres


def test_versions_from_every_source_and_the_guards_before_an_upgrade(
    tmp_path: Path, pg_server: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    env_lines = [f"REDASH_COOKIE_SECRET={COOKIE}", f"REDASH_SECRET_KEY={WEAK}"]
    with fresh_database(pg_server) as conninfo:
        # 8.0.0's head; one data source was written under the cookie secret (the key Redash's
        # first encrypting migration once used by mistake)
        redash_db.create(conninfo, secret=WEAK, head="e5c7a4e2df4d")
        redash_db.write_options(conninfo, "data_sources", {2: {"db": "x"}}, COOKIE)
        data = _instance(tmp_path / "mixed", conninfo, leak_guard, env_lines=env_lines)
        status = json.loads(_cli(cli, data, "status", "--json").stdout)
        sources = {s["source"]: s for s in status["version_sources"]}
        assert sources["data"]["detail"] == "alembic head e5c7a4e2df4d", sources
        assert status["database"]["kind"] == "postgres" and status["database"]["exists"]
        # that head is 7.0's and 8.0's: the operator says which (the tool records it)
        stamped = _cli(cli, data, "stamp", "8.0.0.b32245")
        assert stamped.returncode == 0, stamped.stderr
        before = redash_db.raw(conninfo)
        refused = _cli(cli, data, "upgrade", "--to", "10.1.0.b50633", "--yes")
        assert refused.returncode == 3, refused.stderr
        assert "not under the data key" in refused.stderr and "secrets roll" in refused.stderr
        assert redash_db.raw(conninfo) == before
        # the tool's record and the schema disagree: reported, never guessed
        import psycopg2

        conn = psycopg2.connect(conninfo)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE alembic_version SET version_num = '89bc7873a3e0'")
        conn.close()
        status = json.loads(_cli(cli, data, "status", "--json").stdout)
        assert set(status["version_allowed"]) == {"10.0.0b50363", "10.1.0b50633"}, status
        assert status["version_conflict"] and status["installed_version"] is None
        # an alembic head no Redash release left: refused
        conn = psycopg2.connect(conninfo)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE alembic_version SET version_num = 'b8f2a1c93d47'")
        conn.close()
        unknown = _cli(cli, data, "plan")
        assert unknown.returncode == 3, unknown.stderr
        assert "alembic head b8f2a1c93d47 is not one this tool knows" in unknown.stderr


def test_a_restore_that_fails_after_the_swap_puts_the_live_database_back(
    tmp_path: Path, pg_database: str, cli: CliRunner, leak_guard: LeakGuard
) -> None:
    """The server's undo path: the backup is swapped in, its values are not under the key its
    manifest names, so the safety dump is loaded back; data and env file as before, exit 5."""
    from coolify_migrate.core.secret import Secret

    redash_db.create(pg_database, secret=WEAK)
    data = _instance(
        tmp_path,
        pg_database,
        leak_guard,
        env_lines=[f"REDASH_COOKIE_SECRET={COOKIE}", f"REDASH_SECRET_KEY={WEAK}"],
    )
    made = _cli(cli, data, "backup", "create", "--json")
    assert made.returncode == 0, made.stderr
    name = json.loads(made.stdout.splitlines()[-1])["name"]
    manifest = data / "backups" / f"{name}.json"
    doc = json.loads(manifest.read_text())
    assert doc["app_facts"]["alembic_head"] == redash_db.HEAD_10_1
    assert set(doc["app_facts"]["secrets"]) == {"cookie-secret", "data-key"}
    # the manifest now names another key the instance knows (the cookie secret)
    doc["key_check"] = Secret(COOKIE).check_value
    doc["key_fingerprint"] = Secret(COOKIE).fingerprint
    # sealed again as the tool seals its manifests: this test is about the restore, not the seal
    from coolify_migrate.apps import get_profile
    from coolify_migrate.backups import identity
    from coolify_migrate.core.context import Context
    from coolify_migrate.state import made as backup_order

    seal_key = backup_order.seal_key(Context(profile=get_profile("redash"), data_dir=data))
    assert seal_key is not None
    doc[identity.SEAL] = identity.seal(doc, seal_key)
    manifest.write_text(json.dumps(doc))
    # the live database moves on after the backup: one more data source
    redash_db.write_options(pg_database, "data_sources", {5: {"url": "http://new:9090"}}, WEAK)
    before_rows, before_env = redash_db.raw(pg_database), (data / "env").read_bytes()
    failed = _cli(cli, data, "rollback", "--to", name, "--yes")
    assert failed.returncode == 5, failed.stdout + failed.stderr
    assert "as they were" in failed.stderr
    assert redash_db.raw(pg_database) == before_rows
    assert (data / "env").read_bytes() == before_env
    assert redash_db.read_options(pg_database, "data_sources", WEAK)[5] == {
        "url": "http://new:9090"
    }
