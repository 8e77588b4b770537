"""How the library reports progress without knowing about terminals: an ``Output`` object.

The CLI supplies one that draws on a terminal or prints JSON events; tests use ``Recording``.
Every text passes through the context's redactor before it leaves the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class Output(Protocol):
    def info(self, msg: str) -> None: ...

    def warn(self, msg: str) -> None: ...

    def event(self, kind: str, **fields: Any) -> None: ...

    def progress(self, phase: str, total: int | None) -> Progress: ...


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Null:
    def info(self, msg: str) -> None:
        pass

    def warn(self, msg: str) -> None:
        pass

    def event(self, kind: str, **fields: Any) -> None:
        pass

    def progress(self, phase: str, total: int | None) -> Progress:
        return _NoProgress()


@dataclass
class Recording:
    lines: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warn(self, msg: str) -> None:
        self.lines.append(f"warning: {msg}")

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"event": kind, **fields})

    def progress(self, phase: str, total: int | None) -> Progress:
        self.events.append({"event": "progress", "phase": phase, "total": total})
        return _NoProgress()
