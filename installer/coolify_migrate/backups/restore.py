"""The mechanics of putting a backup back: ``Restoration`` (prepare, apply, fail, commit).

Before any change (exit 3 when one fails, nothing touched): the name is a backup of this instance,
the backup verifies (integrity, and size plus SHA-256 against its sealed manifest), it belongs to
this instance (another's only with ``force``), a manifest that is not sealed here agrees with the
record inside the file (``coolify_migrate.backups.identity``), the key it needs is
one this instance still knows (the ``.env`` or the keyring; refused naming the fingerprint
otherwise), and there is room for a safety copy and the restored file.

Then, in order: a safety backup of the current database (reason ``pre-restore``); every key the
``.env`` names is kept in the keyring; the current database and its ``-wal``/``-shm`` are set aside
(hard link and rename, so putting them back is exact); the backup is copied in and atomically
replaces the database; every encrypted value must decrypt under the key; the ``.env`` gets that key
as the active one and the backup's version as ``TAG``; the keyring marks the key active. Any
failure puts the database, ``.env`` and keyring back byte for byte and raises ``ChangeFailed``.

On a database server (PostgreSQL) the same steps hold with the server's own means: the safety
backup is a dump; the backup loads into a fresh database that replaces the live one by name only
once it loaded cleanly (``Store.restore``); undoing loads the safety dump back the same way.

An app whose backups keep its settings files (Redash: ``env`` and the Compose file, with the image
tags) gets them back from the backup's copies: the settings file the backup holds is the base the
key state is checked against, and every other kept file is written back as it was. The files'
previous bytes are kept in memory and written back by ``fail``.

The restored database is the backup file byte for byte: the tool record inside it is only
rewritten when it contradicts the backup (a version or key-check that is not the backup's), and the
``.env`` is only rewritten where it differs, so a rollback to a pre-upgrade backup gives back the
exact files the upgrade started from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coolify_migrate import backups, instance
from coolify_migrate.backups import BackupInfo
from coolify_migrate.backups import copy as backup_copy
from coolify_migrate.backups import restore_checks as checks
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core import durable, faults, private
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import (
    BackupRefused,
    ChangeFailed,
    DatabaseError,
    DiskFull,
    MigrateError,
)
from coolify_migrate.core.interrupts import Interrupted
from coolify_migrate.core.secret import Secret
from coolify_migrate.secrets import keys, verdicts
from coolify_migrate.state import journal, made
from coolify_migrate.state.keyring import Keyring
from coolify_migrate.stores import names, sqlite_copy
from coolify_migrate.stores.sqlite import SQLiteStore


class Restoration:
    """One restore: ``prepare`` (guards only), ``apply`` (changes), ``fail`` (undo), ``commit``."""

    def __init__(
        self,
        ctx: Context,
        info: BackupInfo,
        *,
        journal_doc: dict[str, Any] | None = None,
        force: bool = False,
    ):
        self.ctx, self.info, self.journal_doc = ctx, info, journal_doc
        self.force = force  # restore a backup of another instance
        self.store = ctx.store()
        # a file store's database path; None for a database server (restored by name)
        self.db_path: Path | None = (
            instance.database_path(ctx) if self.store.path is not None else None
        )
        self.directory = self.db_path.parent if self.db_path is not None else info.path.parent
        self._files_before: dict[Path, bytes | None] = {}  # settings files written back
        self.key: Secret | None = None
        self.safety: BackupInfo | None = None
        self.damaged_kept: Path | None = None
        self._env_before = b""
        self._env_base = b""
        self._ring_before: bytes | None = None
        self._ring_path = ctx.state_dir / Keyring.FILENAME
        self._set_aside: list[tuple[Path, Path]] = []  # (live path, undo path)
        self._db_replaced = self._env_written = self._ring_written = False
        self._stale_undo: list[Path] = []
        self._mode_before: int | None = None  # the live file's mode, when it had to be tightened
        self._failure: ChangeFailed | None = None
        self.undone = False  # a failure was met and everything was put back as it was
        self._touched = False
        self.counts: list[verdicts.ColumnCount] = []

    # -- guards ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        ctx, info = self.ctx, self.info
        backups.check_writable(self.directory, "restore a backup")
        # A backup a killed key roll had on loan is put back first (``stores.sqlite_swap``): a
        # repair of the backup to the bytes its manifest names, never a change of the instance.
        if isinstance(self.store, SQLiteStore):
            self.store.settle()
        verdict = backups.check(info, ctx=ctx)
        if not verdict["ok"]:
            raise BackupRefused(
                f"backup {info.name} failed verification: {verdict['problems'][0]}",
                hint="restore another backup; 'backup verify' checks them all",
            )
        checks.origin(ctx, self.store, info, file=self.db_path is not None, force=self.force)
        if self.db_path is not None:  # a server swaps by name in one step: nothing is set aside
            self._stale_undo = checks.leftovers(self.directory, self.db_path, self.journal_doc)
        env = instance.load_env(ctx)
        self._env_before = ctx.env_path.read_bytes()
        self._env_base = checks.env_snapshot(ctx, info, self.journal_doc) or self._env_before
        ring = Keyring(ctx)  # unreadable keyring: refused here, before any change
        self._ring_before = private.read_bytes(ring.path) if ctx.has_state_dir() else None
        self.key = checks.needed_key(ctx, info, env, file=self.db_path is not None)
        needed = backups.SLACK + (info.size if self.db_path is not None else 0)
        if self.store.exists():
            needed += backups.space_needed(self.store)
        free = backups.free_bytes(self.directory)
        if free < needed:
            raise DiskFull(
                f"not enough room to restore {info.name} in {self.directory}: "
                f"{needed >> 20} MiB needed (safety copy and restored file), {free >> 20} MiB free"
            )

    # -- changes ---------------------------------------------------------------------------------

    def _advance(self, phase: str, **data: Any) -> None:
        if self.journal_doc is not None:
            journal.advance(self.ctx, self.journal_doc, phase, **data)

    def apply(self) -> None:
        assert self.key is not None, "prepare() first"
        self._take_safety_backup()  # fails without leaving anything behind: not a change yet
        self._touched = True
        try:
            self._keep_env_keys()
            self._swap_database()
            self._verify_values()
            self._fix_record()
            self._write_env()
            self._put_files_back()
            Keyring(self.ctx).set_active(self.key, checkpoint="restore:keyring")
            self._ring_written = True
            self._check_active_key()
            self._advance("restore:done")
        except BaseException as err:
            failure = self.fail(err)
            if self.stopped_in_order(err):
                raise  # the signal's exit code and state line
            raise failure from err

    def _take_safety_backup(self) -> None:
        if not self.store.exists():
            self.ctx.out.warn(
                f"no database at {self.store.where}: nothing to keep a safety copy of"
            )
        else:
            try:
                self.safety = backups.create(self.ctx, reason="pre-restore")
            except DatabaseError as err:  # the live database is damaged: keep the file instead
                if self.db_path is None:
                    raise  # a server's database cannot be kept aside as a file
                self.ctx.out.warn(
                    f"no safety backup ({err.message}); the current file will be kept aside"
                )
                self.damaged_kept = self.db_path.with_name(
                    f"{self.db_path.name}.damaged-{self.ctx.now_ms()}"
                )
        for stale in self._stale_undo:  # superseded: the interrupted run's safety backup holds them
            stale.unlink()
        self._advance("restore:safety-backup", safety=self.safety.name if self.safety else None)

    def _keep_env_keys(self) -> None:
        ring = Keyring(self.ctx)
        env = EnvFile(self.ctx.env_path, self._env_before.decode("utf-8"))
        for cand in self.ctx.profile.key_candidates(env):
            if ring.find(cand.key.fingerprint) is None:
                ring.remember(
                    cand.key, status="retired", source=f".env {cand.source} (before restore)"
                )
                self._ring_written = True

    def _swap_database(self) -> None:
        if self.db_path is None:
            self._db_replaced = True  # (a failure inside leaves the live database untouched)
            self.store.restore(self.info.path)
            faults.checkpoint("restore:db")
            self._advance("restore:db", restored=self.info.name)
            return
        db_path, info = self.db_path, self.info
        tmp = backup_copy.stage(info.path, db_path)
        for suffix in checks.COMPANIONS:  # stale -wal/-shm would be replayed into the restored file
            live = db_path.with_name(db_path.name + suffix)
            if live.exists():
                aside = self.directory / names.undo_name(live.name)
                os.replace(live, aside)
                self._set_aside.append((live, aside))
        if db_path.exists():
            # the set-aside link shares the live file's mode: owner-only before it is made
            self._mode_before = sqlite_copy.make_private(db_path)
            aside = self.directory / names.undo_name(db_path.name)
            os.link(db_path, aside)
            self._set_aside.append((db_path, aside))
        durable.fsync_dir(self.directory)
        faults.checkpoint("restore:set-aside")
        os.replace(tmp, db_path)
        self._db_replaced = True
        durable.fsync_dir(self.directory)
        faults.checkpoint("restore:db")
        self._advance("restore:db", restored=info.name)

    def _verify_values(self) -> None:
        assert self.key is not None
        conn = self.ctx.store().snapshot(self.db_path)
        try:  # every value under a proven key: the backup's own first, then every other known
            cands = keys.candidates(self.ctx, instance.load_env(self.ctx))
            others = [c for c in cands if c.key != self.key]
            mine = KeyCandidate("the backup's key", self.key)
            analysis = keys.analyse(self.ctx, conn, [mine, *others], full=True)
            self.counts = verdicts.column_counts(self.ctx, analysis, self.key)
        finally:
            conn.close()
        if analysis.unknown.count:
            raise ChangeFailed(
                f"{analysis.unknown.count} encrypted values of {self.info.name} do not decrypt "
                f"under any known key ({analysis.unknown.shown(3)})"
            )
        under = analysis.under()
        if not under.get(self.key.fingerprint) and any(under.values()):
            raise ChangeFailed(
                f"the values of {self.info.name} do not decrypt under key {self.key.fingerprint}, "
                f"which it names; they are under {', '.join(under)}"
            )

    def _fix_record(self) -> None:
        """Rewrite the tool record only where it contradicts the backup (keeps the file exact)."""
        assert self.key is not None
        conn = self.ctx.store().connect()
        try:
            meta = conn.read_meta()
            fix = self._record_fixes(meta)
            if fix:
                with conn.transaction("restore:record"):
                    conn.write_meta(**fix)
        finally:
            conn.close()

    def _record_fixes(self, meta: dict[str, str]) -> dict[str, str]:
        assert self.key is not None
        fix: dict[str, str] = {}
        if meta.get("version") and self.info.version and meta["version"] != self.info.version:
            fix["version"] = self.info.version
        if meta.get("key_check") and meta["key_check"] != self.key.check_value:
            fix["key_check"] = self.key.check_value
        return fix

    def _write_env(self) -> None:
        assert self.key is not None
        env = EnvFile(self.ctx.env_path, self._env_base.decode("utf-8"))
        changed = False
        if not self.ctx.profile.start_safe(env, self.key, self.info.version):
            # KEY = BETTER = the backup's key: the app's start must not re-encrypt anything
            self.ctx.profile.install_key_state(env, self.key)
            changed = True
        tag = self.ctx.profile.version_env_key
        if not tag:
            pass  # the app keeps no version in its settings file
        elif self.info.version and env.get(tag) != self.info.version:
            changed = env.set(tag, self.info.version) or changed
        elif not self.info.version:
            self.ctx.out.warn(f"{self.info.name} records no version: {tag} left at {env.get(tag)}")
        data = env.render().encode("utf-8") if changed else self._env_base
        if data != self._env_before:
            self._env_written = True
            durable.write_atomic(self.ctx.env_path, data, checkpoint="restore:env")

    def _put_files_back(self) -> None:
        """The app's other settings files (its Compose file: the image tags) as the backup kept
        them; the settings file itself is ``_write_env``'s."""
        for name in self.info.files or {}:
            data = checks.kept_file(self.info, name)
            target = self.ctx.data_dir / name
            if name == self.ctx.env_path.name or data is None:
                continue
            before = target.read_bytes() if target.exists() else None
            if before == data:
                continue
            self._files_before[target] = before
            durable.write_atomic(target, data, checkpoint="restore:file")

    def _check_active_key(self) -> None:
        assert self.key is not None
        env = EnvFile.load(self.ctx.env_path)
        if not self.ctx.profile.start_safe(env, self.key, self.info.version):
            raise ChangeFailed(
                "after the restore the .env does not name the backup's key as active"
            )

    # -- undo and finish -------------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        """Whether anything was changed yet (a failed safety backup leaves nothing behind)."""
        return self._touched

    def stopped_in_order(self, err: BaseException) -> bool:
        """A signal stopped the restore and ``fail`` put everything back: the caller lets the
        signal go on (exit 130/143 and its line) instead of reporting a failed change."""
        return isinstance(err, Interrupted) and self.undone

    def fail(self, err: BaseException) -> ChangeFailed:
        """Put the database, .env and keyring back exactly (idempotent); returns the error."""
        if self._failure is not None:
            return self._failure
        why = err.message if isinstance(err, MigrateError) else f"{type(err).__name__}: {err}"
        why = self.ctx.redactor.redact(why)
        try:
            self._undo()
        except Exception as undo_err:
            kept = (
                f"; the safety backup {self.safety.name} holds the previous database"
                if self.safety
                else ""
            )
            self._failure = ChangeFailed(
                f"restoring {self.info.name} failed ({why}) and putting things back failed too "
                f"({type(undo_err).__name__}: {undo_err}){kept}",
                hint="do not start the app; restore the safety backup with 'rollback --to'",
            )
            return self._failure
        self.undone = True
        self._failure = ChangeFailed(
            f"restoring {self.info.name} failed ({why}); "
            "the database, .env and keyring are as they were",
            hint="nothing was lost; 'backup list' and 'backup verify' help to pick another backup",
        )
        return self._failure

    def _undo(self) -> None:
        for target, before in self._files_before.items():
            if before is None:
                target.unlink(missing_ok=True)
            else:
                durable.write_atomic(target, before)
        self._files_before = {}
        if self.db_path is None:
            self._undo_server()
        else:
            self._undo_file(self.db_path)
        self._finish_undo()

    def _undo_file(self, db_path: Path) -> None:
        if self._db_replaced:
            for suffix in checks.COMPANIONS:
                db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        for live, aside in reversed(self._set_aside):
            os.replace(aside, live)
        if self._mode_before is not None and db_path.exists():
            os.chmod(db_path, self._mode_before)  # a failed restore changes nothing, modes too
            self._mode_before = None
        if self._db_replaced and not any(live == db_path for live, _ in self._set_aside):
            db_path.unlink(missing_ok=True)  # there was no database before
        self.directory.joinpath(f".{db_path.name}.restoring").unlink(missing_ok=True)
        durable.fsync_dir(self.directory)
        self._set_aside, self._db_replaced = [], False

    def _undo_server(self) -> None:
        if self._db_replaced and self.safety is not None:
            self.store.restore(self.safety.path)  # the database as it was, loaded back by name
        self._db_replaced = False

    def _finish_undo(self) -> None:
        if self._env_written:
            durable.write_atomic(self.ctx.env_path, self._env_before)
        if self._ring_written:
            if self._ring_before is None:
                self._ring_path.unlink(missing_ok=True)
            else:
                durable.write_atomic(self._ring_path, self._ring_before, private=True)
        if self.safety is not None:  # everything is back: the safety copy says nothing new
            self.safety.path.unlink(missing_ok=True)
            self.safety.path.with_name(names.manifest_name(self.safety.name)).unlink(
                missing_ok=True
            )
            durable.fsync_dir(self.directory)
            made.forget(self.ctx, [self.safety.name])
            self.safety = None

    def commit(self) -> dict[str, Any]:
        for live, aside in self._set_aside:
            if live == self.db_path and self.damaged_kept is not None:
                os.replace(aside, self.damaged_kept)
            else:
                aside.unlink(missing_ok=True)
        durable.fsync_dir(self.directory)
        faults.checkpoint("restore:committed")
        assert self.key is not None
        return {
            "backup": self.info.name,
            "version": self.info.version,
            "key_fingerprint": self.key.fingerprint,
            "safety_backup": self.safety.name if self.safety else None,
            "damaged_database_kept": str(self.damaged_kept) if self.damaged_kept else None,
            "values_verified": sum(c.ok for c in self.counts),
            "columns": [c.as_dict() for c in self.counts],
        }
