"""Coolify v3: its keys, its 59 encrypted fields, its images and container, its migration steps,
its real schema and a demo instance shaped like it (see ``profile``)."""
