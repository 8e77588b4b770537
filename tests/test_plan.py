"""The planner is a pure function: tested in memory, no database, no files."""

from __future__ import annotations

import json

import pytest
from coolify_migrate.apps import get_profile
from coolify_migrate.config.manifest import parse
from coolify_migrate.core.errors import ExitCode, Refused
from coolify_migrate.engine.plan import make_plan
from coolify_migrate.engine.steps import Registry, Step, StepContext
from packaging.version import Version

PROFILE = get_profile("coolify-v3")


def manifest(*releases: dict[str, object], latest: str | None = None) -> object:
    doc = {"schema": 1, "app": "coolify-v3", "releases": list(releases)}
    if latest:
        doc["latest"] = latest
    return parse(json.dumps(doc).encode(), PROFILE, source="mem")


def noop(sc: StepContext) -> None:
    pass


def step(id: str, version: str | None) -> Step:
    return Step(id, f"step {id}", noop, Version(version) if version else None)


MAN = manifest(
    {"version": "3.12.31"},
    {"version": "3.12.32"},
    {"version": "3.12.33", "required_stop": True},
    {"version": "3.12.34", "withdrawn": True},
    {"version": "3.12.35"},
    {"version": "3.12.36"},
)
STEPS = [
    step("a", "3.12.33"),
    step("b", "3.12.35"),
    step("c", "3.12.36"),
    step("old", "3.12.31"),
    step("every", None),
]


def test_plan_passes_required_stop_and_orders_steps() -> None:
    p = make_plan(Version("3.12.32"), None, MAN, STEPS)  # type: ignore[arg-type]
    assert [str(s) for s in p.stops] == ["3.12.33", "3.12.36"]
    assert [(x.step.id, str(x.stop)) for x in p.steps] == [
        ("a", "3.12.33"),
        ("b", "3.12.36"),
        ("c", "3.12.36"),
        ("every", "3.12.36"),
    ]
    assert p.as_dict()["required_stops"] == ["3.12.33"]


def test_plan_from_after_the_stop_skips_its_steps() -> None:
    p = make_plan(Version("3.12.33"), Version("3.12.35"), MAN, STEPS)  # type: ignore[arg-type]
    assert [str(s) for s in p.stops] == ["3.12.35"]
    assert [x.step.id for x in p.steps] == ["b", "every"]


def test_plan_to_the_stop_itself() -> None:
    p = make_plan(Version("3.12.30"), Version("3.12.33"), MAN, STEPS)  # type: ignore[arg-type]
    assert [str(s) for s in p.stops] == ["3.12.33"]
    assert [x.step.id for x in p.steps] == ["old", "a", "every"]


def test_same_version_is_a_noop() -> None:
    p = make_plan(Version("3.12.36"), None, MAN, STEPS)  # type: ignore[arg-type]
    assert p.is_noop and p.steps == () and p.lines() == ["already at 3.12.36: nothing to do"]


@pytest.mark.parametrize(
    ("installed", "target", "needle"),
    [
        ("3.12.36", "3.12.32", "rollback"),  # a downgrade points at rollback
        ("3.12.32", "3.12.34", "withdrawn"),
        ("3.12.32", "3.12.99", "not a release"),
    ],
)
def test_refusals(installed: str, target: str, needle: str) -> None:
    with pytest.raises(Refused) as info:
        make_plan(Version(installed), Version(target), MAN, STEPS)  # type: ignore[arg-type]
    assert info.value.exit_code == ExitCode.REFUSED
    assert needle in (info.value.message + info.value.hint)


def test_major_version_change_is_refused() -> None:
    man = manifest({"version": "3.12.36"}, {"version": "4.0.0"})
    with pytest.raises(Refused):
        make_plan(Version("3.12.36"), Version("4.0.0"), man, [])  # type: ignore[arg-type]


def test_coolify_v3_manifest_still_knows_the_required_stop() -> None:
    man = parse(b'{"coolify": {"main": {"version": "3.12.36"}}}', PROFILE, source="v3")
    p = make_plan(Version("3.12.32"), None, man, PROFILE.steps())
    assert [str(s) for s in p.stops] == ["3.12.33", "3.12.36"]
    assert [x.step.id for x in p.steps] == ["roll-date-seeded-key", "roll-weak-key"]


def test_registry_refuses_duplicate_step_ids() -> None:
    reg = Registry()
    reg.register(step("x", "3.12.33"))
    with pytest.raises(Refused, match="two migration steps"):
        reg.register(step("x", "3.12.35"))
