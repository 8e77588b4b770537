"""Migration steps: small declarative objects, registered per app profile.

A step names the release that introduces it (``version``); it runs when an upgrade crosses that
release. A step with ``version=None`` runs on every upgrade (its ``apply`` decides whether there is
anything to do, e.g. "roll the key if audit proves it weak"). ``apply`` must commit its changes
together with the tool's version record, through ``StepContext.transaction()`` (or by passing
``StepContext.record`` to a library function that writes it in its own transaction). A step that
does more after its commit provides ``recover`` to finish that part after a crash. Third-party
steps come from the ``coolify_migrate.steps`` entry-point group: each entry point loads to a
callable taking the profile name and returning an iterable of ``Step``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from coolify_migrate.core.errors import Refused
from coolify_migrate.core.store import Connection

if TYPE_CHECKING:
    from coolify_migrate.backups import BackupInfo
    from coolify_migrate.core.context import Context

ENTRY_POINT_GROUP = "coolify_migrate.steps"


@dataclass
class StepContext:
    ctx: Context
    step: Step
    record: dict[str, str]  # what must be committed with the step's change
    backup: BackupInfo | None
    journal_doc: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction that also writes the version record: step and record commit together."""
        conn = self.ctx.store().connect()
        try:
            with conn.transaction(f"step:{self.step.id}"):
                yield conn
                conn.write_meta(**self.record)
        finally:
            conn.close()


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    apply: Callable[[StepContext], None]
    version: Version | None = None
    verify: Callable[[StepContext], None] | None = None
    revertible: bool = True  # by restoring the pre-upgrade backup
    # Finishes the work a step does after its transaction committed (e.g. promoting a key in .env),
    # for a run killed between the two; called by resume for a step already recorded as applied.
    recover: Callable[[StepContext], None] | None = None
    # Read-only work run with the guards, before the app is stopped (e.g. a long audit), given
    # the ids of every planned step; its result is kept in the journal for ``apply``.
    precheck: Callable[[Context, list[str]], dict[str, Any]] | None = None
    when: str = ""  # for every-upgrade steps: the condition under which it changes anything
    source: str = "built-in"


class Registry:
    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}

    def register(self, step: Step) -> None:
        if step.id in self._steps:
            raise Refused(
                f"two migration steps are named {step.id!r} ({self._steps[step.id].source}, {step.source})",
                hint="uninstall or rename the conflicting third-party step package",
            )
        self._steps[step.id] = step

    def steps(self) -> list[Step]:
        return list(self._steps.values())


def load(profile_name: str, builtin: Iterable[Step]) -> Registry:
    registry = Registry()
    for step in builtin:
        registry.register(step)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = ep.load()
            found = list(factory(profile_name))
        except Exception as err:
            raise Refused(
                f"the third-party step plugin {ep.name!r} failed to load: {err}",
                hint="fix or uninstall that package",
            ) from err
        for step in found:
            if not isinstance(step, Step):
                raise Refused(f"plugin {ep.name!r} returned something that is not a Step")
            registry.register(Step(**{**step.__dict__, "source": f"plugin {ep.name}"}))
    return registry


def applied_steps(meta: dict[str, str]) -> list[str]:
    try:
        found = json.loads(meta.get("steps", "[]"))
    except ValueError:
        return []
    return [str(s) for s in found] if isinstance(found, list) else []


def record_for(meta: dict[str, str], step: Step, version: Version) -> dict[str, str]:
    """The version record a step commits: the stop it belongs to and the list of applied steps."""
    done = applied_steps(meta)
    if step.id not in done:
        done.append(step.id)
    return {"version": str(version), "steps": json.dumps(done)}
