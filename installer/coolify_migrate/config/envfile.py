"""Read and edit an app's ``.env`` in place, durably, without changing what we do not own.

Parsing is python-dotenv's (``dotenv.parser``); editing works on its bindings, so comments,
order, unknown keys and ``export`` prefixes survive byte for byte. Defined behaviours (tested in
``tests/test_envfile.py``, documented in ``docs/architecture.md``):

- a key defined more than once is ambiguous (the app's parser and ours may pick different
  lines): reading or writing it is refused, naming the lines;
- CRLF line endings are read correctly, and rewritten as LF on the first write: ``docker run
  --env-file`` drops the ``\\r`` (Go's line scanner does), but a shell that sources the file
  keeps it at the end of every value;
- a UTF-8 BOM is ignored when reading and dropped on write (Docker skips it too, but ``sh``
  reads the first line as a command instead of an assignment);
- a missing final newline is added before a key is appended;
- a value ending in a backslash reads the same in dotenv and Docker, but POSIX ``sh`` joins it
  with the next line: it is reported by ``warnings()`` and the tool never writes one;
- values the tool writes use a safe alphabet and are written unquoted, so ``--env-file``,
  Compose and ``sh`` read the same bytes; anything else is refused.

An ``export`` prefix is kept (the file may be sourced by other tools) but reported by
``warnings()``: ``docker run --env-file`` refuses a file with such a line. A symlinked ``.env``
is written through to its target; the link stays a link.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from coolify_migrate.core import bounded, durable
from coolify_migrate.core.errors import EnvFileError
from coolify_migrate.core.secret import Secret

SAFE_VALUE = re.compile(r"[A-Za-z0-9_\-.,/:@+=%]*")
SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPORT = re.compile(r"^(\s*)(export\s+)?")
BOM = "\ufeff"


def _dotenv_parser() -> ModuleType:
    """python-dotenv's parser, loaded from its file alone unless dotenv is already imported.

    ``import dotenv.parser`` runs the package's ``__init__`` first, which imports ``dotenv.main``
    and with it ``logging`` and ``tempfile``: a few ms of every ``status`` for code the tool
    never calls (docs/performance.md, "Start-up"). The copy loaded here has a name of its own,
    so a later ``import dotenv`` gets its package whole, as usual."""
    if "dotenv.parser" in sys.modules:
        return sys.modules["dotenv.parser"]
    import importlib.machinery
    import importlib.util

    package = importlib.util.find_spec("dotenv")
    places = package.submodule_search_locations if package else None
    found = importlib.machinery.PathFinder.find_spec("dotenv.parser", places) if places else None
    if found is None or not isinstance(found.loader, importlib.machinery.SourceFileLoader):
        import dotenv.parser  # not a source file on disk (or no dotenv): imported as usual

        return dotenv.parser
    name = f"{__name__}._dotenv_parser"
    spec = importlib.util.spec_from_file_location(name, found.loader.path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its classes name it as their module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from dotenv.parser import parse_stream
else:
    parse_stream = _dotenv_parser().parse_stream


@dataclass
class _Entry:
    """One binding as read (a comment or a blank line has no key)."""

    key: str | None
    value: str | None
    text: str  # the original text of this binding, line ending included
    line: int


class EnvFile:
    """An in-memory model of a ``.env`` file; ``save()`` writes it back durably."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.had_bom = text.startswith(BOM)
        if self.had_bom:
            text = text[1:]
        self.had_crlf = "\r\n" in text
        self._entries = [
            _Entry(b.key, b.value, b.original.string, _key_line(b.original.string, b.original.line))
            for b in parse_stream(io.StringIO(text))
        ]
        self._original = text
        # told when ``save`` takes group and other bits off the file (``instance.load_env``
        # points it at the command's output)
        self.on_tighten: Callable[[str], None] | None = None

    # -- reading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> EnvFile:
        try:
            raw = bounded.read_bytes(path, bounded.ENV_BYTES, EnvFileError, "the .env file")
        except FileNotFoundError as err:
            raise EnvFileError(
                f"no .env file at {path}",
                hint="pass --data-dir pointing at the app's install directory (it holds .env)",
            ) from err
        except OSError as err:
            raise EnvFileError(f"cannot read {path}: {err.strerror}") from err
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise EnvFileError(f"{path} is not UTF-8 text") from err
        return cls(path, text)

    def _lines_of(self, key: str) -> list[int]:
        return [e.line for e in self._entries if e.key == key]

    def _only(self, key: str) -> _Entry | None:
        found = [e for e in self._entries if e.key == key]
        if len(found) > 1:
            lines = ", ".join(str(e.line) for e in found)
            raise EnvFileError(
                f"{key} is defined {len(found)} times in {self.path} (lines {lines})",
                hint=f"keep exactly one {key}= line; parsers disagree on which one wins",
            )
        return found[0] if found else None

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for e in self._entries:
            if e.key is not None:
                seen.setdefault(e.key, None)
        return list(seen)

    def get(self, key: str) -> str | None:
        entry = self._only(key)
        return None if entry is None else entry.value

    def secret(self, key: str) -> Secret | None:
        value = self.get(key)
        return Secret(value) if value else None

    def matching(self, pattern: re.Pattern[str]) -> Iterator[tuple[str, str]]:
        for key in self.keys():
            if pattern.fullmatch(key):
                value = self.get(key)
                if value is not None:
                    yield key, value

    def duplicates(self) -> dict[str, list[int]]:
        return {k: self._lines_of(k) for k in self.keys() if len(self._lines_of(k)) > 1}

    def warnings(self) -> list[str]:
        notes = []
        loose = self.loose_mode()
        if loose is not None:
            notes.append(
                f"mode {loose:04o}: others may read the keys; "
                "tightened the next time the tool writes it"
            )
        for key, lines in self.duplicates().items():
            notes.append(f"{key} is defined on lines {', '.join(map(str, lines))}")
        if self.had_crlf:
            notes.append("CRLF line endings: a shell sourcing .env keeps a CR in every value")
        if self.had_bom:
            notes.append("a UTF-8 BOM starts the file: sh reads its first line as a command")
        for e in self._entries:
            export = _EXPORT.match(e.text)
            if e.key and export is not None and export.group(2):
                notes.append(f"line {e.line}: 'export {e.key}': docker --env-file rejects the file")
            if e.key and e.value and e.value.endswith("\\"):
                notes.append(
                    f"line {e.line}: {e.key} ends with a backslash; sh joins it with the next line"
                )
        return notes

    # -- editing -----------------------------------------------------------------------------

    @staticmethod
    def check_writable(key: str, value: str) -> None:
        if not SAFE_KEY.fullmatch(key):
            raise EnvFileError(f"refusing to write the key name {key!r}: not a plain identifier")
        if not SAFE_VALUE.fullmatch(value):
            raise EnvFileError(
                f"refusing to write {key}: its value has characters that docker --env-file, "
                "Compose and sh read differently",
                hint="use letters, digits and _-.,/:@+=% only",
            )

    def set(self, key: str, value: str | Secret) -> bool:
        """Set ``key``; returns False when it already had exactly this value."""
        raw = value.reveal() if isinstance(value, Secret) else value
        self.check_writable(key, raw)
        entry = self._only(key)
        if entry is not None:
            # Unchanged only when the line already reads exactly KEY=value (plain, unquoted).
            if entry.value == raw and _plain_line(entry.text, key, raw):
                return False
            prefix = _EXPORT.match(entry.text)
            lead = prefix.group(0) if prefix else ""
            entry.text = f"{lead}{key}={raw}\n"
            entry.value = raw
            return True
        if self._entries and not self._entries[-1].text.endswith("\n"):
            self._entries[-1].text += "\n"
        self._entries.append(_Entry(key, raw, f"{key}={raw}\n", 0))
        return True

    def set_default(self, key: str, value: str | Secret) -> bool:
        """Set ``key`` only when it is missing or empty (never overwrite a populated key)."""
        if self.get(key):
            return False
        return self.set(key, value)

    def remove(self, key: str) -> bool:
        entry = self._only(key)
        if entry is None:
            return False
        self._entries.remove(entry)
        return True

    def render(self) -> str:
        text = "".join(e.text for e in self._entries)
        return text.replace("\r\n", "\n")

    def changed(self) -> bool:
        return self.render() != self._original or self.had_bom

    def loose_mode(self) -> int | None:
        """The file's mode when group or others may read or write it (it holds keys), else None."""
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            return None
        return mode if mode & 0o077 else None

    def save(self, *, checkpoint: str | None = None) -> None:
        """Write the file back; one others could read is tightened to 0600 (owner kept)."""
        loose = self.loose_mode()
        durable.write_atomic(
            self.path, self.render().encode("utf-8"), checkpoint=checkpoint, tighten=True
        )
        if loose is not None and self.on_tighten is not None:
            self.on_tighten(
                f"{self.path} was readable by group or others (mode {loose:04o}): "
                f"tightened to {loose & 0o7700:04o}"
            )
        self._original = self.render()
        self.had_bom = False
        self.had_crlf = False


def _key_line(text: str, first_line: int) -> int:
    """The line a binding's key is on: dotenv counts from the blank lines before it."""
    blank = text[: len(text) - len(text.lstrip())]
    return first_line + blank.count("\n")


def _plain_line(text: str, key: str, value: str) -> bool:
    body = _EXPORT.sub("", text, count=1).rstrip("\r\n")
    return body == f"{key}={value}"
