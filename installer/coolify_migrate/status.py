"""``coolify-migrate status``: what is installed, where, under which key. Never writes."""

from __future__ import annotations

from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import EnvFileError, MigrateError
from coolify_migrate.core.secret import check_state
from coolify_migrate.state import journal, lock


def collect(ctx: Context) -> dict[str, Any]:
    env = None
    env_error = None
    try:
        env = instance.load_env(ctx)
    except EnvFileError as err:
        env_error = err.message
    meta = instance.read_meta(ctx)
    installed = instance.installed_version(ctx, env, meta)

    key_fingerprint = key_source = None
    active: KeyCandidate | None = None
    env_keys: list[str] = []
    warnings: list[str] = []
    if env is not None:
        env_keys = env.keys()
        warnings.extend(env.warnings())
        try:
            active = ctx.profile.active_key(env)
        except EnvFileError as err:
            active = None
            warnings.append(err.message)
        if active is not None:
            key_fingerprint, key_source = active.key.fingerprint, active.source
    if installed.conflict:
        said = ", ".join(f"{s.name}={s.version}" for s in installed.sources if s.version)
        warnings.append(f"version sources disagree ({said}); not guessing")

    key_check = check_state(meta.get("key_check"), active.key) if active else "not recorded"
    if key_check == "mismatch":
        warnings.append("the active key is not the one the tool recorded for this database")

    run = journal.current(ctx)
    held = lock.holder(ctx)
    report: dict[str, Any] = {
        "app": ctx.profile.name,
        "data_dir": str(ctx.data_dir),
        "env_file": str(ctx.env_path),
        "env_error": env_error,
        "env_keys": env_keys,
        "installed_version": str(installed.version) if installed.version else None,
        "version_sources": [s.as_dict() for s in installed.sources],
        "version_conflict": installed.conflict,
        "version_allowed": list(installed.allowed) if installed.allowed is not None else None,
        "database": _database(ctx),
        "key_fingerprint": key_fingerprint,
        "key_source": key_source,
        "key_check": key_check,
        "runtime": ctx.runtime_name,
        "runtime_why": ctx.runtime_why or None,
        "lock": held,
        "run_in_progress": None,
        "warnings": warnings,
    }
    if run is not None:
        interrupted = held is None or bool(held.get("stale"))
        report["run_in_progress"] = {
            "run_id": run["run_id"],
            "kind": run["kind"],
            "phase": run["phase"],
            "interrupted": interrupted,
            "next": "run 'coolify-migrate resume' to finish it, or 'rollback --last' to revert it"
            if interrupted
            else "running now",
        }
    return report


def _database(ctx: Context) -> dict[str, Any]:
    """Where the data are (a file's path, a server's address without its password)."""
    try:
        store = ctx.store()
    except MigrateError as err:
        return {"path": None, "kind": None, "exists": False, "error": err.message}
    try:
        exists = store.exists()
        size = store.size() if exists else None
    except MigrateError as err:
        return {"path": store.where, "kind": store.kind, "exists": False, "error": err.message}
    return {"path": store.where, "kind": store.kind, "exists": exists, "size": size}


def human(report: dict[str, Any]) -> list[str]:
    lines = [
        f"app:               {report['app']}",
        f"data dir:          {report['data_dir']}",
        f"installed version: {report['installed_version'] or 'unknown'}",
    ]
    for s in report["version_sources"]:
        lines.append(f"  from {s['source']:<9} {s['version'] or '?'}  ({s['detail']})")
    db = report["database"]
    shown = db["path"] or "unknown"
    lines.append(f"database:          {shown}" + ("" if db["exists"] else "  (missing)"))
    if db.get("error"):
        lines.append(f"  problem:         {db['error']}")
    if db["exists"]:
        lines.append(f"  size:            {db['size']} bytes")
    lines.append(f".env keys:         {', '.join(report['env_keys']) or '-'}")
    if report["env_error"]:
        lines.append(f".env:              {report['env_error']}")
    lines.append(
        f"data key:          {report['key_fingerprint'] or 'none'}"
        + (f" (from {report['key_source']})" if report["key_source"] else "")
    )
    lines.append(f"key check:         {report['key_check']}")
    why = report.get("runtime_why")
    lines.append(f"runtime:           {report['runtime']}" + (f" ({why})" if why else ""))
    run = report.get("run_in_progress")
    if run:
        state = "INTERRUPTED" if run["interrupted"] else "running"
        lines.append(
            f"run:               {run['kind']} {run['run_id']} {state} at '{run['phase']}'"
        )
        lines.append(f"  next:            {run['next']}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    return lines
