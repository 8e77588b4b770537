"""Imports every command module so each registers its commands on the apps."""

from installer.cli import backup_cmds, core, engine_cmds, install_cmds, secrets_cmds  # noqa: F401
