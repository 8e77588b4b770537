"""The one object through which the environment reaches the library.

Paths, the clock, the output sink, the redactor and the runtime factory all come in here, never
from globals, so a test (or another program) can build a ``Context`` around a temp directory, a
fake clock or a recording output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coolify_migrate.core import output, private
from coolify_migrate.core.app import KeyCandidate, Profile
from coolify_migrate.core.errors import Refused, UsageError
from coolify_migrate.core.runtime import NoneRuntime, Runtime
from coolify_migrate.core.secret import Redactor
from coolify_migrate.core.store import Store

STATE_DIRNAME = ".coolify-migrate"


@dataclass
class Proofs:
    """What this process proved about the data, for a later phase of the same run to reuse
    instead of reading every value again. Never persisted: a resumed run proves again. The
    upgrade driver forgets them before any step that is not built in (it may write values)."""

    # The full key analysis made before the app was stopped (``secrets.keys.Analysis``); the
    # roll that follows reuses its keys and order, and still attributes every value itself.
    analysis: Any = None
    # The key-check value of the one key every ciphertext value is under, proven by a full
    # analysis or by a roll that committed; None when unknown.
    every_value_under: str | None = None

    def forget(self) -> None:
        self.analysis, self.every_value_under = None, None


@dataclass
class Context:
    """What a command works with: the instance, its app, the output, the runtime, and what the
    command learns once (its store, the container's keys, what it proved)."""

    data_dir: Path
    profile: Profile  # the app (``coolify_migrate.apps`` picks it; nothing here names one)
    db_override: Path | None = None
    clock: Callable[[], float] = time.time
    out: output.Output = field(default_factory=output.Null)
    redactor: Redactor = field(default_factory=Redactor)
    runtime_name: str = "none"
    runtime_why: str = ""  # how the runtime was chosen (``status`` shows it)
    runtime_factory: Callable[[Context], Runtime] | None = None
    assume_yes: bool = False
    # Asked before the app is stopped or every user is logged out: the question -> go on? The
    # CLI asks on a terminal (or takes --yes); a library caller decides for itself (default yes).
    confirm: Callable[[str], bool] = field(default=lambda question: True, repr=False)
    # keys handed in by the operator (--key-file) or found in the app's container: candidates only
    extra_keys: list[KeyCandidate] = field(default_factory=list)
    # Values (``table.column.id`` labels) the operator chose to leave as they are when no known
    # key reads them (``secrets roll --leave``): counted and named, never changed.
    leave: frozenset[str] = frozenset()
    proofs: Proofs = field(default_factory=Proofs, repr=False)
    _runtime: Runtime | None = field(default=None, init=False, repr=False)
    _container_keys: list[KeyCandidate] | None = field(default=None, init=False, repr=False)
    _store: Store | None = field(default=None, init=False, repr=False)

    @property
    def env_path(self) -> Path:
        return self.data_dir / self.profile.env_file

    @property
    def state_dir(self) -> Path:
        return self.data_dir / STATE_DIRNAME

    @property
    def hooks_dir(self) -> Path:
        return self.data_dir / "hooks"

    def agree(self, question: str, *, what: str) -> None:
        """Ask ``question``; when the answer is no, refuse (exit 3) before anything changed."""
        if not self.confirm(question):
            raise Refused(
                f"not confirmed: {what}; nothing was changed",
                hint="answer 'y' on a terminal, or pass --yes",
            )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def ensure_state_dir(self) -> Path:
        """The state directory, created 0700 or checked before the tool writes in it: a link, a
        file, someone else's directory or one others can write in is refused (exit 3); one others
        can only read is tightened to 0700 (``coolify_migrate.core.private``)."""
        return private.ensure_dir(self.state_dir, self.out)

    def has_state_dir(self) -> bool:
        """Whether there is a state directory, checked like ``ensure_state_dir`` but never
        changed (read-only commands call this)."""
        return private.check_dir(self.state_dir)

    def runtime(self) -> Runtime:
        """The runtime, built once by ``runtime_factory`` (the CLI passes
        ``coolify_migrate.runtimes.make_runtime``); without one only ``none`` exists."""
        if self._runtime is None:
            if self.runtime_factory is not None:
                self._runtime = self.runtime_factory(self)
            elif self.runtime_name == "none":
                self._runtime = NoneRuntime()
            else:
                raise UsageError(
                    f"no factory for the {self.runtime_name!r} runtime in this context",
                    hint="build the Context with runtime_factory=coolify_migrate.runtimes.make_runtime",
                )
        return self._runtime

    def store(self) -> Store:
        """The app's database for this instance, found once (``Profile.open_store``)."""
        if self._store is None:
            self._store = self.profile.open_store(self)
        return self._store

    def container_keys(self) -> list[KeyCandidate]:
        """The keys the app's container knows (its environment and settings file), the one it
        uses first; read once per command. Empty without a runtime or a container."""
        if self._container_keys is None:
            found: list[KeyCandidate] = []
            if self.runtime_name != "none":
                from coolify_migrate.core.errors import MigrateError

                try:
                    settings = self.runtime().app_settings()
                except MigrateError as err:
                    self.out.warn(f"the app container's keys are not readable: {err.message}")
                    settings = None
                if settings is not None:
                    found = self.profile.app_keys(*settings)
                    for cand in found:
                        self.redactor.add(cand.key)
            self._container_keys = found
        return self._container_keys

    def forget_container(self) -> None:
        """After the container was recreated: read its keys again when next asked."""
        self._container_keys = None
