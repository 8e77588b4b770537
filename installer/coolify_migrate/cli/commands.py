"""Imports every command module so each registers its commands on the apps."""

from coolify_migrate.cli import (  # noqa: F401
    backup_cmds,
    core,
    engine_cmds,
    install_cmds,
    secrets_cmds,
)
