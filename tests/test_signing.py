"""Signed manifests: tampered, unsigned, expired and replayed-older manifests are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from coolify_migrate.apps import get_profile
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config import signing
from coolify_migrate.config.manifest import load
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ManifestError
from support import REPO, CliRunner


def write_manifest(path: Path, version: int, expires: str = "2099-01-01T00:00:00Z") -> Path:
    doc = json.loads((REPO / "versions.json").read_text())
    doc["manifest_version"] = version
    doc["expires"] = expires
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / "signing.pem", tmp_path / "signing.pub"
    signing.generate_keypair(priv, pub)
    return priv, pub


def test_signed_manifest_verifies_and_tampering_is_caught(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    priv, pub = keys
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "inst")
    man_path = write_manifest(tmp_path / "versions.json", 5)
    signing.sign_file(man_path, priv)
    assert signing.check(ctx, load(str(man_path), ctx.profile), trusted_key=pub) is True

    # the attack that matters: drop the required stop so an upgrade skips the key roll
    text = man_path.read_text()
    assert '"required_stop": true' in text
    man_path.write_text(text.replace('"required_stop": true', '"required_stop": false'))
    with pytest.raises(ManifestError, match="does not verify"):
        signing.check(ctx, load(str(man_path), ctx.profile), trusted_key=pub)
    # a tampered file that no longer even parses is refused for its signature first
    man_path.write_text("{not json")
    with pytest.raises(ManifestError, match="does not verify"):
        signing.load_verified(ctx, str(man_path), ctx.profile, trusted_key=pub)


def test_unsigned_and_expired_manifests_are_refused(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    priv, pub = keys
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "inst")
    unsigned = write_manifest(tmp_path / "unsigned.json", 3)
    with pytest.raises(ManifestError, match="not signed"):
        signing.check(ctx, load(str(unsigned), ctx.profile), trusted_key=pub)
    expired = write_manifest(tmp_path / "expired.json", 3, expires="2020-01-01T00:00:00Z")
    signing.sign_file(expired, priv)
    with pytest.raises(ManifestError, match="expired"):
        signing.check(ctx, load(str(expired), ctx.profile), trusted_key=pub)


def test_no_pinned_key_means_no_signature_needed(tmp_path: Path) -> None:
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "inst")
    assert (
        signing.check(ctx, load(str(REPO / "versions.json"), get_profile()), trusted_key=None)
        is False
    )


def test_older_manifest_after_a_newer_one_is_refused_by_the_cli(
    tmp_path: Path, keys: tuple[Path, Path], cli: CliRunner
) -> None:
    priv, pub = keys
    newer = (
        write_manifest(tmp_path / "new" / "versions.json", 7)
        if (tmp_path / "new").mkdir() is None
        else None
    )
    older = (
        write_manifest(tmp_path / "old" / "versions.json", 6)
        if (tmp_path / "old").mkdir() is None
        else None
    )
    assert newer and older
    for m in (newer, older):
        r = cli("manifest", "sign", str(m), "--key", str(priv))
        assert r.returncode == 0, r.stderr
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "inst")
    signing.record_seen(ctx, load(str(newer), ctx.profile))  # what a successful upgrade records
    with pytest.raises(ManifestError, match="older than 7"):
        signing.check(ctx, load(str(older), ctx.profile), trusted_key=pub)
    # the same refusal through the CLI: one line, exit 3, and a pinned key in the state dir works
    shutil.copy(pub, ctx.state_dir / signing.TRUSTED_KEY_FILE)
    (tmp_path / "inst" / ".env").write_text("TAG=3.12.32\nCOOLIFY_SECRET_KEY=abc\n")
    r = cli(
        "plan", "--data-dir", str(tmp_path / "inst"), "--manifest", str(older), "--runtime", "none"
    )
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and "older than 7" in r.stderr
    r = cli(
        "plan", "--data-dir", str(tmp_path / "inst"), "--manifest", str(newer), "--runtime", "none"
    )
    assert r.returncode == 0, r.stderr
