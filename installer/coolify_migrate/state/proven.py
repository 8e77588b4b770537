"""What the last key change proved about the data (``<state>/proven.json``), so that ``secrets
verify`` need not read every value again while nothing has written to the database since.

A roll (or a repair) that commits has decrypted every value, and compared every new one, under
its new key. The record keeps the per-field counts of that proof, the key-check value of the key,
and the database file's identity at that moment: its size, modification time and inode, SQLite's
file change counter (bytes 24-27 of the header, bumped by every write transaction in
rollback-journal mode) and the write-ahead log's size, time and header (its salts change whenever
the log restarts). Any write, by the app or by this tool, changes that identity, and ``verify``
then reads every value. A hot rollback journal next to the file means a write is under way: never
reused. Only a SQLite file has such an identity; a server database is always read in full.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.core.secret import Secret

FILENAME = "proven.json"


def identity(path: Path) -> dict[str, Any] | None:
    """The database file as it is now, or None when it cannot be told (no file, a hot journal)."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if os.path.exists(f"{path}-journal"):
        return None
    out: dict[str, Any] = {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "header": header[24:28].hex() + header[92:100].hex(),
    }
    try:
        wal = os.stat(f"{path}-wal")
        with open(f"{path}-wal", "rb") as fh:
            out["wal"] = [wal.st_size, wal.st_mtime_ns, fh.read(32).hex()]
    except FileNotFoundError:
        out["wal"] = None
    except OSError:
        return None
    return out


def record(ctx: Context, key: Secret, report: dict[str, Any]) -> None:
    """After a commit that proved every value under ``key``: the proof (``report``, counts and
    names only, never a value) and the file as the commit left it."""
    path = ctx.store().path
    found = identity(path) if path is not None else None
    target = ctx.state_dir / FILENAME
    if found is None:
        target.unlink(missing_ok=True)
        return
    doc = {"key_check": key.check_value, "at_ms": ctx.now_ms(), "file": found, "report": report}
    durable.write_json(target, doc, private=True)


def refresh(ctx: Context, since_ms: int) -> None:
    """After the tool's own later writes in the same run (the version record): when the record
    was made by this run (at or after ``since_ms``) and the run still holds that every value is
    under its key, the record follows the file; otherwise nothing changes."""
    doc = _load(ctx)
    path = ctx.store().path
    if doc is None or path is None or not isinstance(doc.get("at_ms"), int):
        return
    if doc["at_ms"] < since_ms or doc.get("key_check") != ctx.proofs.every_value_under:
        return
    found = identity(path)
    if found is None:
        forget(ctx)
        return
    durable.write_json(ctx.state_dir / FILENAME, {**doc, "file": found}, private=True)


def holds(ctx: Context, key: Secret) -> dict[str, Any] | None:
    """The recorded proof when it is ``key``'s and the file has not changed since; else None."""
    doc = _load(ctx)
    path = ctx.store().path
    if doc is None or path is None or doc.get("key_check") != key.check_value:
        return None
    if doc.get("file") != identity(path) or not isinstance(doc.get("report"), dict):
        return None
    return doc


def forget(ctx: Context) -> None:
    if ctx.has_state_dir():
        (ctx.state_dir / FILENAME).unlink(missing_ok=True)


def _load(ctx: Context) -> dict[str, Any] | None:
    if not ctx.has_state_dir():
        return None
    try:
        doc = durable.read_json(ctx.state_dir / FILENAME, private=True)
    except (OSError, ValueError):
        return None  # no record, or one not worth trusting: verify reads every value
    return doc if isinstance(doc, dict) else None
