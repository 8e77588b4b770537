"""The backups this tool made, in the order it made them (``<state>/backups.json``).

A backup's name carries the wall-clock time it was taken, and clocks go backwards (a corrected
host clock, a restored VM): "newest" must not depend on them. So every backup the tool makes is
given the next number of a sequence kept here, durably, *before* it gets its name. That record
also tells a copy the tool made but never wrote a manifest for (a run killed right after the
rename) from one Coolify made itself with ``cp``: the name is here, the manifest is not. It
holds as well the random id this installation's backups record (``instance``), by which a
backup brought over from another installation is told apart, and the key its manifests are
sealed with (``seal_key``).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import Refused

FILENAME = "backups.json"


def _load(ctx: Context) -> dict[str, Any]:
    if not ctx.has_state_dir():
        return {"next": 1, "made": {}}
    try:
        doc = durable.read_json(ctx.state_dir / FILENAME, private=True)
    except FileNotFoundError:
        return {"next": 1, "made": {}}
    except (OSError, ValueError) as err:
        raise Refused(
            f"the backup record {ctx.state_dir / FILENAME} is unreadable",
            hint="move it away: backups are then ordered by the time in their names",
        ) from err
    made = doc.get("made") if isinstance(doc, dict) else None
    if not isinstance(made, dict) or not all(isinstance(v, int) for v in made.values()):
        raise Refused(
            f"the backup record {ctx.state_dir / FILENAME} is not one this tool wrote",
            hint="move it away: backups are then ordered by the time in their names",
        )
    nxt = doc.get("next")
    if not isinstance(nxt, int):
        nxt = max(made.values(), default=0) + 1
    loaded = {"next": max(nxt, max(made.values(), default=0) + 1), "made": made}
    for field in ("instance", "seal_key"):
        if isinstance(doc.get(field), str):
            loaded[field] = doc[field]
    return loaded


def instance_id(ctx: Context) -> str | None:
    """The random id the tool gave this installation with its first backup (None before).
    Read-only."""
    found = _load(ctx).get("instance")
    return found if isinstance(found, str) else None


def seal_key(ctx: Context) -> bytes | None:
    """The key manifests are sealed with (an HMAC: a manifest edited afterwards no longer
    matches its seal). Made with the first backup; it encrypts nothing. Read-only."""
    found = _load(ctx).get("seal_key")
    try:
        return bytes.fromhex(found) if isinstance(found, str) else None
    except ValueError:
        return None


def order(ctx: Context) -> dict[str, int]:
    """Backup name -> its place in the order the tool made them (higher is newer). Read-only."""
    made: dict[str, int] = _load(ctx)["made"]
    return made


@contextmanager
def _updating(ctx: Context) -> Iterator[dict[str, Any]]:
    """The record, read and written back under an ``flock`` on the state directory (backups
    taken at once by threads of one program must not lose a number)."""
    fd = os.open(ctx.ensure_state_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        doc = _load(ctx)
        before = json.dumps(doc, sort_keys=True)
        yield doc
        if json.dumps(doc, sort_keys=True) != before:
            durable.write_json(ctx.state_dir / FILENAME, doc, private=True)
    finally:
        os.close(fd)


def record(ctx: Context, name: str) -> int:
    """Give ``name`` the next number, durably; returns it."""
    with _updating(ctx) as doc:
        doc.setdefault("instance", str(uuid.uuid4()))
        doc.setdefault("seal_key", secrets.token_hex(32))
        seq = int(doc["next"])
        doc["made"][name] = seq
        doc["next"] = seq + 1
    return seq


def forget(ctx: Context, gone: list[str]) -> None:
    """Drop the names of backups that were deleted. The counter only goes back over the last
    number handed out (a failed restore drops its safety backup and leaves the record as it
    was); never below a number still held."""
    if not any(n in order(ctx) for n in gone):
        return
    with _updating(ctx) as doc:
        for n in gone:
            seq = doc["made"].pop(n, None)
            if seq is not None and seq == doc["next"] - 1:
                doc["next"] = seq
