"""Taking a backup: the copy, its checks, what it is described by, and its manifest.

The copy itself is ``coolify_migrate.backups.copy`` (and the store's own snapshot); what a
backup is and how backups are listed and found is ``coolify_migrate.backups.catalog``.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coolify_migrate import __version__, instance
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.backups import identity
from coolify_migrate.backups.catalog import (
    FORMAT,
    REASONS,
    BackupInfo,
    absent_in,
    check_writable,
    free_bytes,
    from_manifest,
    known_keys,
    load_env_quietly,
    open_copy,
    space_needed,
)
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable, faults
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import (
    BackupRefused,
    DatabaseError,
    DiskFull,
    KeyProblem,
    MigrateError,
    UsageError,
)
from coolify_migrate.core.output import Null, Progress
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.secrets import verdicts
from coolify_migrate.state import made, proven
from coolify_migrate.stores import names, sqlite_swap
from coolify_migrate.stores.sqlite import SQLiteStore


def create(
    ctx: Context,
    *,
    reason: str = "manual",
    pinned: bool = False,
    version: str | None = None,
    key: Secret | None = None,
    checked: Checked | None = None,
) -> BackupInfo:
    """Take a backup; the caller holds the lock. Nothing is left behind when it fails.

    ``checked`` (from ``check_before_stop``): the database's bytes passed the integrity check
    before the app stopped. While the file looks unchanged since, the copy is not checked again
    beside itself: a copy whose SHA-256 is those bytes' is those bytes, and any other copy is
    checked (on the snapshot it was copied from) before its verdict is written. A file that
    changed since is checked while it is copied, as without ``checked``."""
    if reason not in REASONS:
        raise UsageError(f"unknown backup reason {reason!r}", hint=f"one of: {', '.join(REASONS)}")
    store = ctx.store()
    if not store.exists():
        raise DatabaseError(f"no database at {store.where}")
    directory, base = store.backup_location()
    check_writable(directory, "write a backup")
    needed, free = space_needed(store), free_bytes(directory)
    if free < needed:
        raise DiskFull(
            f"not enough room for a backup in {directory}: {_mib(needed)} needed, {_mib(free)} free"
        )
    env = load_env_quietly(ctx)
    leftovers = backup_copy.remove_partials(directory, base)  # we hold the lock: all dead runs'
    if leftovers:
        ctx.out.info(f"removed {len(leftovers)} partial copies left by interrupted runs")
    ms, partial, claim = backup_copy.reserve(ctx.now_ms, directory, base)
    final: Path | None = None
    bar: Progress = Null().progress("", None)
    try:
        if checked is not None and isinstance(store, SQLiteStore) and checked.still(store):
            dumped = store.backup(partial, ctx.out, checked=checked.sha256)
        else:
            dumped = store.backup(partial, ctx.out)
        bar = ctx.out.progress("describing the backup", 3, "steps")
        verdict, digest = dumped.integrity, dumped.sha256
        if verdict != "ok":
            raise DatabaseError(
                f"the copy of {store.where} fails its integrity check: {verdict}",
                hint="the database itself may be damaged; keep it and inspect it",
            )
        faults.checkpoint("backup:copied")
        same = checked is not None and checked.sha256 == digest  # the very bytes checked
        fingerprint, key_check, key_status, version = _describe_copy(
            ctx, partial, env, key, version, checked.key if same and checked else None
        )
        bar.advance()
        absent = absent_in(ctx, partial)
        bar.advance()
        # numbered before it is named: the order of backups, and the proof it is ours
        seq = made.record(ctx, names.backup_name(base, ms))
        final = backup_copy.publish(partial, directory, base, ms)
        if final.name != names.backup_name(base, ms):
            seq = made.record(ctx, final.name)
        faults.checkpoint("backup:renamed")
        mine = identity.here(ctx, env)  # the installation's id exists once a backup is numbered
        size = final.stat().st_size
        files = _keep_files(ctx, final)
        doc = {
            "format": FORMAT,
            "name": final.name,
            "time_ms": int(final.name.rsplit("_", 1)[1]),
            "created_ms": ctx.now_ms(),
            "seq": seq,
            "reason": reason,
            "pinned": pinned,
            "app": ctx.profile.name,
            "version": version,
            "size": size,
            "sha256": digest,
            "key_fingerprint": fingerprint,
            "key_check": key_check,
            "key_status": key_status,
            "fields_absent": absent,
            "integrity": "ok",
            "source": store.where,
            "files": files,  # the app's settings beside the data: put back with them
            "image_tag": _image_tag(ctx),
            "app_facts": ctx.profile.backup_facts(ctx),
            "tool": __version__,
            identity.FIELD: mine,
        }
        seal_key = made.seal_key(ctx)
        if seal_key is not None:
            doc[identity.SEAL] = identity.seal(doc, seal_key)
        durable.write_json(
            directory / names.manifest_name(final.name), doc, checkpoint="backup:manifest"
        )
        bar.advance()
    except BaseException as err:
        backup_copy.discard(partial, final)
        if final is not None:
            for extra in directory.glob(f"{final.name}.*"):
                extra.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise DiskFull(
                f"the disk holding {directory} filled up during the backup; nothing was kept"
            ) from err
        if isinstance(err, OSError):
            raise BackupRefused(f"cannot write a backup in {directory}: {err.strerror}") from err
        raise
    finally:
        os.close(claim)
        bar.close()
    if isinstance(store, SQLiteStore):  # a key roll may make its change in it (``sqlite_swap``)
        sqlite_swap.sealed(store.path, final, digest)
    info = from_manifest(final, doc, size, [])
    info.seq, info.instance, info.sealed = seq, mine, seal_key is not None
    info.key_known = {"identified": True, "unidentified": False}.get(key_status)
    ctx.out.info(
        f"backup {info.name}: {_mib(size)}, key {fingerprint or 'unknown'}, "
        f"version {version or 'unknown'}"
    )
    return info


KeyFacts = tuple[str | None, str | None, str]  # key fingerprint, key check, key status


@dataclass(frozen=True)
class Checked:
    """Bytes of the database that passed ``quick_check``: their SHA-256, and the file's identity
    (``state.proven.identity``: size, time, inode, SQLite's change counter, the WAL) then."""

    sha256: str
    file: dict[str, Any] | None
    key: KeyFacts | None = None  # identified on the same snapshot, when it could be

    def still(self, store: SQLiteStore) -> bool:
        """Does the file look as it did? Only a guess of whether the copy will be those bytes
        (the copy's SHA-256 decides): a file that changed is better checked while copied."""
        return self.file is not None and proven.identity(store.path) == self.file


def check_before_stop(ctx: Context) -> Checked | None:
    """The integrity check of the database, taken off the downtime: run while the app still
    runs (one read snapshot), it returns the SHA-256 of the bytes it passed, for ``create`` to
    recognise them in the copy taken once the app has stopped. A database that fails it is
    refused here (``DatabaseError``), before anything is stopped or changed. None when there is
    nothing to check this way (no database, a database server, a WAL file whose last frames are
    not in it yet): ``create`` then checks its copy as it takes it."""
    store = ctx.store()
    if not isinstance(store, SQLiteStore) or not store.exists():
        return None
    env = load_env_quietly(ctx)
    facts: list[KeyFacts] = []

    def identify(conn: Connection) -> None:
        with suppress(MigrateError):  # the copy's own description will say what is wrong
            facts.append(_key_facts(ctx, conn, env))

    before = proven.identity(store.path)
    found = store.check_in_place(identify)
    if found is None:
        return None
    verdict, digest = found
    if verdict != "ok":
        raise DatabaseError(
            f"{store.where} fails its integrity check: {verdict}",
            hint="the database itself may be damaged; keep it and inspect it",
        )
    after = proven.identity(store.path)  # a write during the check: no identity to trust
    return Checked(digest, after if after == before else None, facts[0] if facts else None)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _keep_files(ctx: Context, final: Path) -> dict[str, str]:
    """Copies (0600) of the files the app's data need beside them (Redash: its env file and
    Compose file), named ``<backup>.<file>``; returns file name -> copy name."""
    kept: dict[str, str] = {}
    for path in ctx.profile.backup_files(ctx):
        if not path.is_file():
            continue
        copy = final.with_name(f"{final.name}.{path.name}")
        durable.write_atomic(copy, path.read_bytes(), mode=0o600)
        kept[path.name] = copy.name
    return kept


def _image_tag(ctx: Context) -> str | None:
    try:
        return ctx.runtime().current_image_tag()
    except MigrateError:
        return None


def _key_facts(ctx: Context, conn: Connection, env: EnvFile | None) -> KeyFacts:
    """The key the data ``conn`` reads are under; ``KeyProblem`` when none known is."""
    verdict = verdicts.identify(ctx, conn, known_keys(ctx, env))
    if verdict.method == "no-data":
        return None, None, "no encrypted data"
    if verdict.key is None:
        return None, None, "unidentified"
    return verdict.key.fingerprint, verdict.key.check_value, "identified"


def _describe_copy(
    ctx: Context,
    partial: Path,
    env: EnvFile | None,
    key: Secret | None,
    version: str | None,
    known: KeyFacts | None = None,
) -> tuple[str | None, str | None, str, str | None]:
    """(key fingerprint, key check, key status, version) of a copy: the caller's, ``known``
    (identified on bytes the copy is proven to be) or found in it.

    The key status is "identified", "no encrypted data" or "unidentified".
    """
    conn = open_copy(ctx, partial)
    try:
        meta = conn.read_meta()
        if version is None:
            found = instance.installed_version(ctx, env, meta)
            version = str(found.version) if found.version else None
            if version is None:
                ctx.out.warn("the installed version is unknown: the backup records none")
        if key is None:
            try:
                return (*(known or _key_facts(ctx, conn, env)), version)
            except KeyProblem as err:
                ctx.out.warn(f"the backup's key could not be identified ({err.message})")
                recorded = meta.get("key_check")
                return (recorded[:16] if recorded else None), recorded, "unidentified", version
    finally:
        conn.close()
    return key.fingerprint, key.check_value, "identified", version


# -- describe and list ---------------------------------------------------------------------------
