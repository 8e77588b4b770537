"""Backup file names: the shapes a backup of ``prod.db`` can have, and the checks a name must pass.

Backups live beside the database, named after it (``<db>`` is the database's file name):

- ``<db>_<epoch-ms>``: this tool's backups (with a ``.json`` manifest beside them) and the ones
  Coolify v3 made itself with ``cp`` before rolling its key (no manifest). 13 digits;
- ``<db>_<version>_<epoch-ms>``: Coolify 3.12.35 and later put the version in the name;
- ``<db>_<YYYYmmddHHMMSS>``: manual copies made as Coolify's docs show (``date +%Y%m%d%H%M%S``,
  the host's local time). 14 digits, which is how they are told apart from milliseconds.

A name given on the command line must be a bare file name of one of these shapes: no directory
part, no traversal, no hidden or temporary file. Whether the file exists (and is not a symlink)
is checked by ``coolify_migrate.backups.find``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from coolify_migrate.core.errors import BackupRefused, UsageError
from coolify_migrate.core.versions import normalize

# why a backup was made (its manifest's ``reason``); ``backup create --reason`` takes the first
REASONS = ("manual", "pre-upgrade", "pre-roll", "pre-restore", "pre-start")
MS_DIGITS = 13
MANIFEST_SUFFIX = ".json"
PARTIAL_SUFFIX = ".partial"
_VERSION = r"v?\d+\.\d+\.\d+(?:[-.+][0-9A-Za-z]+)*"


@dataclass(frozen=True)
class ParsedName:
    name: str
    shape: str  # "ms", "versioned", "manual"
    time_ms: int
    version: str | None = None


def _patterns(db_name: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    base = re.escape(db_name)
    return (
        re.compile(rf"{base}_(?P<ms>\d{{{MS_DIGITS}}})"),
        re.compile(rf"{base}_(?P<version>{_VERSION})_(?P<ms>\d{{{MS_DIGITS}}})"),
        re.compile(rf"{base}_(?P<stamp>\d{{14}})"),
    )


def parse(db_name: str, name: str) -> ParsedName | None:
    """The backup a file name denotes, or None when it is not a backup's name."""
    ms_re, versioned_re, manual_re = _patterns(db_name)
    if m := ms_re.fullmatch(name):
        return ParsedName(name, "ms", int(m["ms"]))
    if m := versioned_re.fullmatch(name):
        try:
            version = normalize(m["version"])
        except UsageError:  # an unparsable version: not a name Coolify wrote
            return None
        return ParsedName(name, "versioned", int(m["ms"]), version)
    if m := manual_re.fullmatch(name):
        try:
            # the docs' copies use the host's local time; mktime reads it the same way
            when = time.strptime(m["stamp"], "%Y%m%d%H%M%S")
        except ValueError:
            return None
        return ParsedName(name, "manual", int(time.mktime(when)) * 1000)
    return None


def check_name(db_name: str, name: str) -> ParsedName:
    """Refuse (exit 3) anything but a bare backup name; nothing is read from disk here."""
    shown = name if len(name) <= 80 else name[:77] + "..."
    if not name or any(sep in name for sep in ("/", "\\", "\x00")) or name in (".", ".."):
        raise BackupRefused(
            f"{shown!r} is not a backup name: give the bare file name, without a directory",
            hint=f"backup names look like {db_name}_1700000000000; 'backup list' shows them",
        )
    parsed = parse(db_name, name)
    if parsed is None:
        raise BackupRefused(
            f"{shown!r} is not a backup name of {db_name}",
            hint=f"backup names look like {db_name}_1700000000000; 'backup list' shows them",
        )
    return parsed


def backup_name(db_name: str, ms: int) -> str:
    return f"{db_name}_{ms}"


def manifest_name(name: str) -> str:
    return name + MANIFEST_SUFFIX


def partial_name(db_name: str, ms: int) -> str:
    """Hidden while in progress, so no listing ever shows a half-written backup."""
    return f".{db_name}_{ms}{PARTIAL_SUFFIX}"


def undo_name(file_name: str) -> str:
    """Where a restore keeps the file it replaces until it has verified the result."""
    return f".{file_name}.undo"
