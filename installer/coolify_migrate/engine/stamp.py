"""``stamp VERSION``: record which version an instance really runs, when its sources disagree.

Like Alembic's ``stamp``: nothing is migrated, only the record is written: the tool's own record
in the database (which travels with every backup) and ``TAG`` in ``.env``. The version must be
one that a source already states (the running container's image tag, ``.env``, the record), or
``--force`` says the operator knows better. A version the running container contradicts needs
``--force`` too: the image is what actually runs.
"""

from __future__ import annotations

from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import Refused
from coolify_migrate.core.versions import parse_version


def stamp(ctx: Context, version: str, *, force: bool = False) -> dict[str, Any]:
    """Write ``version`` as the installed version; the caller holds the lock."""
    wanted = str(parse_version(version, what="VERSION"))
    env = instance.load_env(ctx)
    meta = instance.read_meta(ctx)
    found = instance.installed_version(ctx, env, meta)
    said = {s.name: s.version for s in found.sources if s.version}
    if not force:
        if said and wanted not in said.values():
            raise Refused(
                f"no source says the instance runs {wanted} ("
                + ", ".join(f"{k} says {v}" for k, v in said.items())
                + ")",
                hint="stamp one of those, or pass --force if you know the version better",
            )
        running = said.get("container")
        if running is not None and running != wanted:
            raise Refused(
                f"the running container's image is {running}, not {wanted}",
                hint=f"stamp {running}, or pass --force",
            )
    store = ctx.store()
    if store.exists():
        conn = store.connect()
        try:
            with conn.transaction("stamp"):
                conn.write_meta(version=wanted)
        finally:
            conn.close()
    key = ctx.profile.version_env_key
    if key and env.get(key) != wanted:
        env.set(key, wanted)
        env.save(checkpoint="stamp:env")
    return {"version": wanted, "sources_before": said, "forced": force}
