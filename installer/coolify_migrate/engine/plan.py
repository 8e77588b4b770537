"""The planner: a pure function of (installed version, target, manifest, steps). No I/O.

Stops are the required releases strictly between installed and target, then the target itself.
Each stop collects the steps introduced in (previous stop, stop]; steps that run on every upgrade
come last, at the target. The app image changes once, to the target's, after every step ran (the
app's own schema migrations run when its container starts, and later images include earlier ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from coolify_migrate.config.manifest import Manifest
from coolify_migrate.core.errors import Refused
from coolify_migrate.core.release import Release
from coolify_migrate.engine.steps import Step


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    stop: Version

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.step.id,
            "title": self.step.title,
            "stop": str(self.stop),
            "introduced_in": str(self.step.version) if self.step.version else None,
            "when": self.step.when or None,
            "revertible": self.step.revertible,
            "source": self.step.source,
        }


@dataclass(frozen=True)
class Plan:
    installed: Version
    target: Release
    stops: tuple[Version, ...]
    steps: tuple[PlannedStep, ...]

    @property
    def is_noop(self) -> bool:
        return self.installed == self.target.version

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": str(self.installed),
            "to": str(self.target.version),
            "image": self.target.image,
            "required_stops": [str(s) for s in self.stops[:-1]],
            "stops": [str(s) for s in self.stops],
            "steps": [p.as_dict() for p in self.steps],
            "noop": self.is_noop,
        }

    def lines(self) -> list[str]:
        if self.is_noop:
            return [f"already at {self.installed}: nothing to do"]
        out = [f"upgrade {self.installed} -> {self.target.version} (image {self.target.image})"]
        for stop in self.stops:
            kind = "required stop" if stop != self.target.version else "target"
            out.append(f"  {stop} ({kind})")
            for p in self.steps:
                if p.stop == stop:
                    cond = f" [{p.step.when}]" if p.step.when else ""
                    out.append(f"    - {p.step.id}: {p.step.title}{cond}")
        return out


def make_plan(
    installed: Version,
    target: Version | None,
    manifest: Manifest,
    steps: Sequence[Step],
    *,
    majors_are_apps: bool = True,
) -> Plan:
    """The stops and steps from ``installed`` to ``target`` (the manifest's latest by default).

    ``majors_are_apps``: a new major is another app (Coolify v3 -> v4): refused. Otherwise
    (Redash) majors are crossed one at a time: between two stops of the plan no major of the
    manifest is skipped, so the manifest must mark a required stop in every major on the way."""
    goal = manifest.latest if target is None else target
    release = manifest.release(goal)
    if release is None:
        known = ", ".join(str(r.version) for r in manifest.releases if not r.withdrawn)
        raise Refused(f"{goal} is not a release in {manifest.source}", hint=f"pick one of: {known}")
    if release.withdrawn:
        raise Refused(
            f"{goal} was withdrawn by its publisher", hint="upgrade to the next release instead"
        )
    if goal < installed:
        raise Refused(
            f"{goal} is older than the installed {installed}: upgrade never goes backwards",
            hint="to go back, use 'coolify-migrate rollback --to <backup>' (data and key together)",
        )
    if majors_are_apps and goal.major != installed.major:
        raise Refused(
            f"{installed} -> {goal} crosses a major version, which is a different app",
            hint=f"pick a {installed.major}.x release",
        )
    if goal == installed:
        return Plan(installed, release, (), ())
    stops = [
        r.version
        for r in manifest.releases
        if r.required_stop and not r.withdrawn and installed < r.version < goal
    ]
    stops.append(goal)
    _one_major_at_a_time(installed, stops, manifest)
    planned: list[PlannedStep] = []
    lower = installed
    for stop in stops:
        for step in sorted(
            (s for s in steps if s.version is not None and lower < s.version <= stop),
            key=lambda s: s.version or Version("0"),
        ):
            planned.append(PlannedStep(step, stop))
        lower = stop
    planned.extend(PlannedStep(s, goal) for s in steps if s.version is None)
    return Plan(installed, release, tuple(stops), tuple(planned))


def _one_major_at_a_time(installed: Version, stops: list[Version], manifest: Manifest) -> None:
    majors = sorted({r.version.major for r in manifest.releases if not r.withdrawn})
    lower = installed
    for stop in stops:
        skipped = [m for m in majors if lower.major < m < stop.major]
        if skipped:
            raise Refused(
                f"{lower} -> {stop} would skip major version {skipped[0]}: upgrades cross one "
                "major at a time",
                hint=f"the manifest must mark a required stop in {skipped[0]}.x",
            )
        lower = stop
