"""Which installation a backup belongs to, and whether its manifest is the one the tool wrote.

A manifest records the instance it was made on: the app's own id for an installation when the
app has one (``Profile.instance_key``: Coolify's ``COOLIFY_APP_ID``) and the random id the tool
gave this installation's state (``state.made``). It is sealed with an HMAC under a key kept in
that state, so a manifest edited afterwards (its version changed, its checksum recomputed) no
longer matches. A backup of another instance cannot be checked against this one's seal: it is
restored only with ``--force``, and then its manifest must at least agree with the record inside
the file. Manifests written before these records are listed and restored as before, with a note.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.state import made

FIELD = "instance"
SEAL = "seal"


def here(ctx: Context, env: EnvFile | None) -> dict[str, str]:
    """This instance's identity, as a manifest records it (empty parts left out)."""
    found: dict[str, str] = {}
    key = ctx.profile.instance_key
    value = env.get(key) if key and env is not None else None
    if key and value:
        found["app_id_key"], found["app_id"] = key, value
    installation = made.instance_id(ctx)
    if installation:
        found["installation"] = installation
    return found


def seal(doc: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in doc.items() if k != SEAL}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Judgement:
    sealed: bool = False  # this installation wrote it, and it is unchanged
    foreign: str | None = None  # why it belongs to another instance
    note: str | None = None  # what the listing should say
    error: str | None = None  # why the manifest cannot be trusted at all


def foreign(recorded: dict[str, Any], mine: dict[str, str]) -> str | None:
    """Why ``recorded`` names another instance than ``mine``; None when it may be this one.
    The app's id decides when both know it (the tool's state may have been recreated)."""
    theirs, ours = recorded.get("app_id"), mine.get("app_id")
    if isinstance(theirs, str) and ours:
        if theirs == ours:
            return None
        key = mine.get("app_id_key", "app id")
        return f"{key} {theirs}, this instance has {ours}"
    theirs, ours = recorded.get("installation"), mine.get("installation")
    if isinstance(theirs, str) and ours and theirs != ours:
        return f"installation {theirs[:8]}, this one is {ours[:8]}"
    return None


def judge(doc: dict[str, Any], mine: dict[str, str], key: bytes | None) -> Judgement:
    recorded = doc.get(FIELD)
    if not isinstance(recorded, dict):
        return Judgement(note="written before manifests recorded their instance: not checked")
    why = foreign(recorded, mine)
    if why is not None:
        return Judgement(foreign=why, note=f"made by another instance ({why})")
    if recorded.get("installation") != mine.get("installation") or key is None:
        # this app, but the tool's state was made anew since: its seal cannot be checked
        return Judgement(note="made before this installation's state: its seal is not checked")
    stamp = doc.get(SEAL)
    if not isinstance(stamp, str) or not hmac.compare_digest(stamp, seal(doc, key)):
        return Judgement(error="its manifest was changed after it was written (seal mismatch)")
    return Judgement(sealed=True)
