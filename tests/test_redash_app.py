"""The Redash app without a server: its layout, how the CLI finds it, what a fresh or repeated
install writes, and the planner's rules for its releases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from coolify_migrate.apps import detect, get_profile
from coolify_migrate.apps.redash.profile import Redash
from coolify_migrate.apps.redash.steps import _superseded
from coolify_migrate.config import manifest
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, Refused
from coolify_migrate.core.secret import Secret
from coolify_migrate.engine.install_env import prepare_env
from coolify_migrate.engine.plan import make_plan
from coolify_migrate.engine.upgrade import default_manifest
from packaging.version import Version
from support import CliRunner, LeakGuard

ALNUM32 = re.compile(r"[A-Za-z0-9]{32}")


def _ctx(directory: Path) -> Context:
    return Context(profile=Redash(), data_dir=directory)


def test_a_fresh_install_writes_strong_unquoted_secrets_and_the_compose_file(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    directory = tmp_path / "redash"
    result = prepare_env(_ctx(directory), version="25.1.0")
    assert result["created"] and result["files"] == ["compose.yaml"]
    text = (directory / "env").read_text()
    env = EnvFile.load(directory / "env")
    for name in ("REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY", "POSTGRES_PASSWORD"):
        value = env.get(name) or ""
        leak_guard.register(value)
        assert ALNUM32.fullmatch(value), name
        assert f"\n{name}={value}\n" in f"\n{text}", f"{name} is written plain, unquoted"
    assert env.get("REDASH_COOKIE_SECRET") != env.get("REDASH_SECRET_KEY")
    password = env.get("POSTGRES_PASSWORD")
    assert env.get("REDASH_DATABASE_URL") == f"postgresql://postgres:{password}@postgres/postgres"
    compose = (directory / "compose.yaml").read_text()
    assert "image: redash/redash:25.1.0" in compose and "worker:" in compose
    assert f"env_file: {directory}/env" in compose
    assert detect(directory) == "redash"


def test_an_existing_env_gets_only_its_missing_or_empty_values(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    directory = tmp_path / "redash"
    directory.mkdir()
    (directory / "env").write_text(
        "REDASH_COOKIE_SECRET=\nPOSTGRES_PASSWORD=operators0wnPassw0rd\nCUSTOM=kept\n"
    )
    leak_guard.register("operators0wnPassw0rd")
    result = prepare_env(_ctx(directory), version="25.1.0")
    env = EnvFile.load(directory / "env")
    assert "REDASH_COOKIE_SECRET" in result["added"] and "POSTGRES_PASSWORD" not in result["added"]
    assert env.get("POSTGRES_PASSWORD") == "operators0wnPassw0rd"
    url = env.get("REDASH_DATABASE_URL") or ""
    assert url == "postgresql://postgres:operators0wnPassw0rd@postgres/postgres"
    assert env.get("CUSTOM") == "kept"
    kept = Path(result["backup"])
    assert kept.name.startswith("env-") and "CUSTOM=kept" in kept.read_text()
    for name in ("REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY"):
        leak_guard.register(env.get(name) or "")
    again = prepare_env(_ctx(directory), version="25.1.0")
    assert again["added"] == [] and again["backup"] is None


def test_no_new_secrets_against_existing_data(tmp_path: Path, leak_guard: LeakGuard) -> None:
    directory = tmp_path / "redash"
    (directory / "postgres-data").mkdir(parents=True)
    (directory / "postgres-data" / "PG_VERSION").write_text("15\n")
    with pytest.raises(KeyProblem, match="new secrets would not decrypt them"):
        prepare_env(_ctx(directory), version="25.1.0")
    assert not (directory / "env").exists() and not (directory / "compose.yaml").exists()
    # data under the cookie secret (REDASH_SECRET_KEY unset): no data key may be added, and the
    # database's credentials stay as they are
    (directory / "env").write_text("REDASH_COOKIE_SECRET=theCookieSecretThatHoldsTheData\n")
    leak_guard.register("theCookieSecretThatHoldsTheData")
    result = prepare_env(_ctx(directory), version="25.1.0")
    env = EnvFile.load(directory / "env")
    assert env.get("REDASH_SECRET_KEY") is None
    assert env.get("POSTGRES_PASSWORD") is None and env.get("REDASH_DATABASE_URL") is None
    assert "REDASH_SECRET_KEY" not in result["added"] and result["files"] == []


def test_an_old_release_is_not_installed_fresh(tmp_path: Path) -> None:
    with pytest.raises(Refused, match=r"8\.0\.0\.b32245 is not offered"):
        prepare_env(_ctx(tmp_path / "redash"), version="8.0.0.b32245")
    assert not (tmp_path / "redash" / "env").exists()


def test_the_cli_takes_app_anywhere_and_finds_the_app_from_its_directory(
    tmp_path: Path, cli: CliRunner
) -> None:
    directory = tmp_path / "redash"
    directory.mkdir()
    (directory / "env").write_text("REDASH_COOKIE_SECRET=x\n")
    (directory / "compose.yaml").write_text(
        "services:\n  server:\n    image: redash/redash:25.1.0\n"
    )
    for args in (
        ("status", "--json", "--data-dir", str(directory), "--runtime", "none"),
        ("--app", "redash", "status", "--json", "--data-dir", str(directory), "--runtime", "none"),
        ("status", "--json", "--data-dir", str(directory), "--runtime", "none", "--app=redash"),
    ):
        proc = cli(*args)
        assert '"app": "redash"' in proc.stdout, (args, proc.stdout, proc.stderr)
    assert get_profile("redash").recognises(directory)
    assert not get_profile("coolify-v3").recognises(directory)


def test_upgrades_cross_one_major_at_a_time_through_the_required_stops() -> None:
    profile = Redash()
    man = manifest.load(default_manifest(profile), profile)
    steps = profile.steps()
    plan = make_plan(Version("8.0.0.b32245"), Version("25.8.0"), man, steps, majors_are_apps=False)
    assert [str(s) for s in plan.stops] == ["10.1.0b50633", "25.1.0", "25.8.0"]
    ids = [p.step.id for p in plan.steps]
    assert ids == [
        "migrate-10.0.0.b50363",
        "migrate-10.1.0.b50633",
        "migrate-25.1.0",
        "migrate-25.8.0",
    ]
    # 10.1's migrations include 10.0's: that step leaves them to it
    assert _superseded("10.0.0.b50363", ids) == "10.1.0.b50633"
    assert _superseded("10.1.0.b50633", ids) is None
    # a manifest without a stop in 10.x would skip a major: refused
    raw = man.raw.decode().replace('"required_stop": true', '"required_stop": false')
    loose = manifest.parse(raw.encode(), profile)
    with pytest.raises(Refused, match="would skip major version 10"):
        make_plan(Version("8.0.0.b32245"), Version("25.8.0"), loose, steps, majors_are_apps=False)


def test_the_published_default_and_a_shared_key_are_weak_on_their_face() -> None:
    from coolify_migrate.secrets.key_form import key_form

    profile = Redash()
    published = key_form(Secret("c292a0a3aa32397cdb050e233733900f"), profile)
    assert published.compromised and any("published" in r for r in published.reasons)
    assert key_form(Secret(""), profile).reasons[0] == "the key is empty"
    assert any("characters" in r for r in key_form(Secret("short"), profile).reasons)
    strong = key_form(Secret("Xr2bQk9LmW4pZt7vNc3sHy6dJf8gAe5u"), profile)
    assert not strong.reasons
