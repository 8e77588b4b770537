"""Redash's migration steps: one per release, run one major at a time.

Each step points the app's services at that release's image (the Compose file only: nothing
starts), runs its schema migrations in a one-off container of the ``server`` service with the
project's env file (``docker compose run --rm server manage db upgrade``, as Redash's upgrade
guide does), and checks that the database reached the alembic head that release leaves. The
planner runs them in version order, so an upgrade from 8 to 25 runs 10.1's migrations with the 10.1
image first (Redash's 8 -> 25 migration mishandles alert destinations).

Before the app stops (``precheck``): that release's image is present (nothing is stopped for an
image that cannot be had); when the release's migrations encrypt (7: data sources, 10: alert
destinations), every value already encrypted decrypts under the key those migrations will use,
the data key as Redash resolves it from the env file (so no table ends up under another key);
from 10 on, the Compose file has the ``worker`` service 10's upgrade notes add.
"""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from coolify_migrate.apps.redash.profile import ENCRYPTING, HEADS, TAGS, alembic_head
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, Refused
from coolify_migrate.core.release import Release
from coolify_migrate.engine.steps import Step, StepContext

MIGRATE = ("manage", "db", "upgrade")


def _compose(ctx: Context) -> Any:
    runtime = ctx.runtime()
    if not hasattr(runtime, "run_once"):
        raise Refused(
            "Redash's migrations run in its Compose project",
            hint="run the upgrade with --runtime compose (or auto, with Docker answering)",
        )
    return runtime


def head(ctx: Context) -> str | None:
    conn = ctx.store().connect(readonly=True)
    try:
        return alembic_head(conn)
    finally:
        conn.close()


def _major(tag: str) -> int:
    return Version(tag).major


def _superseded(tag: str, planned: list[str]) -> str | None:
    """A later step of the same run and major whose release's migrations include this one's
    (8 -> 10.1 runs 10.1's, not 10.0's too), or None."""
    ids = [f"migrate-{t}" for t in TAGS if t != tag and _major(t) == _major(tag)]
    later = [i for i in ids if i in planned and Version(i.removeprefix("migrate-")) > Version(tag)]
    return later[-1].removeprefix("migrate-") if later else None


def _planned(sc: StepContext) -> list[str]:
    return [str(s["id"]) for s in sc.journal_doc.get("data", {}).get("steps", [])]


def _precheck(tag: str) -> Any:
    def check(ctx: Context, planned: list[str]) -> dict[str, Any]:
        if _superseded(tag, planned):
            return {"superseded": True}
        if any(e == tag or _superseded(e, planned) == tag for e in ENCRYPTING):
            _every_value_under_the_data_key(ctx, tag)  # (10.1 runs 10.0's migrations too)
        runtime = _compose(ctx)
        image = runtime.ensure_images(Release(Version(tag), f"{ctx.profile.image_repo}:{tag}"))
        if Version(tag) >= Version("10.0.0") and "worker" not in runtime.services():
            raise Refused(
                f"the Compose file has no 'worker' service, which Redash {tag} needs (it sends "
                "e-mails and runs periodic jobs)",
                hint="add the worker service that Redash 10's upgrade notes describe, then run "
                "the upgrade again; nothing was changed",
            )
        return {"image": image}

    return check


def _every_value_under_the_data_key(ctx: Context, tag: str) -> None:
    from coolify_migrate import instance
    from coolify_migrate.secrets import keys

    active = ctx.profile.active_key(instance.load_env(ctx))
    if active is None:
        raise Refused(
            f"{ctx.env_path} names neither REDASH_SECRET_KEY nor REDASH_COOKIE_SECRET",
            hint="restore the env file from your backup",
        )
    conn = ctx.store().connect(readonly=True)
    try:
        analysis = keys.analyse(ctx, conn, [KeyCandidate(active.source, active.key)], full=True)
    finally:
        conn.close()
    if analysis.unknown.count:
        raise Refused(
            f"{analysis.unknown.count} encrypted values are not under the data key "
            f"({active.source}) that {tag}'s migrations encrypt with: "
            f"{analysis.unknown.shown(3)}",
            hint="run 'coolify-migrate secrets roll' first (it puts every row under one key); "
            "nothing was changed",
        )


def _apply(tag: str) -> Any:
    def apply(sc: StepContext) -> None:
        later = _superseded(tag, _planned(sc))
        if later:
            sc.notes.append(f"{later}'s migrations include {tag}'s: they run in that step")
            return
        runtime = _compose(sc.ctx)
        runtime.ensure_data_up()
        runtime.set_tag(tag)
        code, tail = runtime.run_once("server", *MIGRATE)
        if code != 0:
            raise ChangeFailed(
                f"'manage db upgrade' of Redash {tag} failed (exit {code}): {tail.splitlines()[-1] if tail else 'no output'}",
                hint="the upgrade is rolled back; the run log holds the migration's output",
            )
        _check_head(sc)
        with sc.transaction():
            pass  # the version record, once the migrations are in

    return apply


def _check_head(sc: StepContext) -> None:
    tag = sc.step.id.removeprefix("migrate-")
    if _superseded(tag, _planned(sc)):
        return
    want = HEADS[tag]
    got = head(sc.ctx)
    if got != want:
        raise ChangeFailed(
            f"after the migrations the database's alembic head is {got}, not {want}",
            hint="the upgrade is rolled back; the run log holds the migration's output",
        )


def steps() -> list[Step]:
    return [
        Step(
            f"migrate-{tag}",
            f"run Redash {tag}'s migrations (manage db upgrade) up to alembic head {HEADS[tag]}",
            _apply(tag),
            Version(tag),
            verify=_check_head,
            precheck=_precheck(tag),
        )
        for tag in TAGS
    ]
