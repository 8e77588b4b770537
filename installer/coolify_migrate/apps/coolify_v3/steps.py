"""Coolify v3's migration steps.

- ``roll-date-seeded-key`` (3.12.33): what v3's own 3.12.33 did on container start, done safely
  (one verified transaction, key kept on the host, version recorded with it), and only where it
  is needed: when a key that holds values is weak (the date-seeded form of the old installers is
  enough here), or the values are under several keys (v3's own roll left 43 fields behind). A
  strong key is kept: rolling it would only log every user out.
- ``roll-weak-key`` (every upgrade): rolls when the audit *proves* a key date-seeded (or the values
  are under several keys), for instances that passed 3.12.33 with a weak key still in place.

Both decide before the app stops (``precheck``: a sample of the values when it already shows a
reason to roll, else a full read, and for the second one the seed search, which can take a
minute); the decision waits in the journal for ``apply``, and
the analysis in memory (``Context.proofs``) for the roll. Each step's ``verify`` reads every value
again only when this run has not already proven them all under the active key: by the roll that
just committed, or by the pre-stop analysis when no step changed a value since.
"""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from coolify_migrate import instance
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.engine.steps import Step, StepContext
from coolify_migrate.secrets import verdicts


def _need(ctx: Context, *, search: bool) -> dict[str, Any]:
    from coolify_migrate.secrets import roll, weakness

    store = ctx.store()
    if not store.exists():
        return {"reasons": [], "seeds": {}}
    conn = store.connect(readonly=True)
    try:
        # A sample that already shows a reason to roll (a weak key holding values, or values
        # under two keys) decides it: no full pass before the stop, the roll's own pass reads
        # every value. Otherwise every value is read now, while the app still runs.
        analysis = roll.analyse(ctx, conn, full=False)
        if not weakness.weakness(ctx, analysis, conn=conn, search=False):
            analysis = roll.analyse(ctx, conn)
        need = weakness.weakness(ctx, analysis, conn=conn, search=search)
    finally:
        conn.close()
    ctx.proofs.analysis = analysis  # the roll that may follow starts from it
    ctx.proofs.every_value_under = verdicts.sole_key(ctx, analysis, instance.load_env(ctx))
    return {"reasons": need.reasons, "seeds": need.seeds}


def _check_seeded(ctx: Context, planned: list[str]) -> dict[str, Any]:
    return _need(ctx, search=False)


def _check_proven(ctx: Context, planned: list[str]) -> dict[str, Any]:
    if "roll-date-seeded-key" in planned:
        return {"reasons": [], "seeds": {}}  # that step decides, earlier in the same run
    return _need(ctx, search=True)


def _decided(sc: StepContext, *, search: bool) -> list[str]:
    found = sc.journal_doc["data"].get("prechecks", {}).get(sc.step.id, {}).get("reasons")
    if isinstance(found, list):
        return [str(r) for r in found]
    reasons: list[str] = _need(sc.ctx, search=search)["reasons"]
    return reasons


def _roll_when(sc: StepContext, *, search: bool) -> None:
    from coolify_migrate.secrets import roll

    reasons = _decided(sc, search=search)
    if reasons:
        result = roll.roll(
            sc.ctx,
            force=True,
            backup=sc.backup,
            meta_extra=sc.record,
            journal_doc=sc.journal_doc,
            analysis=sc.ctx.proofs.analysis,
        )
        sc.notes.extend(f"why: {r}" for r in reasons)
        sc.notes.extend(result.lines())
        return
    sc.notes.append("the data key is strong and holds every value: nothing to roll")
    with sc.transaction():
        pass  # commits the version record for this step


def _roll_date_seeded(sc: StepContext) -> None:
    _roll_when(sc, search=False)


def _roll_if_weak(sc: StepContext) -> None:
    _roll_when(sc, search=True)


def _finish_roll(sc: StepContext) -> None:
    from coolify_migrate.secrets import roll

    result = roll.recover(sc.ctx)
    if result is not None:
        sc.notes.append(f"completed the interrupted key roll to {result.new_fingerprint}")


def _verify_every_value(sc: StepContext) -> None:
    env = instance.load_env(sc.ctx)
    active = sc.ctx.profile.active_key(env)
    if active is None:
        raise ChangeFailed("no data key in .env after the step")
    if verdicts.proven_under(sc.ctx, active.key):
        sc.ctx.out.info("  verified: every value was proven under the active key in this run")
        return
    failed = verdicts.undecryptable(sc.ctx, active.key)
    if failed:
        raise ChangeFailed(
            f"{failed} encrypted values do not decrypt under the active key after the step"
        )


def steps() -> list[Step]:
    return [
        Step(
            "roll-date-seeded-key",
            "roll the date-seeded secret key in one verified transaction",
            _roll_date_seeded,
            Version("3.12.33"),
            verify=_verify_every_value,
            recover=_finish_roll,
            precheck=_check_seeded,
        ),
        Step(
            "roll-weak-key",
            "roll the key if audit proves it date-seeded",
            _roll_if_weak,
            None,
            verify=_verify_every_value,
            recover=_finish_roll,
            precheck=_check_proven,
            when="changes something only if audit proves a key weak, or values are under "
            "several keys",
        ),
    ]
