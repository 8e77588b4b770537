"""Backups of the app's database: create, list, verify, prune, restore, roll back.

The catalog (``catalog``) and the taking of a backup (``making``) are re-exported here, so
``from coolify_migrate import backups`` gives ``backups.create``, ``backups.list_backups``,
``backups.find`` and the rest.
"""

from coolify_migrate.backups.catalog import (
    FORMAT,
    KIND_BY_SHAPE,
    OURS,
    REASONS,
    SLACK,
    BackupInfo,
    backup_dir,
    check,
    check_writable,
    db_name,
    describe,
    find,
    free_bytes,
    key_for,
    known_keys,
    list_backups,
    load_env_quietly,
    prune,
    space_needed,
    verify,
)
from coolify_migrate.backups.making import Checked, check_before_stop, create

__all__ = [
    "FORMAT",
    "KIND_BY_SHAPE",
    "OURS",
    "REASONS",
    "SLACK",
    "BackupInfo",
    "Checked",
    "backup_dir",
    "check",
    "check_before_stop",
    "check_writable",
    "create",
    "db_name",
    "describe",
    "find",
    "free_bytes",
    "key_for",
    "known_keys",
    "list_backups",
    "load_env_quietly",
    "prune",
    "space_needed",
    "verify",
]
