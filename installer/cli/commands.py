"""Imports every command module so each registers its commands on the apps."""

from installer.cli import core  # noqa: F401
