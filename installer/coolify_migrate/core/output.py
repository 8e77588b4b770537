"""How the library reports progress without knowing about terminals: an ``Output`` object.

The CLI supplies one that draws on a terminal or prints JSON events; tests use ``Recording``.
Every text passes through the context's redactor before it leaves the process.

A progress counts in the unit the phase's summary uses (``values``, ``rows``, ``bytes``...), so
the bar and the summary agree; ``total`` is None when it is not known in advance.
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

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress: ...


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

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress:
        return _NoProgress()


@dataclass
class Recording:
    """An output that keeps what it is told (lines and events), for tests and library callers."""

    lines: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warn(self, msg: str) -> None:
        self.lines.append(f"warning: {msg}")

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"event": kind, **fields})

    def progress(self, phase: str, total: int | None, unit: str = "items") -> Progress:
        record = {"event": "progress", "phase": phase, "total": total, "unit": unit, "done": 0}
        self.events.append(record)
        return _Counted(record)


class _Counted:
    """``Recording``'s progress: the count lands in the recorded event."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def advance(self, n: int = 1) -> None:
        self.record["done"] += n

    def close(self) -> None:
        self.record["closed"] = True
