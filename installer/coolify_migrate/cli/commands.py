"""Imports every command module, so that each registers its commands on the typer apps (the
command line itself imports only the module of the command it runs: ``cli.tree``)."""

from coolify_migrate.cli import tree

tree.declare_all()
