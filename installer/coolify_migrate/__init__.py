"""coolify-migrate: install and upgrade self-hosted, Docker-packaged apps without losing data.

The package is a library; ``coolify_migrate.cli`` is a thin typer front end over it.
"""

__version__ = "0.1.0"
