"""One release of an app: the version, where its image comes from, and whether an upgrade must
stop at it (read from ``versions.json`` by ``coolify_migrate.config.manifest``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.version import Version


@dataclass(frozen=True)
class Release:
    version: Version
    image: str
    fallbacks: tuple[str, ...] = ()
    required_stop: bool = False
    withdrawn: bool = False
    notes: str = ""

    @property
    def images(self) -> tuple[str, ...]:
        return (self.image, *self.fallbacks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "image": self.image,
            "fallbacks": list(self.fallbacks),
            "required_stop": self.required_stop,
            "withdrawn": self.withdrawn,
            "notes": self.notes,
        }
