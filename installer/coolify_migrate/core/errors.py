"""One exception root, its structured subclasses, and the exit codes they map to.

Every error carries a one-line ``message`` and a ``hint`` (what to do about it). The CLI maps
an error to its exit code in exactly one place (``coolify_migrate.cli``). Third-party exceptions are
translated where they enter the library (``raise SomeError(...) from err``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    REFUSED = 3  # refused before any change: a precondition failed or the input is bad
    LOCKED = 4  # another run holds the lock
    FAILED = 5  # a change failed verification, or failed and was rolled back
    WEAK_KEY = 6  # 'secrets audit' only: the data key is weak (proven date-seeded or too weak)
    PARTIAL = 7  # 'secrets repair' only: done, but some values could not be proven (named, kept)


class MigrateError(Exception):
    """Root of every error the library raises on purpose."""

    exit_code: ExitCode = ExitCode.UNEXPECTED
    default_hint = "run again with --debug and report the traceback"

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message.splitlines()[0] if message else type(self).__name__
        self.hint = hint or self.default_hint
        self.fields = fields

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": int(self.exit_code),
            **{k: v for k, v in self.fields.items() if isinstance(v, str | int | float | bool)},
        }


class UsageError(MigrateError):
    exit_code = ExitCode.USAGE
    default_hint = "see --help"


class Refused(MigrateError):
    """A guard clause said no. Nothing was changed."""

    exit_code = ExitCode.REFUSED
    default_hint = "fix the cause above and run the command again"


class EnvFileError(Refused):
    default_hint = "check the .env file named above"


class ManifestError(Refused):
    default_hint = "check versions.json (schema: docs/architecture.md#versionsjson)"


class DatabaseError(Refused):
    default_hint = "check --db / --data-dir point at the app's SQLite database"


class DatabaseBusy(Refused):
    """Another process holds the database locked past the bounded wait."""

    default_hint = "stop the process named above (or the app) and run the command again"


class StorageProblem(Refused):
    """The file system said no (permission, read-only, immutable, a file where a directory
    belongs): structured at the edge so no OSError ends as exit 1."""

    default_hint = "fix the file or directory named above and run the command again"


class KeyProblem(Refused):
    """The data key is missing, wrong, ambiguous or unknown."""

    default_hint = "run 'coolify-migrate secrets audit' to see which key decrypts the data"


class BackupRefused(Refused):
    default_hint = "run 'coolify-migrate backup list' to see the backups of this instance"


class DiskFull(Refused):
    default_hint = "free some disk space next to the database and run the command again"


class LockHeld(MigrateError):
    exit_code = ExitCode.LOCKED
    default_hint = "wait for the other run to finish; 'coolify-migrate status' shows it"


class ChangeFailed(MigrateError):
    """A change failed verification, or failed and was rolled back."""

    exit_code = ExitCode.FAILED
    default_hint = "see the log named above; 'coolify-migrate status' shows the instance state"


class RuntimeProblem(Refused):
    default_hint = "check that the Docker engine is running and DOCKER_HOST points at it"


def from_os_error(err: OSError) -> MigrateError:
    """An ``OSError`` no guard caught, as a structured refusal naming the file and the cause
    (ENOSPC is a full disk; EACCES, EPERM, EROFS, EISDIR, EEXIST, ENOTDIR... a file problem)."""
    import errno

    cause = err.strerror or type(err).__name__
    if err.errno == errno.ENOSPC:
        return DiskFull(
            f"the disk is full: {cause}" + (f" ({err.filename})" if err.filename else "")
        )
    hints = {
        errno.EACCES: "run as the user that owns the install directory",
        errno.EPERM: "check the file's attributes ('lsattr'; chattr -i) and its owner",
        errno.EROFS: "remount the file system read-write",
        errno.EISDIR: "a directory is where the tool expects a file: move it away",
        errno.EEXIST: "a file is where the tool expects a directory: move it away",
        errno.ENOTDIR: "a file is where the tool expects a directory: move it away",
    }
    what = f"cannot use {err.filename}: {cause}" if err.filename else cause
    return StorageProblem(what, hint=hints.get(err.errno or 0))
