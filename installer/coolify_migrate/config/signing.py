"""Detached Ed25519 signatures over ``versions.json``, and the policy that enforces them.

A maintainer signs the manifest's exact bytes (``coolify-migrate manifest sign``); the signature is
base64 text in ``<manifest>.sig`` beside it (same directory or URL + ``.sig``). When the operator pins
a public key (``<state>/trusted-manifest-key.pem``, or ``--trusted-key FILE``), a manifest is used only
if its signature verifies, it has not expired, and its ``manifest_version`` is not older than the
newest one this instance has seen (``<state>/manifest-seen.json``): that refuses a replayed older
manifest (a rollback or freeze attack). Without a pinned key, manifests are read unsigned, as every
upstream ships them, but an unsigned one may not contradict the profile (``check_unsigned``).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coolify_migrate.config.manifest import Manifest, disagreements, fetch, parse
from coolify_migrate.core import bounded, durable
from coolify_migrate.core.app import Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ManifestError, UsageError

TRUSTED_KEY_FILE = "trusted-manifest-key.pem"
SEEN_FILE = "manifest-seen.json"


def generate_keypair(private_path: Path, public_path: Path) -> str:
    if private_path.exists():
        raise UsageError(f"{private_path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    durable.write_atomic(private_path, pem, mode=0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    durable.write_atomic(public_path, pub, mode=0o644)
    return str(public_path)


def sign_file(manifest_path: Path, private_key_path: Path) -> Path:
    try:
        key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot load the signing key {private_key_path}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{private_key_path} is not an Ed25519 private key")
    data = manifest_path.read_bytes()
    sig_path = manifest_path.with_name(manifest_path.name + ".sig")
    durable.write_atomic(sig_path, base64.b64encode(key.sign(data)) + b"\n", mode=0o644)
    return sig_path


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ManifestError(f"cannot load the trusted manifest key {path}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ManifestError(f"{path} is not an Ed25519 public key")
    return key


def trusted_key_path(ctx: Context, explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    pinned = ctx.state_dir / TRUSTED_KEY_FILE
    return pinned if pinned.exists() else None


def last_seen(ctx: Context) -> int | None:
    path = ctx.state_dir / SEEN_FILE
    if not path.exists():
        return None
    try:
        return int(durable.read_json(path)["manifest_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_verified(
    ctx: Context, source: str, profile: Profile, *, trusted_key: Path | None
) -> tuple[Manifest, bool]:
    """Fetch, check the signature over the raw bytes BEFORE parsing them, parse, check freshness."""
    raw = fetch(source)
    verified = verify_signature(ctx, source, raw, trusted_key=trusted_key)
    man = parse(raw, profile, source=source)
    if verified:
        check_fresh(ctx, man)
    else:
        check_unsigned(man, profile)
    return man, verified


def check_unsigned(man: Manifest, profile: Profile) -> None:
    """An unsigned manifest may add releases and notes, but not change what the profile knows for
    certain (the app's image repositories, its required stops): only a signed one may."""
    found = disagreements(man, profile)
    if found:
        raise ManifestError(
            f"the unsigned manifest {man.source} contradicts what this tool knows: {found[0]}"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
            hint="use the bundled versions.json, or sign yours and pin the key (--trusted-key)",
        )


def verify_signature(ctx: Context, source: str, raw: bytes, *, trusted_key: Path | None) -> bool:
    """False when no key is pinned; True when the detached signature verifies; else refuse."""
    key_path = trusted_key_path(ctx, trusted_key)
    if key_path is None:
        return False
    public = load_public_key(key_path)
    sig_source = source + ".sig"
    try:
        sig_text = fetch(sig_source, limit=bounded.SIGNATURE_BYTES)
    except ManifestError as err:
        raise ManifestError(
            f"{source} is not signed (no {sig_source})",
            hint="a trusted manifest key is pinned: use a signed versions.json",
        ) from err
    try:
        signature = base64.b64decode(sig_text.strip(), validate=True)
        public.verify(signature, raw)
    except (binascii.Error, ValueError, InvalidSignature) as err:
        raise ManifestError(
            f"the signature of {source} does not verify (tampered?)",
            hint="fetch versions.json and its .sig again from the publisher",
        ) from err
    return True


def check(ctx: Context, manifest: Manifest, *, trusted_key: Path | None) -> bool:
    """The whole policy for an already parsed manifest; True when it was verified. Never writes."""
    if not verify_signature(ctx, manifest.source, manifest.raw, trusted_key=trusted_key):
        return False
    check_fresh(ctx, manifest)
    return True


def check_fresh(ctx: Context, manifest: Manifest) -> None:
    if manifest.manifest_version is None:
        raise ManifestError(f"{manifest.source} is signed but has no manifest_version")
    if manifest.expires is not None and manifest.expires <= datetime.fromtimestamp(
        ctx.clock(), UTC
    ):
        raise ManifestError(
            f"{manifest.source} expired at {manifest.expires.isoformat()}",
            hint="the publisher must re-sign a fresh manifest (freeze protection)",
        )
    seen = last_seen(ctx)
    if seen is not None and manifest.manifest_version < seen:
        raise ManifestError(
            f"{manifest.source} is manifest_version {manifest.manifest_version}, older than {seen} "
            "already seen here (replay?)",
            hint="use the current versions.json from the publisher",
        )


def record_seen(ctx: Context, manifest: Manifest) -> None:
    """After a verified manifest was used for a change: remember its version (monotonic)."""
    if manifest.manifest_version is None:
        return
    seen = last_seen(ctx)
    if seen is None or manifest.manifest_version > seen:
        ctx.ensure_state_dir()
        durable.write_json(
            ctx.state_dir / SEEN_FILE, {"manifest_version": manifest.manifest_version}
        )
