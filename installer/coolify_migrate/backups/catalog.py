"""Backups of the app's database you can trust: what one is, and listing, finding, verifying
and pruning them (taking one is ``coolify_migrate.backups.making``).

A backup is ``<db>_<epoch-ms>`` beside the database (the name Coolify's docs tell users to look
for), mode 0600, made in one consistent step (``coolify_migrate.backups.copy``), checked, fsynced and
only then given its name. Its manifest ``<db>_<epoch-ms>.json`` is written last, durably: it is
the commit marker, and it names the key the backup's encrypted values need (fingerprint and
key-check HMAC, never the key), the app version, the size and the SHA-256, the instance it belongs
to and its place in the order the tool made backups (``state.made``); it is sealed
(``backups.identity``).

Backups Coolify made itself (``<db>_<ms>``, ``<db>_<version>_<ms>``) and the docs' manual copies
(``<db>_<YYYYmmddHHMMSS>``) have no manifest: their key is found by trying the keys this instance
knows (``coolify_migrate.secrets.verdicts.identify``). Listing and verifying never write anything.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coolify_migrate import instance
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.backups import identity
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import (
    BackupRefused,
    DatabaseError,
    EnvFileError,
    KeyProblem,
)
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection, Store
from coolify_migrate.secrets import keys, verdicts
from coolify_migrate.state import made
from coolify_migrate.state.keyring import Keyring
from coolify_migrate.stores import names

REASONS = names.REASONS
FORMAT = "coolify-migrate-backup/1"
KIND_BY_SHAPE = {"ms": "coolify", "versioned": "coolify-versioned", "manual": "manual-copy"}
OURS = "coolify-migrate"
SLACK = 1 << 20  # room kept free beyond the copy itself


@dataclass
class BackupInfo:
    name: str
    path: Path
    kind: str  # "coolify-migrate" | "coolify" | "coolify-versioned" | "manual-copy"
    time_ms: int
    reason: str | None = None
    version: str | None = None
    size: int = 0
    sha256: str | None = None
    key_fingerprint: str | None = None
    pinned: bool = False
    has_manifest: bool = False
    key_known: bool | None = None
    verified: bool | None = None
    key_check: str | None = None  # full HMAC of the key (public); from the manifest or the data
    manifest_error: str | None = None
    fields_absent: list[str] | None = None  # declared encrypted fields this copy does not have
    files: dict[str, str] | None = None  # the app's settings files kept with it: name -> copy
    image_tag: str | None = None  # the app's image tag when it was taken
    seq: int | None = None  # its place in the order the tool made backups (``state.made``)
    note: str | None = None  # what else the listing should say about it
    instance: dict[str, Any] | None = None  # the instance its manifest says it belongs to
    foreign: str | None = None  # why it belongs to another instance (``backups.identity``)
    sealed: bool = False  # its manifest is this installation's, unchanged since written

    @property
    def time_iso(self) -> str:
        when = datetime.fromtimestamp(self.time_ms / 1000, tz=UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "time_ms": self.time_ms,
            "time": self.time_iso,
            "reason": self.reason,
            "version": self.version,
            "size": self.size,
            "sha256": self.sha256,
            "key_fingerprint": self.key_fingerprint,
            "key_known": self.key_known,
            "pinned": self.pinned,
            "has_manifest": self.has_manifest,
            "verified": self.verified,
            "manifest_error": self.manifest_error,
            "fields_absent": self.fields_absent,
            "files": self.files,
            "image_tag": self.image_tag,
            "seq": self.seq,
            "note": self.note,
            "instance": self.instance,
            "foreign": self.foreign,
            "sealed": self.sealed,
        }


# -- where backups live, and what this instance knows --------------------------------------------


def backup_dir(ctx: Context) -> Path:
    """Where the store keeps backups (beside an SQLite file; a directory for a server)."""
    return ctx.store().backup_location()[0]


def db_name(ctx: Context) -> str:
    """The base of backup names (``prod.db`` -> ``prod.db_<ms>``)."""
    return ctx.store().backup_location()[1]


def free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def space_needed(store: Store) -> int:
    """The data (with SQLite's WAL), 10% headroom and 1 MiB: what a consistent copy may take."""
    total = store.size()
    return total + total // 10 + SLACK


def check_writable(directory: Path, what: str) -> None:
    if not os.access(directory, os.W_OK):
        reason = "read-only file system" if _read_only_fs(directory) else "permission denied"
        raise BackupRefused(
            f"cannot {what} in {directory}: {reason}",
            hint="run as the user that owns the database, on a writable mount",
        )


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def load_env_quietly(ctx: Context) -> EnvFile | None:
    try:
        return instance.load_env(ctx)
    except EnvFileError as err:
        ctx.out.warn(f"{err.message}: key fingerprints of backups cannot be checked")
        return None


def known_keys(ctx: Context, env: EnvFile | None) -> list[KeyCandidate]:
    """Every key this instance knows: the .env's, then the keyring's."""
    try:
        if env is not None:
            return keys.candidates(ctx, env)
        return [KeyCandidate(f"keyring ({e.status})", e.key) for e in Keyring(ctx).entries]
    except EnvFileError as err:
        ctx.out.warn(err.message)
        return []


def key_for(
    cands: list[KeyCandidate], key_check: str | None, fingerprint: str | None
) -> Secret | None:
    for c in cands:
        if key_check and c.key.check_value == key_check:
            return c.key
        if not key_check and fingerprint and c.key.fingerprint == fingerprint:
            return c.key
    return None


# -- create --------------------------------------------------------------------------------------


def open_copy(ctx: Context, partial: Path) -> Connection:
    """The copy just made, read back; a server's dump is described from the live database it
    was just taken from (the app is stopped by then)."""
    store = ctx.store()
    return store.snapshot(partial) if store.path is not None else store.connect(readonly=True)


def _read_manifest(path: Path, name: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, "the manifest is not a regular file"
    try:
        doc = durable.read_json(path)
    except (OSError, ValueError) as err:
        return None, f"the manifest is unreadable ({type(err).__name__})"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("name") != name:
        return None, "the manifest is not this backup's"
    sha, size = doc.get("sha256"), doc.get("size")
    if not (isinstance(sha, str) and len(sha) == 64 and isinstance(size, int)):
        return None, "the manifest has no valid size and SHA-256"
    return doc, None


def _known(
    cands: list[KeyCandidate], key_check: str | None, fingerprint: str | None
) -> bool | None:
    if not key_check and not fingerprint:
        return None
    return key_for(cands, key_check, fingerprint) is not None


def from_manifest(
    path: Path, doc: dict[str, Any], size: int, cands: list[KeyCandidate]
) -> BackupInfo:
    info = BackupInfo(
        name=path.name,
        path=path,
        kind=OURS,
        time_ms=int(doc.get("time_ms") or 0),
        reason=doc.get("reason"),
        version=doc.get("version"),
        size=size,
        sha256=doc["sha256"],
        key_fingerprint=doc.get("key_fingerprint"),
        pinned=bool(doc.get("pinned")),
        has_manifest=True,
        key_check=doc.get("key_check"),
    )
    absent = doc.get("fields_absent")
    info.fields_absent = [str(a) for a in absent] if isinstance(absent, list) else None
    files = doc.get("files")
    if isinstance(files, dict):
        info.files = {str(k): str(v) for k, v in files.items() if "/" not in str(v)}
    info.image_tag = doc.get("image_tag") if isinstance(doc.get("image_tag"), str) else None
    info.key_known = _known(cands, info.key_check, info.key_fingerprint)
    if doc.get("key_status") == "unidentified" and not info.key_known:
        info.key_known = False
    # cheap evidence only: the copy passed its check when made and still has its size
    info.verified = doc.get("integrity") == "ok" and size == doc["size"]
    return info


@dataclass
class Known:
    """What describing backups needs to know about this instance, read once per command."""

    cands: list[KeyCandidate]  # every key it knows
    order: dict[str, int]  # the order the tool made its backups in (``state.made``)
    mine: dict[str, str]  # its identity (``backups.identity.here``)
    seal_key: bytes | None


def known(ctx: Context) -> Known:
    env = load_env_quietly(ctx)
    return Known(known_keys(ctx, env), made.order(ctx), identity.here(ctx, env), made.seal_key(ctx))


def describe(ctx: Context, path: Path, parsed: names.ParsedName, here: Known) -> BackupInfo:
    """What the backup file ``path`` is (read-only)."""
    cands, seq = here.cands, here.order.get(path.name)
    size = os.lstat(path).st_size
    doc, problem = _read_manifest(path.with_name(names.manifest_name(path.name)), path.name)
    if doc is not None and parsed.shape == "ms":
        info = from_manifest(path, doc, size, cands)
        info.seq = seq
        found = identity.judge(doc, here.mine, here.seal_key)
        recorded = doc.get(identity.FIELD)
        info.instance = recorded if isinstance(recorded, dict) else None
        info.sealed, info.foreign, info.note = found.sealed, found.foreign, found.note
        if found.error is not None:
            info.manifest_error, info.verified = found.error, False
        return info
    info = BackupInfo(
        name=path.name,
        path=path,
        kind=KIND_BY_SHAPE[parsed.shape],
        time_ms=parsed.time_ms,
        version=parsed.version,
        size=size,
        seq=seq,
    )
    if seq is not None and problem is None:
        info.kind = OURS  # recorded before it was named: a run stopped before its manifest
        info.note = "made by coolify-migrate; its run stopped before the manifest was written"
    if problem is not None and parsed.shape == "ms":
        info.kind, info.has_manifest, info.manifest_error, info.verified = (
            OURS,
            True,
            problem,
            False,
        )
    try:
        conn = ctx.store().snapshot(path)
    except DatabaseError:
        info.verified = False
        return info
    try:
        meta = conn.read_meta()
        info.version = meta.get("version") or info.version
        info.fields_absent = _absent(ctx, conn)
        try:
            verdict = verdicts.identify(ctx, conn, cands)
            if verdict.key is not None and verdict.method != "no-data":
                info.key_fingerprint, info.key_check = (
                    verdict.key.fingerprint,
                    verdict.key.check_value,
                )
                info.key_known = True
        except KeyProblem:
            info.key_check = meta.get("key_check")
            info.key_fingerprint = info.key_check[:16] if info.key_check else None
            info.key_known = False
    except DatabaseError:
        info.verified = False
    finally:
        conn.close()
    return info


def _absent(ctx: Context, conn: Connection) -> list[str]:
    return [c.label for c in conn.fields(ctx.profile.encrypted_columns).absent]


def absent_in(ctx: Context, path: Path) -> list[str]:
    conn = open_copy(ctx, path)
    try:
        return _absent(ctx, conn)
    finally:
        conn.close()


def list_backups(ctx: Context) -> list[BackupInfo]:
    """Every backup beside the database, newest first. Read-only: never writes anything."""
    directory = backup_dir(ctx)
    if not directory.is_dir():
        return []
    base = db_name(ctx)
    here = known(ctx)
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            parsed = names.parse(base, entry.name)
            if parsed is None:
                continue
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                ctx.out.warn(f"ignored {entry.name}: not a regular file (a backup is never a link)")
                continue
            found.append(describe(ctx, directory / entry.name, parsed, here))
    return newest_first(found)


def newest_first(found: list[BackupInfo]) -> list[BackupInfo]:
    """By the time in their names, except that the tool's own backups, wherever they fall,
    follow the order it made them in (a clock set back must not make an older one "newest")."""
    ordered = sorted(found, key=lambda b: (b.time_ms, b.name), reverse=True)
    slots = [i for i, b in enumerate(ordered) if b.seq is not None]
    by_seq = sorted((ordered[i] for i in slots), key=lambda b: b.seq or 0, reverse=True)
    for i, b in zip(slots, by_seq, strict=True):
        ordered[i] = b
    return ordered


def find(ctx: Context, name: str) -> BackupInfo:
    """The backup called ``name`` beside the database; anything else is refused (exit 3)."""
    directory = backup_dir(ctx)
    parsed = names.check_name(db_name(ctx), name)
    path = directory / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BackupRefused(f"no backup named {name} in {directory}") from None
    if stat.S_ISLNK(st.st_mode):
        raise BackupRefused(
            f"{name} is a symlink, not a backup: refusing to follow it",
            hint=f"remove the link from {directory}; backups are regular files",
        )
    if not stat.S_ISREG(st.st_mode):
        raise BackupRefused(f"{name} is not a regular file")
    return describe(ctx, path, parsed, known(ctx))


# -- verify --------------------------------------------------------------------------------------


def check(info: BackupInfo, *, full: bool = False, ctx: Context | None = None) -> dict[str, Any]:
    """One backup's integrity and checksum (read-only)."""
    return backup_copy.check(info, full=full, store=ctx.store() if ctx is not None else None)


def verify(ctx: Context, name: str | None = None, *, full: bool = False) -> list[dict[str, Any]]:
    """Check one backup (by name) or all of them. Read-only."""
    infos = [find(ctx, name)] if name is not None else list_backups(ctx)
    bar = ctx.out.progress("verifying backups", sum(i.size for i in infos), "bytes")
    results = []
    try:
        for info in infos:
            results.append(check(info, full=full, ctx=ctx))
            bar.advance(info.size)
    finally:
        bar.close()
    return results


# -- prune ---------------------------------------------------------------------------------------


def prune(
    ctx: Context, *, keep: int, force: bool, confirm: Callable[[list[BackupInfo]], bool]
) -> dict[str, Any]:
    """Delete all but the ``keep`` newest backups, minus the protected ones (unless ``force``).

    The rules are in ``coolify_migrate.backups.prune``; ``confirm`` sees the list before anything goes.
    """
    from coolify_migrate.backups import pruning

    return pruning.prune(ctx, keep=keep, force=force, confirm=confirm)
