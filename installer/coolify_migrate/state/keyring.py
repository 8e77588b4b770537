"""Every data key this instance has used, kept durably on the host (``<state>/keyring.json``, 0600).

A rollback must put back the key its backup needs, and a roll must never lose the previous key;
so a key enters the keyring *before* any data is encrypted under it and never leaves it. Entries
carry the fingerprint, where the key came from, and a status: ``pending`` (a roll is under way),
``active`` or ``retired``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coolify_migrate.core import durable
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import EnvFileError
from coolify_migrate.core.secret import Secret


@dataclass
class KeyEntry:
    key: Secret
    status: str
    source: str
    added_ms: int

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def public(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "source": self.source,
            "added_ms": self.added_ms,
        }


class Keyring:
    FILENAME = "keyring.json"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.path: Path = ctx.state_dir / self.FILENAME
        self.entries: list[KeyEntry] = []
        if ctx.has_state_dir():
            try:
                doc = durable.read_json(self.path, private=True)
                for item in doc.get("keys", []):
                    entry = KeyEntry(
                        Secret(item["key"]), item["status"], item["source"], item["added_ms"]
                    )
                    ctx.redactor.add(entry.key)
                    self.entries.append(entry)
            except FileNotFoundError:
                pass
            except (ValueError, KeyError, TypeError, OSError) as err:
                raise EnvFileError(
                    f"the keyring {self.path} is unreadable",
                    hint="restore it from your host backup; never delete it",
                ) from err

    def find(self, fingerprint: str) -> KeyEntry | None:
        for e in self.entries:
            if (
                e.fingerprint == fingerprint[: len(e.fingerprint)]
                or e.key.check_value == fingerprint
            ):
                return e
        return None

    def keys(self) -> list[Secret]:
        return [e.key for e in self.entries]

    def remember(
        self, key: Secret, *, status: str, source: str, checkpoint: str | None = None
    ) -> None:
        """Add or update ``key`` and write the keyring durably before returning."""
        found = self.find(key.fingerprint)
        if found is not None:
            if found.status == status:
                return
            found.status = status
        else:
            self.entries.append(KeyEntry(key, status, source, self.ctx.now_ms()))
        self.ctx.redactor.add(key)
        self.save(checkpoint=checkpoint)

    def set_active(self, key: Secret, *, checkpoint: str | None = None) -> None:
        for e in self.entries:
            if e.key == key:
                e.status = "active"
            elif e.status in ("active", "pending"):
                e.status = "retired"
        if self.find(key.fingerprint) is None:
            self.entries.append(KeyEntry(key, "active", "promoted", self.ctx.now_ms()))
        self.save(checkpoint=checkpoint)

    def save(self, *, checkpoint: str | None = None) -> None:
        self.ctx.ensure_state_dir()
        doc = {"keys": [{**e.public(), "key": e.key.reveal()} for e in self.entries]}
        durable.write_json(self.path, doc, mode=0o600, checkpoint=checkpoint, private=True)
